"""Evaluation datasets, all turned into one record type.

Every loader yields ``Example(id, fields, label)`` so the runner, the metrics and the patterns never
see a dataset's own layout, and a custom JSONL file is just another source with a field mapping.
The named sets are shipped as package data (``agentkit/eval/data``, see its README for sources and
licences), because nothing may be downloaded at run time.

``fields`` by dataset (every set has ``question``, the text a generic question-answering agent reads):

==================  =====================================================================  ==========================
name                fields                                                                 label
==================  =====================================================================  ==========================
folio               question, context, premises, premises_fol, conclusion, conclusion_fol  True / False / Uncertain
proofwriter         question, context, options, premises, conclusion                       True / False / Uncertain
prontoqa            question, context, options, premises, conclusion                       True / False
logicaldeduction    question, context, options ("A) ...")                                  option letter A-G
gsm8k               question, solution (reference reasoning)                                final number, no commas
gsm8k-judge         question, candidate, source, reference_solution, reference_answer,     correct / incorrect
                    question_index
math500             question, solution, subject, level, unique_id                          answer LaTeX (\\boxed{})
==================  =====================================================================  ==========================

Logic-LM's sets store the answer as an option letter; for the True/False/Unknown sets we map the
letter through that row's own options (so a reordered file still maps right) and spell ProofWriter's
"Unknown" as "Uncertain", FOLIO's word, so one grader serves all three. ``premises`` and
``conclusion`` for those sets are derived by sentence-splitting ``context`` and taking the text after
the question's "?" -- what LINC's semantic parser needs.

Ids are stable across runs (resume depends on them): the source's own id where it has one
(Logic-LM), else ``<set>-<split>-<0-based row index>``; judge candidates add the solution's source.
"""

from __future__ import annotations

import ast
import hashlib
import itertools
import json
import os
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agentkit.errors import ConfigError
from agentkit.verifiers.answer import AnswerKind

__all__ = [
    "DATASET_NAMES",
    "DatasetError",
    "Example",
    "answer_kind",
    "dev_test_split",
    "label_set",
    "load_dataset",
]


class DatasetError(ConfigError):
    """A dataset file or row is unusable; the message names the file, the 1-based line and the field."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.path = path
        self.line = line
        self.field = field


class Example(BaseModel):
    """One evaluation item: what the pattern reads (``fields``) and what it should answer (``label``)."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(min_length=1)
    fields: dict[str, Any]
    label: str


# --------------------------------------------------------------------------- row readers

_Source = Path | Traversable
_Row = tuple[int, Any]  # (1-based line where the record starts, decoded JSON value)


def _row_error(src: str, line: int, problem: str, fix: str, field: str | None = None) -> DatasetError:
    where = f"field '{field}': " if field else ""
    return DatasetError(f"{src}:{line}: {where}{problem}. {fix}", path=src, line=line, field=field)


def _read_jsonl(source: _Source, src: str) -> Iterator[_Row]:
    """Stream a JSONL file so ``limit`` stops reading early; blank lines are allowed (editors add them)."""
    # Bytes, decoded line by line: text mode decodes in 8 KB chunks, so a bad byte would be blamed
    # on the wrong line.
    with source.open("rb") as fh:
        for line_no, raw_bytes in enumerate(fh, start=1):
            if line_no == 1 and raw_bytes.startswith(b"\xef\xbb\xbf"):  # a BOM from Windows editors
                raw_bytes = raw_bytes[3:]
            try:
                raw = raw_bytes.decode("utf-8")
            except UnicodeDecodeError:
                raise _row_error(src, line_no, "not UTF-8 text", "Re-save the file as UTF-8") from None
            if not raw.strip():
                continue
            try:
                value = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise _row_error(
                    src, line_no, f"not valid JSON ({exc.msg} at column {exc.colno})",
                    f"Fix or delete line {line_no}; each line must be one JSON object",
                ) from None
            yield line_no, value


