"""The question a generic question-answering agent reads, built from an example's fields.

Patterns and baselines that take one ``question`` string share this, so a pattern and its
baselines always see the same words and a report compares reasoning, not prompts. The text is built
from the fields present, not from the dataset's name, so a custom JSONL with the same field names
works too: ``context`` (premises) comes first, then ``question`` (which for the logic sets already
states the conclusion), then the ``options``; a judging row (``candidate``) becomes "here is a
solution, is it correct?".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agentkit.errors import InputError
from agentkit.eval.datasets import Example

__all__ = ["question_text"]

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
    """One self-contained question: premises, question, options or the candidate to judge."""
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
