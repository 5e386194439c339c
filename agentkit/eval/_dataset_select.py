"""What one evaluation runs on: the examples plus how to grade them, chosen by a name or a file path.

Kept apart from the runner so a dataset's grading facts (answer kind, labels, cluster key) come from
its ``DatasetSpec`` in one place; ``agentkit.eval.runner`` re-exports both names.
"""

from __future__ import annotations

import hashlib
import os
import typing
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, Field

from agentkit.errors import ConfigError
from agentkit.eval.datasets import Example, dataset_spec, load_dataset
from agentkit.vocab import AnswerKind

__all__ = ["EvalDataset", "select_dataset"]

_ANSWER_KINDS: tuple[str, ...] = typing.get_args(AnswerKind)


class EvalDataset(BaseModel):
    """The examples of one run and how to grade them."""

    name: str = Field(description="a named set, or the resolved path of a file")
    examples: list[Example]
    answer_kind: AnswerKind
    labels: list[str] | None = None
    field_map: dict[str, str] | None = None
    sha256: str | None = Field(None, description="of a custom file, so --resume notices an edited file")
    cluster_key: str | None = Field(None, description="the example field that groups dependent rows (None: "
                                    "every example stands alone)")

    def clusters(self) -> list[str] | None:
        """Each example's group, in order, for statistics that must resample groups, not rows."""
        if self.cluster_key is None:
            return None
        missing = next((e.id for e in self.examples if self.cluster_key not in e.fields), None)
        if missing is not None:
            raise ConfigError(f"example {missing!r} has no {self.cluster_key!r} field, the dataset's cluster_key; "
                              "set it on every example or use cluster_key=None")
        return [str(e.fields[self.cluster_key]) for e in self.examples]


def select_dataset(
    name_or_path: str | os.PathLike[str],
    *,
    limit: int | None = None,
    answer_kind: AnswerKind | None = None,
    field_map: Mapping[str, str] | None = None,
) -> EvalDataset:
    """A named set (its answer kind, labels and cluster key known) or a JSONL/JSON file (kind defaults to text)."""
    if answer_kind is not None and answer_kind not in _ANSWER_KINDS:
        raise ConfigError(f"unknown answer kind {answer_kind!r}; use one of {', '.join(_ANSWER_KINDS)}")
    key = os.fspath(name_or_path)
    examples = load_dataset(key, limit=limit, field_map=field_map)
    try:
        spec = dataset_spec(key)
    except ConfigError:  # a file: not one of the named sets
        path = Path(key).resolve()
        return EvalDataset(name=str(path), examples=examples, answer_kind=answer_kind or "text",
                           field_map=dict(field_map) if field_map else None,
                           sha256=hashlib.sha256(path.read_bytes()).hexdigest())
    return EvalDataset(name=spec.name, examples=examples, answer_kind=answer_kind or spec.answer_kind,
                       labels=sorted(spec.labels) if spec.labels else None, cluster_key=spec.cluster_key)