def _read_json_array(source: _Source, src: str) -> Iterator[_Row]:
    """Decode a JSON array element by element so each record keeps the line it starts on."""
    try:
        text = source.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise DatasetError(f"{src}: not UTF-8 text. Re-save the file as UTF-8", path=src) from None
    decoder = json.JSONDecoder()
    ws = re.compile(r"\s*")
    counted_to, line_at = 0, 1  # newlines are counted incrementally: one pass over the text in total

    def line_of(pos: int) -> int:
        nonlocal counted_to, line_at
        line_at += text.count("\n", counted_to, pos)
        counted_to = pos
        return line_at

    def fail(pos: int, problem: str) -> DatasetError:
        line = text.count("\n", 0, pos) + 1
        fix = f"Fix the JSON near line {line}; the file must be one JSON array of objects"
        return _row_error(src, line, problem, fix)

    pos = ws.match(text, 0).end()  # type: ignore[union-attr]
    if not text.startswith("[", pos):
        raise fail(pos, "expected a JSON array ('[') at the top level")
    pos = ws.match(text, pos + 1).end()  # type: ignore[union-attr]
    if text.startswith("]", pos):
        return
    while True:
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise fail(exc.pos, f"not valid JSON ({exc.msg})") from None
        yield line_of(pos), value
        pos = ws.match(text, end).end()  # type: ignore[union-attr]
        if text.startswith(",", pos):
            pos = ws.match(text, pos + 1).end()  # type: ignore[union-attr]
        elif text.startswith("]", pos):
            return
        else:
            raise fail(pos, "expected ',' or ']' between records")


def _read_rows(source: _Source, src: str) -> Iterator[_Row]:
    reader = _read_json_array if src.lower().endswith(".json") else _read_jsonl
    for line, value in reader(source, src):
        if not isinstance(value, dict):
            raise _row_error(src, line, f"expected a JSON object, got {type(value).__name__}",
                             "Each record must be an object of field: value pairs")
        yield line, value


# --------------------------------------------------------------------------- field helpers


@dataclass(frozen=True)
class _Ctx:
    """Where a row came from, so every helper can name it in an error."""

    src: str
    line: int
    custom: bool = False  # a user's file: point at field_map, their keys may just be named differently

    def missing(self, key: str) -> DatasetError:
        fix = f"Add '{key}' to this row or delete the row"
        if self.custom:
            fix += ", or name the file's own key with field_map (e.g. field_map={'label': 'gold'})"
        return _row_error(self.src, self.line, "missing", fix, key)

    def bad(self, key: str, problem: str, fix: str = "Correct the row or delete it") -> DatasetError:
        return _row_error(self.src, self.line, problem, fix, key)


def _get(row: Mapping[str, Any], key: str, ctx: _Ctx) -> Any:
    if key not in row or row[key] is None:
        raise ctx.missing(key)
    return row[key]


def _get_str(row: Mapping[str, Any], key: str, ctx: _Ctx) -> str:
    value = _get(row, key, ctx)
    if not isinstance(value, str):
        raise ctx.bad(key, f"expected a string, got {type(value).__name__}")
    return value


def _get_str_list(row: Mapping[str, Any], key: str, ctx: _Ctx) -> list[str]:
    value = _get(row, key, ctx)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ctx.bad(key, "expected a list of strings")
    return list(value)


def _unknown_label(ctx: _Ctx, key: str, value: Any, allowed: Iterable[str]) -> DatasetError:
    return ctx.bad(key, f"unknown label {value!r}; expected one of {', '.join(sorted(allowed))}")


_TFU = frozenset({"True", "False", "Uncertain"})
_TF = frozenset({"True", "False"})
_LETTERS = frozenset("ABCDEFG")
_JUDGE = frozenset({"correct", "incorrect"})
_OPTION_RE = re.compile(r"^\s*([A-Z])\)\s*(.*?)\s*$", re.DOTALL)
_SENTENCE_SPLIT_RE = re.compile(r"(?<=[.!?])\s+")
_NUMBER_RE = re.compile(r"^-?\d+(?:\.\d+)?$")
_WORD_LABELS = {"true": "True", "false": "False", "uncertain": "Uncertain", "unknown": "Uncertain"}


def _options(row: Mapping[str, Any], ctx: _Ctx) -> tuple[list[str], dict[str, str]]:
    options = _get_str_list(row, "options", ctx)
    by_letter: dict[str, str] = {}
    for option in options:
        match = _OPTION_RE.match(option)
        if match is None:
            raise ctx.bad("options", f"option {option!r} is not of the form 'A) text'")
        by_letter[match.group(1)] = match.group(2)
    return options, by_letter


def _split_sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_SPLIT_RE.split(text.strip()) if s]


# --------------------------------------------------------------------------- per-dataset parsers

_Parser = Callable[[Iterator[_Row], str], Iterator[Example]]


