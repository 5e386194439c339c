"""The built-in datasets' parsers, and the one for a user's own file: rows in, ``Example`` records out.

Each parser is ``parse(rows, src)``: ``rows`` yields ``(line, record)`` pairs (``agentkit.eval._rows``)
and ``src`` names the file for errors. ``agentkit.eval.datasets`` ties each to its file, answer kind
and label set in a ``DatasetSpec``.

Logic-LM's sets store the answer as an option letter; for the True/False/Unknown sets we map the
letter through that row's own options (so a reordered file still maps right) and spell ProofWriter's
"Unknown" as "Uncertain", FOLIO's word, so one grader serves all three. ``premises`` and
``conclusion`` for those sets are derived by sentence-splitting ``context`` and taking the text after
the question's "?" -- what LINC's semantic parser needs.

Ids are stable across runs (resume depends on them): the source's own id where it has one
(Logic-LM; FOLIO train's ``example_id``, as ``folio-ex<N>``), else ``<set>-<split>-<0-based row
index>``; judge candidates add the solution's source. A row may carry its own ``id``: the shipped
subsets (folio-clean, gsm8k-easy) do, so each row keeps the id it has in its full set and runs on a
subset pair up with runs on the whole set.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any

from agentkit.eval._rows import Ctx, Row, get, get_str, get_str_list, unknown_label
from agentkit.vocab import Example

TFU = frozenset({"True", "False", "Uncertain"})
TF = frozenset({"True", "False"})
LETTERS = frozenset("ABCDEFG")
JUDGE = frozenset({"correct", "incorrect"})

#: The gsm8k-judge field that names the question a candidate answers: its four rows share it.
JUDGE_QUESTION_KEY = "question_index"

_OPTION_RE = re.compile(r"^\s*([A-Z])\)\s*(.*?)\s*$", re.DOTALL)
_SENTENCE_SPLIT_RE = re.compile(r"(?<=[.!?])\s+")
_NUMBER_RE = re.compile(r"^-?\d+(?:\.\d+)?$")
_WORD_LABELS = {"true": "True", "false": "False", "uncertain": "Uncertain", "unknown": "Uncertain"}
_FOLIO_TRAIN_WORDS = {"Unknown": "Uncertain"}  # FOLIO v0.0 train's word for validation's Uncertain

Parser = Callable[[Iterator[Row], str], Iterator[Example]]


def _options(row: Mapping[str, Any], ctx: Ctx) -> tuple[list[str], dict[str, str]]:
    options = get_str_list(row, "options", ctx)
    by_letter: dict[str, str] = {}
    for option in options:
        match = _OPTION_RE.match(option)
        if match is None:
            raise ctx.bad("options", f"option {option!r} is not of the form 'A) text'")
        by_letter[match.group(1)] = match.group(2)
    return options, by_letter


def _split_sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_SPLIT_RE.split(text.strip()) if s]


def _own_id(row: Mapping[str, Any], ctx: Ctx, default: str) -> str:
    """A subset file's rows keep their full set's id in an ``id`` field; other rows get ``default``."""
    if "id" not in row:
        return default
    value = row["id"]
    if not isinstance(value, str) or not value:
        raise ctx.bad("id", "expected a non-empty string id")
    return value


def _folio_id(row: Mapping[str, Any], ctx: Ctx, index: int) -> str:
    """FOLIO v0.0 train rows carry FOLIO's own ``example_id``; validation rows have none."""
    example_id = row.get("example_id")
    if example_id is None:
        return _own_id(row, ctx, f"folio-val-{index:04d}")
    if not isinstance(example_id, int) or isinstance(example_id, bool):
        raise ctx.bad("example_id", "expected an integer")
    return _own_id(row, ctx, f"folio-ex{example_id}")


