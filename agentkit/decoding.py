"""Typed output <-> constrained text: pydantic type -> JSON schema -> constraint -> validated object.

Guided decoding is the default for every typed output, but it is never trusted: a backend can fail
to apply a constraint silently (outlines without numba returns free text), so every sample is
validated here and a bad one becomes a ``SchemaViolation`` instead of flowing on.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from agentkit.backends._grammar_cache import GrammarCache
from agentkit.backends.base import Choice, OutputConstraint
from agentkit.errors import SchemaViolation, TruncatedOutput
from agentkit.vocab import error_at

__all__ = ["GrammarCache", "constraint_for", "json_schema_for", "parse_choice", "parse_choices"]

T = TypeVar("T", bound=BaseModel)


def _close_objects(node: Any) -> None:
    """Forbid keys the type does not declare: JSON Schema allows extra keys by default, and a
    small model under a permissive grammar happily invents a dozen of them."""
    if isinstance(node, dict):
        if node.get("type") == "object" and "properties" in node:
            node.setdefault("additionalProperties", False)
        for value in node.values():
            _close_objects(value)
    elif isinstance(node, list):
        for value in node:
            _close_objects(value)


def json_schema_for(output_type: type[BaseModel]) -> dict[str, Any]:
    schema = output_type.model_json_schema()
    _close_objects(schema)
    return schema


def constraint_for(output_type: type[BaseModel]) -> OutputConstraint:
    return OutputConstraint(kind="json_schema", value=json_schema_for(output_type), whitespace="compact")


def parse_choice(output_type: type[T], choice: Choice) -> T:
    """Validate one sample; truncation is reported as its own failure, since retrying with a
    larger max_tokens fixes it while resampling does not."""
    if choice.finish_reason == "length":
        raise TruncatedOutput(
            f"{output_type.__name__}: sample stopped at max_tokens before the JSON was complete; "
            "raise max_tokens or bound the string fields (max_length)",
            text=choice.text,
        )
    try:
        return output_type.model_validate_json(choice.text)
    except ValidationError as exc:
        field, msg = error_at(exc)
        snippet = choice.text if len(choice.text) <= 120 else choice.text[:117] + "..."
        raise SchemaViolation(
            f"{output_type.__name__}.{field}: {msg} in model output {snippet!r}",
            text=choice.text,
            field=field,
        ) from None


def parse_choices(output_type: type[T], choices: list[Choice]) -> tuple[list[T], list[SchemaViolation]]:
    """Split samples into valid objects and violations, keeping sample order."""
    ok: list[T] = []
    bad: list[SchemaViolation] = []
    for choice in choices:
        try:
            ok.append(parse_choice(output_type, choice))
        except SchemaViolation as exc:
            bad.append(exc)
    return ok, bad