def _parse_folio(rows: Iterator[_Row], src: str) -> Iterator[Example]:
    for index, (line, row) in enumerate(rows):
        ctx = _Ctx(src, line)
        premises = _get_str_list(row, "premises", ctx)
        conclusion = _get_str(row, "conclusion", ctx)
        label = _get(row, "label", ctx)
        if label not in _TFU:
            raise _unknown_label(ctx, "label", label, _TFU)
        yield Example(
            id=f"folio-val-{index:04d}",
            fields={
                "question": "Based on the above information, is the following statement true, false, "
                f"or uncertain? {conclusion.strip()}",
                "context": " ".join(p.strip() for p in premises),
                "premises": premises,
                "premises_fol": _get_str_list(row, "premises-FOL", ctx),
                "conclusion": conclusion,
                "conclusion_fol": _get_str(row, "conclusion-FOL", ctx),
            },
            label=label,
        )


def _logic_common(row: Mapping[str, Any], ctx: _Ctx) -> tuple[str, dict[str, Any], dict[str, str], str]:
    example_id = _get(row, "id", ctx)
    if not isinstance(example_id, (str, int)) or isinstance(example_id, bool):
        raise ctx.bad("id", "expected a string or integer id")
    context = _get_str(row, "context", ctx)
    question = _get_str(row, "question", ctx)
    options, by_letter = _options(row, ctx)
    answer = _get(row, "answer", ctx)
    if answer not in by_letter:
        raise _unknown_label(ctx, "answer", answer, by_letter)
    fields = {"question": question, "context": context, "options": options}
    return str(example_id), fields, by_letter, answer


def _logic_truth_parser(allowed: frozenset[str]) -> _Parser:
    """ProofWriter/ProntoQA: the answer letter names an option whose text is the truth value."""

    def parse(rows: Iterator[_Row], src: str) -> Iterator[Example]:
        for line, row in rows:
            ctx = _Ctx(src, line)
            example_id, fields, by_letter, answer = _logic_common(row, ctx)
            text = by_letter[answer]
            label = _WORD_LABELS.get(text.strip().lower())
            if label is None or label not in allowed:
                raise _unknown_label(ctx, "answer", f"{answer}) {text}", allowed)
            question = fields["question"]
            fields["premises"] = _split_sentences(fields["context"])
            fields["conclusion"] = question.rsplit("?", 1)[1].strip() if "?" in question else question.strip()
            yield Example(id=example_id, fields=fields, label=label)

    return parse


def _parse_logical_deduction(rows: Iterator[_Row], src: str) -> Iterator[Example]:
    for line, row in rows:
        ctx = _Ctx(src, line)
        example_id, fields, _, answer = _logic_common(row, ctx)
        if answer not in _LETTERS:
            raise _unknown_label(ctx, "answer", answer, _LETTERS)
        yield Example(id=example_id, fields=fields, label=answer)


def _gsm8k_final_number(text: str) -> str | None:
    """GSM8K writes the gold answer after '#### ' with thousands separators; graders want bare digits."""
    if "####" not in text:
        return None
    value = text.rsplit("####", 1)[1].strip().replace(",", "")
    return value if _NUMBER_RE.match(value) else None


def _parse_gsm8k(rows: Iterator[_Row], src: str) -> Iterator[Example]:
    for index, (line, row) in enumerate(rows):
        ctx = _Ctx(src, line)
        answer = _get_str(row, "answer", ctx)
        label = _gsm8k_final_number(answer)
        if label is None:
            raise ctx.bad("answer", "no final number after '#### '",
                          "GSM8K answers must end with '#### N'; correct the row or delete it")
        yield Example(
            id=f"gsm8k-test-{index:04d}",
            fields={"question": _get_str(row, "question", ctx), "solution": answer.rsplit("####", 1)[0].strip()},
            label=label,
        )


_JUDGE_SOURCES = ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")
_JUDGE_REF_RE = re.compile(r"(?:^|\n)A:\s*(.+?)\s*$")


def _judge_candidate(row: Mapping[str, Any], key: str, ctx: _Ctx) -> tuple[str, bool]:
    """The solutions are Python-literal dicts; literal_eval parses them without executing anything."""
    value = _get(row, key, ctx)
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
        raise _unknown_label(ctx, f"{key}.is_correct", verdict, {"True", "False"})
    return value["solution"], verdict


