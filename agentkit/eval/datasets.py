"""Evaluation datasets, all turned into one record type, each named set described by one spec.

Every loader yields ``Example(id, fields, label)`` so the runner, the metrics and the patterns never
see a dataset's own layout, and a custom JSONL file is just another source with a field mapping.
The named sets are shipped as package data (``agentkit/eval/data``, see its README for sources and
licences), because nothing may be downloaded at run time.

A named set is a ``DatasetSpec``: its files, its parser, how its answers are compared, its label set
and, where rows come in groups, the field that groups them. Everything that lists or describes the
named sets -- ``dataset_names()``, ``label_set``, ``answer_kind``, ``load_dataset``, the CLI's help --
reads the specs, so adding a set is one ``register_dataset(DatasetSpec(...))`` call.

``fields`` by dataset (every set has ``question``, the text a generic question-answering agent reads):

==================  =====================================================================  ==========================
name                fields                                                                 label
==================  =====================================================================  ==========================
folio               question, context, premises, premises_fol, conclusion, conclusion_fol  True / False / Uncertain
                    (split "train": conclusion_fol is None; FOLIO train has none)
folio-clean         as folio (182 of its validation rows, ids kept)                        True / False / Uncertain
proofwriter         question, context, options, premises, conclusion                       True / False / Uncertain
proofwriter-360     as proofwriter (360 of its rows, 120 per label)                        True / False / Uncertain
prontoqa            question, context, options, premises, conclusion                       True / False
logicaldeduction    question, context, options ("A) ...")                                  option letter A-G
gsm8k               question, solution (reference reasoning)                                final number, no commas
gsm8k-easy          as gsm8k (440 of its rows, ids kept)                                   final number, no commas
gsm8k-judge         question, candidate, source, reference_solution, reference_answer,     correct / incorrect
                    question_index (the cluster key: a question's four candidates share it)
math500             question, solution, subject, level, unique_id                          answer LaTeX (\\boxed{})
==================  =====================================================================  ==========================

How each source file maps to these fields, and how ids are kept stable across runs (resume depends
on them), is told in ``agentkit.eval._dataset_parsers``. The subsets (folio-clean, proofwriter-360,
gsm8k-easy) are files derived by ``bench/make_eval_subsets.py``; docs/FOL.md says how.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from agentkit.errors import ConfigError
from agentkit.eval import _dataset_parsers as _parsers
from agentkit.eval._rows import DatasetError, Row, read_rows, row_error
from agentkit.vocab import AnswerKind, Example, first_error

__all__ = [
    "DATASET_NAMES",
    "DatasetError",
    "DatasetParser",
    "DatasetSpec",
    "Example",
    "answer_kind",
    "dataset_names",
    "dataset_spec",
    "dev_test_split",
    "label_set",
    "load_dataset",
    "register_dataset",
    "unregister_dataset",
]

#: ``parser(rows, src)``: ``rows`` yields ``(line, record)`` -- the 1-based line a JSON object starts
#: on, and the object -- and ``src`` names the file; it yields the rows' ``Example`` records.
#: Raise ``DatasetError`` naming ``src`` and the line for a bad row; any other error is reported
#: with the line of the last row read.
DatasetParser = Callable[[Iterator[Row], str], Iterable[Example]]


class DatasetSpec(BaseModel):
    """One named dataset: where its files are, how to read them and how to grade answers on it.

    ``splits`` maps a split name to its file: a ``.jsonl`` file, or a JSON array when the name ends
    in ``.json``. A relative path is read below ``data_dir`` (or ``load_dataset(data_dir=...)``),
    else below agentkit's shipped data; an absolute path is read as is. ``labels`` is the closed set
    of gold labels (None for open-ended answers); it constrains the baselines' answers and enables
    per-class metrics. ``cluster_key`` names the ``Example.fields`` entry whose value groups rows that
    are not independent (several candidates for one question), so statistics can resample by group.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$",
                      description="lower case, as typed after --dataset (names are matched case-insensitively)")
    splits: dict[str, str] = Field(min_length=1)
    default_split: str = Field(description="may be left out when there is one split")
    parser: DatasetParser
    answer_kind: AnswerKind
    labels: frozenset[str] | None = None
    cluster_key: str | None = Field(None, min_length=1)
    description: str = Field(min_length=1, description="one line, shown in the CLI's help")
    data_dir: Path | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_split_is_the_default(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("default_split") is None:
            splits = data.get("splits")
            if isinstance(splits, Mapping) and len(splits) == 1:
                data = {**data, "default_split": next(iter(splits))}
        return data

    @field_validator("splits", mode="before")
    @classmethod
    def _paths_as_text(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: os.fspath(v) if isinstance(v, os.PathLike) else v for k, v in value.items()}
        return value

    @field_validator("labels")
    @classmethod
    def _labels_not_empty(cls, value: frozenset[str] | None) -> frozenset[str] | None:
        if value is not None and (not value or not all(value)):
            raise ValueError("labels must be non-empty strings; use None for open-ended answers")
        return value

    @field_validator("description")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if "\n" in value:
            raise ValueError("description must be one line (it is shown in the CLI's help)")
        return value

    @model_validator(mode="after")
    def _default_split_exists(self) -> DatasetSpec:
        if self.default_split not in self.splits:
            raise ValueError(f"default_split {self.default_split!r} is not one of the splits: {', '.join(self.splits)}")
        return self


_BUILTINS = (
    DatasetSpec(name="folio", splits={"validation": "folio/folio-validation.jsonl", "train": "folio/folio-train.jsonl"},
                default_split="validation", parser=_parsers.parse_folio, answer_kind="label", labels=_parsers.TFU,
                description="FOLIO validation: first-order logic stories, True/False/Uncertain"),
    # FOLIO's train split rides along so majority-label counts its label there, not on the scored rows
    DatasetSpec(name="folio-clean", splits={"validation": "folio/folio-clean.jsonl", "train": "folio/folio-train.jsonl"},
                default_split="validation", parser=_parsers.parse_folio, answer_kind="label", labels=_parsers.TFU,
                description="FOLIO validation, the 182 rows whose gold FOL reproduces the gold label (LINC's filter)"),
    DatasetSpec(name="proofwriter", splits={"dev": "logic-llm/ProofWriter/dev.json"},
                parser=_parsers.logic_truth_parser(_parsers.TFU), answer_kind="label", labels=_parsers.TFU,
                description="ProofWriter depth-5 (Logic-LM): rule reasoning, True/False/Uncertain"),
    DatasetSpec(name="proofwriter-360", splits={"dev": "logic-llm/ProofWriter/dev-360.json"},
                parser=_parsers.logic_truth_parser(_parsers.TFU), answer_kind="label", labels=_parsers.TFU,
                description="ProofWriter depth-5, our seeded 120/120/120 label-balanced draw (seed 0)"),
    DatasetSpec(name="prontoqa", splits={"dev": "logic-llm/ProntoQA/dev.json"},
                parser=_parsers.logic_truth_parser(_parsers.TF), answer_kind="label", labels=_parsers.TF,
                description="ProntoQA 5-hop (Logic-LM): fictional ontologies, True/False"),
    # Labels are option letters: "label" plus the letter rule in agentkit.eval.scoring.
    DatasetSpec(name="logicaldeduction", splits={"dev": "logic-llm/LogicalDeduction/dev.json"},
                parser=_parsers.parse_logical_deduction, answer_kind="label", labels=_parsers.LETTERS,
                description="BIG-bench logical deduction (Logic-LM): ordering puzzles, option letter"),
    DatasetSpec(name="gsm8k", splits={"test": "gsm8k/test.jsonl"}, parser=_parsers.parse_gsm8k,
                answer_kind="number", description="GSM8K test: grade-school maths word problems, a number"),
    DatasetSpec(name="gsm8k-easy", splits={"test": "gsm8k/test-easy.jsonl"}, parser=_parsers.parse_gsm8k,
                answer_kind="number", description="GSM8K test, the 440 problems solved in at most 2 calculation lines"),
    DatasetSpec(name="gsm8k-judge", splits={"test": "gsm8k/example_model_solutions.jsonl"},
                parser=_parsers.parse_gsm8k_judge, answer_kind="label", labels=_parsers.JUDGE,
                cluster_key=_parsers.JUDGE_QUESTION_KEY,
                description="GSM8K test questions x 4 model solutions each: judge correct/incorrect"),
    DatasetSpec(name="math500", splits={"test": "math500/test.jsonl"}, parser=_parsers.parse_math500,
                answer_kind="latex", description="MATH-500: competition maths, a LaTeX answer"),
)

#: The built-in named sets; ``dataset_names()`` adds the registered ones.
DATASET_NAMES: tuple[str, ...] = tuple(spec.name for spec in _BUILTINS)

_REGISTRY: dict[str, DatasetSpec] = {spec.name: spec for spec in _BUILTINS}


def register_dataset(spec: DatasetSpec, *, replace: bool = False) -> DatasetSpec:
    """Make ``spec`` loadable by name everywhere (``load_dataset``, ``select_dataset``, the CLI)."""
    if not isinstance(spec, DatasetSpec):
        raise ConfigError(f"register_dataset takes a DatasetSpec, got {type(spec).__name__}")
    if spec.name in DATASET_NAMES:
        raise ConfigError(f"dataset {spec.name!r} is built in and cannot be replaced; register yours under "
                          "another name, or pass load_dataset(data_dir=...) to read a newer copy of its files")
    if spec.name in _REGISTRY and not replace:
        raise ConfigError(f"dataset {spec.name!r} is already registered; choose another name, or pass "
                          "replace=True to replace it")
    _REGISTRY[spec.name] = spec
    return spec


def unregister_dataset(name: str) -> None:
    """Forget a registered dataset (built-ins stay), e.g. when a test is done with its toy set."""
    key = name.lower()
    if key in DATASET_NAMES:
        raise ConfigError(f"dataset {key!r} is built in and cannot be unregistered")
    if _REGISTRY.pop(key, None) is None:
        raise ConfigError(f"dataset {name!r} is not registered; registered: {', '.join(dataset_names())}")


def dataset_names() -> tuple[str, ...]:
    """Every named set: the built-ins, then the registered ones in the order they were registered."""
    return tuple(_REGISTRY)


def _unknown(name: str, hint: str = "") -> ConfigError:
    return ConfigError(f"unknown dataset {name!r}; named datasets are: {', '.join(dataset_names())}{hint}")


def dataset_spec(name: str) -> DatasetSpec:
    """The spec of a named set (case-insensitive)."""
    spec = _REGISTRY.get(name.lower())
    if spec is None:
        raise _unknown(name)
    return spec


def label_set(name: str) -> frozenset[str] | None:
    """The labels a named dataset can have (None for open-ended answers), e.g. to enable balanced accuracy."""
    return dataset_spec(name).labels


def answer_kind(name: str) -> AnswerKind:
    """How predictions on a named dataset are matched to its labels (number, latex, label or text)."""
    spec = _REGISTRY.get(name.lower())
    if spec is None:
        raise _unknown(name, " (for a file, say how to compare answers, e.g. --answer-kind number)")
    return spec.answer_kind


# --------------------------------------------------------------------------- loading


def _split_source(spec: DatasetSpec, key: str, split: str | None,
                  data_dir: str | os.PathLike[str] | None) -> Path | Traversable:
    split_name = split or spec.default_split
    if split_name not in spec.splits:
        raise DatasetError(f"dataset {key!r} has no split {split_name!r}; available: {', '.join(spec.splits)}")
    rel = spec.splits[split_name]
    root = data_dir if data_dir is not None else spec.data_dir
    source: Path | Traversable
    if Path(rel).is_absolute():
        source = Path(rel)
    elif root is not None:
        source = Path(root).joinpath(rel)
    else:
        source = (resources.files("agentkit.eval") / "data").joinpath(rel)
    if not source.is_file():
        src = str(source)
        fix = ("reinstall agentkit (the data ships inside the package) or pass data_dir= a folder with the same "
               "layout" if spec.name in DATASET_NAMES else
               "fix the spec's splits or data_dir, or pass data_dir= the folder that holds the file")
        raise DatasetError(f"{src}: data file for {key!r} not found; {fix}", path=src)
    return source


def _parsed(spec: DatasetSpec, rows: Iterator[Row], src: str) -> Iterator[Example]:
    """Run the spec's parser, so a registered parser's slip still names the file, line and dataset."""
    line = 0

    def tracked() -> Iterator[Row]:
        nonlocal line
        for row in rows:
            line = row[0]
            yield row

    def fail(problem: str, fix: str) -> DatasetError:
        return row_error(src, line, problem, fix) if line else DatasetError(f"{src}: {problem}. {fix}", path=src)

    try:
        for example in spec.parser(tracked(), src):
            if not isinstance(example, Example):
                raise fail(f"the {spec.name!r} parser yielded a {type(example).__name__}",
                           "A parser must yield agentkit.eval.Example records")
            if spec.cluster_key is not None and example.fields.get(spec.cluster_key) is None:
                raise fail(f"example {example.id!r} has no {spec.cluster_key!r} field, the spec's cluster_key",
                           "Set it in the parser, or give the spec cluster_key=None")
            yield example
    except DatasetError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        what = first_error(exc) if isinstance(exc, ValidationError) else f"{type(exc).__name__}: {exc}"
        raise fail(f"the {spec.name!r} parser failed ({what})",
                   "Fix the row, or make the parser raise DatasetError for it") from exc


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
    """Load a named dataset (see ``dataset_names()``) or any JSONL / JSON-array file.

    For a file, ``field_map`` maps our names to the file's keys (``{"id": "qid", "label": "gold",
    "question": "q"}``); unmapped keys are kept under their own names, and rows without an id get
    their 1-based line number. ``labels`` rejects rows whose label is outside a known set (catches
    typos in gold files). ``data_dir`` reads the named sets from another root laid out like
    ``agentkit/eval/data`` (e.g. a newer copy). A name wins over a same-named file: use ``./folio``.
    """
    _check_limit(limit)
    key = os.fspath(name_or_path)
    spec = _REGISTRY.get(key.lower())
    if spec is not None:
        if field_map is not None:
            raise ConfigError(f"field_map applies to custom files only; dataset {key!r} already uses "
                              "agentkit's field names (see agentkit.eval.datasets)")
        source = _split_source(spec, key, split, data_dir)
        src = str(source)
        examples = _parsed(spec, read_rows(source, src), src)
    else:
        path = Path(key)
        if not path.is_file():
            raise DatasetError(f"unknown dataset {key!r}: use one of {', '.join(dataset_names())} "
                               "or the path of a .jsonl/.json file", path=key)
        if split is not None:
            raise ConfigError("split applies to named datasets only; pass the split's own file instead")
        src = str(path)
        examples = _parsers.parse_custom(read_rows(path, src), src, field_map or {}, labels)
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