def parse_folio(rows: Iterator[Row], src: str) -> Iterator[Example]:
    """Validation and train alike: train spells Uncertain "Unknown" and has no conclusion-FOL (None here)."""
    for index, (line, row) in enumerate(rows):
        ctx = Ctx(src, line)
        premises = get_str_list(row, "premises", ctx)
        conclusion = get_str(row, "conclusion", ctx)
        word = get(row, "label", ctx)
        label = _FOLIO_TRAIN_WORDS.get(word, word) if isinstance(word, str) else None
        if label not in TFU:
            raise unknown_label(ctx, "label", word, TFU | set(_FOLIO_TRAIN_WORDS))
        conclusion_fol = row.get("conclusion-FOL")
        if conclusion_fol is not None and not isinstance(conclusion_fol, str):
            raise ctx.bad("conclusion-FOL", f"expected a string, got {type(conclusion_fol).__name__}")
        yield Example(
            id=_folio_id(row, ctx, index),
            fields={
                "question": "Based on the above information, is the following statement true, false, "
                f"or uncertain? {conclusion.strip()}",
                "context": " ".join(p.strip() for p in premises),
                "premises": premises,
                "premises_fol": get_str_list(row, "premises-FOL", ctx),
                "conclusion": conclusion,
                "conclusion_fol": conclusion_fol,
            },
            label=label,
        )


def _logic_common(row: Mapping[str, Any], ctx: Ctx) -> tuple[str, dict[str, Any], dict[str, str], str]:
    example_id = get(row, "id", ctx)
    if not isinstance(example_id, (str, int)) or isinstance(example_id, bool):
        raise ctx.bad("id", "expected a string or integer id")
    context = get_str(row, "context", ctx)
    question = get_str(row, "question", ctx)
    options, by_letter = _options(row, ctx)
    answer = get(row, "answer", ctx)
    if answer not in by_letter:
        raise unknown_label(ctx, "answer", answer, by_letter)
    fields = {"question": question, "context": context, "options": options}
    return str(example_id), fields, by_letter, answer


def logic_truth_parser(allowed: frozenset[str]) -> Parser:
    """ProofWriter/ProntoQA: the answer letter names an option whose text is the truth value."""

    def parse(rows: Iterator[Row], src: str) -> Iterator[Example]:
        for line, row in rows:
            ctx = Ctx(src, line)
            example_id, fields, by_letter, answer = _logic_common(row, ctx)
            text = by_letter[answer]
            label = _WORD_LABELS.get(text.strip().lower())
            if label is None or label not in allowed:
                raise unknown_label(ctx, "answer", f"{answer}) {text}", allowed)
            question = fields["question"]
            fields["premises"] = _split_sentences(fields["context"])
            fields["conclusion"] = question.rsplit("?", 1)[1].strip() if "?" in question else question.strip()
            yield Example(id=example_id, fields=fields, label=label)

    return parse


def parse_logical_deduction(rows: Iterator[Row], src: str) -> Iterator[Example]:
    for line, row in rows:
        ctx = Ctx(src, line)
        example_id, fields, _, answer = _logic_common(row, ctx)
        if answer not in LETTERS:
            raise unknown_label(ctx, "answer", answer, LETTERS)
        yield Example(id=example_id, fields=fields, label=answer)


def _gsm8k_final_number(text: str) -> str | None:
    """GSM8K writes the gold answer after '#### ' with thousands separators; graders want bare digits."""
    if "####" not in text:
        return None
    value = text.rsplit("####", 1)[1].strip().replace(",", "")
    return value if _NUMBER_RE.match(value) else None


def parse_gsm8k(rows: Iterator[Row], src: str) -> Iterator[Example]:
    for index, (line, row) in enumerate(rows):
        ctx = Ctx(src, line)
        answer = get_str(row, "answer", ctx)
        label = _gsm8k_final_number(answer)
        if label is None:
            raise ctx.bad("answer", "no final number after '#### '",
                          "GSM8K answers must end with '#### N'; correct the row or delete it")
        yield Example(
            id=_own_id(row, ctx, f"gsm8k-test-{index:04d}"),
            fields={"question": get_str(row, "question", ctx), "solution": answer.rsplit("####", 1)[0].strip()},
            label=label,
        )