def _parse_gsm8k_judge(rows: Iterator[_Row], src: str) -> Iterator[Example]:
    for index, (line, row) in enumerate(rows):
        ctx = _Ctx(src, line)
        question = _get_str(row, "question", ctx)
        reference = _get_str(row, "ground_truth", ctx)
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
                    "question_index": index,
                },
                label="correct" if verdict else "incorrect",
            )


def _parse_math500(rows: Iterator[_Row], src: str) -> Iterator[Example]:
    for index, (line, row) in enumerate(rows):
        ctx = _Ctx(src, line)
        answer = _get_str(row, "answer", ctx)
        if not answer.strip():
            raise ctx.bad("answer", "empty answer")
        yield Example(
            id=f"math500-{index:04d}",
            fields={
                "question": _get_str(row, "problem", ctx),
                "solution": _get_str(row, "solution", ctx),
                "subject": _get_str(row, "subject", ctx),
                "level": _get(row, "level", ctx),
                "unique_id": _get_str(row, "unique_id", ctx),
            },
            label=answer,
        )


@dataclass(frozen=True)
class _Spec:
    splits: Mapping[str, str]  # split name -> path relative to the data root
    default_split: str
    parse: _Parser
    labels: frozenset[str] | None  # None: open-ended answers


_SPECS: dict[str, _Spec] = {
    "folio": _Spec({"validation": "folio/folio-validation.jsonl"}, "validation", _parse_folio, _TFU),
    "proofwriter": _Spec({"dev": "logic-llm/ProofWriter/dev.json"}, "dev", _logic_truth_parser(_TFU), _TFU),
    "prontoqa": _Spec({"dev": "logic-llm/ProntoQA/dev.json"}, "dev", _logic_truth_parser(_TF), _TF),
    "logicaldeduction": _Spec({"dev": "logic-llm/LogicalDeduction/dev.json"}, "dev", _parse_logical_deduction,
                              _LETTERS),
    "gsm8k": _Spec({"test": "gsm8k/test.jsonl"}, "test", _parse_gsm8k, None),
    "gsm8k-judge": _Spec({"test": "gsm8k/example_model_solutions.jsonl"}, "test", _parse_gsm8k_judge, _JUDGE),
    "math500": _Spec({"test": "math500/test.jsonl"}, "test", _parse_math500, None),
}

DATASET_NAMES: tuple[str, ...] = tuple(_SPECS)


def label_set(name: str) -> frozenset[str] | None:
    """The labels a named dataset can have (None for open-ended answers), e.g. to enable balanced accuracy."""
    spec = _SPECS.get(name.lower())
    if spec is None:
        raise ConfigError(f"unknown dataset {name!r}; named datasets are: {', '.join(DATASET_NAMES)}")
    return spec.labels


#: How each named set's gold answer is compared (agentkit.verifiers.answer kinds). LogicalDeduction's
#: labels are option letters: "label" plus the letter rule in agentkit.eval.scoring.
_ANSWER_KINDS: dict[str, AnswerKind] = {
    "folio": "label",
    "proofwriter": "label",
    "prontoqa": "label",
    "logicaldeduction": "label",
    "gsm8k": "number",
    "gsm8k-judge": "label",
    "math500": "latex",
}


def answer_kind(name: str) -> AnswerKind:
    """How predictions on a named dataset are matched to its labels (number, latex or label)."""
    kind = _ANSWER_KINDS.get(name.lower())
    if kind is None:
        raise ConfigError(f"unknown dataset {name!r}; named datasets are: {', '.join(DATASET_NAMES)} "
                          "(for a file, say how to compare answers, e.g. --answer-kind number)")
    return kind


# --------------------------------------------------------------------------- custom files


def _scalar_label(value: Any, ctx: _Ctx, key: str) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise ctx.bad(key, f"expected a string or number label, got {type(value).__name__}")


def _parse_custom(
    rows: Iterator[_Row],
    src: str,
    field_map: Mapping[str, str],
    labels: Collection[str] | None,
) -> Iterator[Example]:
    mapping = dict(field_map)
    id_key = mapping.pop("id", None)
    label_key = mapping.pop("label", "label")
    consumed = {id_key or "id", label_key, *mapping.values()}
    for line, row in rows:
        ctx = _Ctx(src, line, custom=True)
        if id_key is not None:  # asked for explicitly, so its absence is an error
            raw_id = _get(row, id_key, ctx)
        else:
            raw_id = row.get("id")
            if raw_id is None:
                raw_id = line
        if isinstance(raw_id, (dict, list)) or raw_id == "":
            raise ctx.bad(id_key or "id", "expected a non-empty string or number id")
        label = _scalar_label(_get(row, label_key, ctx), ctx, label_key)
        if labels is not None and label not in labels:
            raise _unknown_label(ctx, label_key, label, labels)
        fields = {ours: _get(row, theirs, ctx) for ours, theirs in mapping.items()}
        fields.update({k: v for k, v in row.items() if k not in consumed and k not in fields})
        yield Example(id=str(raw_id), fields=fields, label=label)


