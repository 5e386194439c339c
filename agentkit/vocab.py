"""The words every pattern, baseline and the harness share, defined once.

Kept free of everything but pydantic and ``agentkit.errors`` so any layer may import it: a pattern
and its baselines must read the same question, accept the same answer kinds and shape a numeric
answer the same way, or a report ends up comparing prompts instead of reasoning.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.fields import FieldInfo

from agentkit.errors import InputError

__all__ = [
    "JUDGE_QUESTION",
    "NUMBER_PATTERN",
    "OPTIONS_HINT",
    "AnswerKind",
    "Example",
    "Question",
    "error_at",
    "first_error",
    "number_answer",
    "question_text",
]

#: How an answer is compared with the gold label (``agentkit.verifiers.answer``): a number, a LaTeX
#: expression, one of a fixed label set, or free text.
AnswerKind = Literal["text", "number", "label", "latex"]

#: A final number as a small model should write it: digits, optional thousands commas and decimals.
NUMBER_PATTERN = r"^-?[0-9][0-9,]*(\.[0-9]+)?$"


class Question(BaseModel):
    """The input of every single-question pattern (MC-CoT, DaSLaM, the cascade, the baselines)."""

    question: str = Field(min_length=1)


def number_answer(description: str = "the final number") -> FieldInfo:
    """The constrained numeric answer field: bounded, so a sample cannot run on to max_tokens."""
    return Field(max_length=24, pattern=NUMBER_PATTERN, description=description)  # type: ignore[no-any-return]


def error_at(exc: ValidationError) -> tuple[str, str]:
    """Where the first problem pydantic found is (``a.b``, or ``<root>``) and its message."""
    err = exc.errors()[0]
    return ".".join(str(p) for p in err.get("loc", ())) or "<root>", str(err.get("msg", "invalid"))


def first_error(exc: ValidationError, prefix: str = "") -> str:
    """One line for the first problem pydantic found: ``field 'a.b': message``.

    Callers name the thing that failed (an --input, a tool's arguments, a dataset row) in ``prefix``;
    the field path and pydantic's message say what to fix.
    """
    where, msg = error_at(exc)
    return f"{prefix}field {where!r}: {msg}"


class Example(BaseModel):
    """One evaluation item: what the pattern reads (``fields``) and what it should answer (``label``)."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(min_length=1)
    fields: dict[str, Any]
    label: str


JUDGE_QUESTION = "Is this solution correct? Answer correct or incorrect."
OPTIONS_HINT = "Answer with the letter of the correct option."


def _text(example: Example, key: str) -> str | None:
    value: Any = example.fields.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(f"example {example.id!r}: field {key!r} should be text, got {type(value).__name__}")
    return value.strip() or None


def _options(example: Example) -> list[str]:
    value: Any = example.fields.get("options")
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
        raise InputError(f"example {example.id!r}: field 'options' should be a list of strings like 'A) ...'")
    return [v.strip() for v in value]


def question_text(example: Example) -> str:
    """One self-contained question from an example's fields, whatever dataset it came from.

    Built from the fields present, not the dataset's name, so a custom JSONL with the same field
    names works too: ``context`` (premises) first, then ``question`` (which for the logic sets already
    states the conclusion), then the ``options``; a judging row (``candidate``) becomes "here is a
    solution, is it correct?".
    """
    question = _text(example, "question")
    if question is None:
        raise InputError(f"example {example.id!r} has no 'question' text; every dataset row needs one "
                         "(map your file's key with field_map, e.g. {'question': 'prompt'})")
    candidate = _text(example, "candidate")
    if candidate is not None:
        return f"Question: {question}\nProposed solution: {candidate}\n{JUDGE_QUESTION}"
    parts = []
    context = _text(example, "context")
    if context is not None:
        parts.append(context)
    parts.append(question)
    options = _options(example)
    if options:
        parts.append("Options:\n" + "\n".join(options) + "\n" + OPTIONS_HINT)
    return "\n".join(parts)