_JUDGE_SOURCES = ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")
_JUDGE_REF_RE = re.compile(r"(?:^|\n)A:\s*(.+?)\s*$")


def _judge_candidate(row: Mapping[str, Any], key: str, ctx: Ctx) -> tuple[str, bool]:
    """The solutions are Python-literal dicts; literal_eval parses them without executing anything."""
    value = get(row, key, ctx)
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
            raise ctx.bad(key, f"not a Python-literal dict ({type(exc).__name__})") from None
    if not isinstance(value, dict):
        raise ctx.bad(key, f"expected a dict with is_correct and solution, got {type(value).__name__}")
    if "solution" not in value or not isinstance(value["solution"], str):
        raise ctx.bad(f"{key}.solution", "missing or not a string")
    verdict = value.get("is_correct")
    if not isinstance(verdict, bool):
        raise unknown_label(ctx, f"{key}.is_correct", verdict, {"True", "False"})
    return value["solution"], verdict


def parse_gsm8k_judge(rows: Iterator[Row], src: str) -> Iterator[Example]:
    for index, (line, row) in enumerate(rows):
        ctx = Ctx(src, line)
        question = get_str(row, "question", ctx)
        reference = get_str(row, "ground_truth", ctx)
        ref_match = _JUDGE_REF_RE.search(reference)
        reference_answer = ref_match.group(1).replace(",", "") if ref_match else None
        for key in _JUDGE_SOURCES:
            solution, verdict = _judge_candidate(row, key, ctx)
            yield Example(
                id=f"gsm8k-judge-{index:04d}-{key}",
                fields={
                    "question": question,
                    "candidate": solution,
                    "source": key,
                    "reference_solution": reference,
                    "reference_answer": reference_answer,
                    JUDGE_QUESTION_KEY: index,
                },
                label="correct" if verdict else "incorrect",
            )


def parse_math500(rows: Iterator[Row], src: str) -> Iterator[Example]:
    for index, (line, row) in enumerate(rows):
        ctx = Ctx(src, line)
        answer = get_str(row, "answer", ctx)
        if not answer.strip():
            raise ctx.bad("answer", "empty answer")
        yield Example(
            id=f"math500-{index:04d}",
            fields={
                "question": get_str(row, "problem", ctx),
                "solution": get_str(row, "solution", ctx),
                "subject": get_str(row, "subject", ctx),
                "level": get(row, "level", ctx),
                "unique_id": get_str(row, "unique_id", ctx),
            },
            label=answer,
        )


# --------------------------------------------------------------------------- a user's own file


def _scalar_label(value: Any, ctx: Ctx, key: str) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise ctx.bad(key, f"expected a string or number label, got {type(value).__name__}")


def parse_custom(
    rows: Iterator[Row],
    src: str,
    field_map: Mapping[str, str],
    labels: Collection[str] | None,
) -> Iterator[Example]:
    """``field_map`` maps our names to the file's keys; unmapped keys are kept under their own names."""
    mapping = dict(field_map)
    id_key = mapping.pop("id", None)
    label_key = mapping.pop("label", "label")
    consumed = {id_key or "id", label_key, *mapping.values()}
    for line, row in rows:
        ctx = Ctx(src, line, custom=True)
        if id_key is not None:  # asked for explicitly, so its absence is an error
            raw_id = get(row, id_key, ctx)
        else:
            raw_id = row.get("id")
            if raw_id is None:
                raw_id = line
        if isinstance(raw_id, (dict, list)) or raw_id == "":
            raise ctx.bad(id_key or "id", "expected a non-empty string or number id")
        label = _scalar_label(get(row, label_key, ctx), ctx, label_key)
        if labels is not None and label not in labels:
            raise unknown_label(ctx, label_key, label, labels)
        fields = {ours: get(row, theirs, ctx) for ours, theirs in mapping.items()}
        fields.update({k: v for k, v in row.items() if k not in consumed and k not in fields})
        yield Example(id=str(raw_id), fields=fields, label=label)