# --------------------------------------------------------------------------- public entry points


def _unique(examples: Iterable[Example], src: str) -> Iterator[Example]:
    """Resume and last-result-wins both key on id, so a duplicate would silently drop an example."""
    seen: set[str] = set()
    for example in examples:
        if example.id in seen:
            raise DatasetError(
                f"{src}: duplicate id {example.id!r}; ids must be unique. Fix the file or drop the id "
                "field (ids then default to line numbers)",
                path=src, field="id",
            )
        seen.add(example.id)
        yield example


def _check_limit(limit: int | None) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ConfigError(f"limit must be a non-negative integer or None, got {limit!r}")


def load_dataset(
    name_or_path: str | os.PathLike[str],
    *,
    limit: int | None = None,
    split: str | None = None,
    field_map: Mapping[str, str] | None = None,
    labels: Collection[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
) -> list[Example]:
    """Load a named dataset (see ``DATASET_NAMES``) or any JSONL / JSON-array file.

    For a file, ``field_map`` maps our names to the file's keys (``{"id": "qid", "label": "gold",
    "question": "q"}``); unmapped keys are kept under their own names, and rows without an id get
    their 1-based line number. ``labels`` rejects rows whose label is outside a known set (catches
    typos in gold files). ``data_dir`` reads the named sets from another root laid out like
    ``agentkit/eval/data`` (e.g. a newer copy). A name wins over a same-named file: use ``./folio``.
    """
    _check_limit(limit)
    key = os.fspath(name_or_path)
    spec = _SPECS.get(key.lower())
    if spec is not None:
        if field_map is not None:
            raise ConfigError(f"field_map applies to custom files only; dataset {key!r} already uses "
                              "agentkit's field names (see agentkit.eval.datasets)")
        split_name = split or spec.default_split
        if split_name not in spec.splits:
            raise DatasetError(f"dataset {key!r} has no split {split_name!r}; available: "
                               f"{', '.join(spec.splits)}")
        root: _Source = Path(data_dir) if data_dir is not None else resources.files("agentkit.eval") / "data"
        source = root.joinpath(spec.splits[split_name])
        src = str(source)
        if not source.is_file():
            raise DatasetError(f"{src}: data file for {key!r} not found; reinstall agentkit (the data ships "
                               "inside the package) or pass data_dir= a folder with the same layout", path=src)
        examples = spec.parse(_read_rows(source, src), src)
    else:
        path = Path(key)
        if not path.is_file():
            raise DatasetError(f"unknown dataset {key!r}: use one of {', '.join(DATASET_NAMES)} "
                               "or the path of a .jsonl/.json file", path=key)
        if split is not None:
            raise ConfigError("split applies to named datasets only; pass the split's own file instead")
        src = str(path)
        examples = _parse_custom(_read_rows(path, src), src, field_map or {}, labels)
    return list(itertools.islice(_unique(examples, src), limit))


def dev_test_split(
    examples: Sequence[Example],
    dev_fraction: float,
    seed: int = 0,
) -> tuple[list[Example], list[Example]]:
    """Split for cascade calibration: (dev, test), disjoint, each in the input order.

    Membership depends only on (seed, id) -- examples are ranked by a hash of both and the first
    ``round(n * dev_fraction)`` go to dev -- so the split does not change when the input is
    reordered, and it is the same on every machine and Python version (no ``hash()`` salting).
    """
    if not 0.0 <= dev_fraction <= 1.0:
        raise ConfigError(f"dev_fraction must be in [0, 1], got {dev_fraction!r}")

    def rank(example: Example) -> bytes:
        return hashlib.sha256(f"{seed}\x00{example.id}".encode()).digest()

    n_dev = round(len(examples) * dev_fraction)
    dev_ids = {e.id for e in sorted(examples, key=rank)[:n_dev]}
    dev = [e for e in examples if e.id in dev_ids]
    test = [e for e in examples if e.id not in dev_ids]
    return dev, test
