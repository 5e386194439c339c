"""Agent outputs written in a syntax of their own (a Lark grammar or a regex) instead of JSON.

Some outputs have a natural notation -- first-order logic, a fixed line layout -- that a JSON schema
can only approximate: llguidance cannot put a grammar inside a JSON string, and a formula escaped
into JSON is harder for a small model to write. A ``TextOutput`` pairs such a constraint with a
parser from the constrained text to the agent's pydantic output type, so these agents keep the
runtime's contract: guided decoding first, then validation, and a sample that does not parse
becomes a ``SchemaViolation`` instead of flowing on.

The constraint may depend on the input (e.g. one formula line per premise), so it is a function of
the validated input; so is parsing, which may need the input to read the layout back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from agentkit.backends.base import Choice, OutputConstraint
from agentkit.errors import ConfigError, SchemaViolation, TruncatedOutput

InT = TypeVar("InT", bound=BaseModel)
OutT = TypeVar("OutT", bound=BaseModel)

__all__ = ["TextOutput"]


class TextOutput(Generic[InT, OutT]):
    """How an agent's output is written as constrained text and read back.

    ``constraint(inp)`` returns the Lark grammar (``kind="grammar"``) or regex the backend enforces;
    ``parse(text, inp)`` maps one sample to the output type (a model instance or a dict validated
    against it) and raises ``ValueError`` (pydantic's ``ValidationError`` and agentkit's
    ``InputError`` are ValueErrors) when the text is not what the constraint promised;
    ``render(inp, out)`` writes a few-shot example's output the way the model must write it;
    ``hint`` replaces the JSON-field hint in the system message.
    """

    def __init__(
        self,
        *,
        kind: Literal["grammar", "regex"],
        constraint: Callable[[InT], str],
        parse: Callable[[str, InT], OutT | Mapping[str, Any]],
        render: Callable[[InT, OutT], str],
        hint: str = "",
    ) -> None:
        if kind not in ("grammar", "regex"):
            raise ConfigError(f"TextOutput kind must be 'grammar' or 'regex', got {kind!r}")
        self.kind = kind
        self.constraint = constraint
        self.parse = parse
        self.render = render
        self.hint = hint

    def constraint_for(self, inp: InT) -> OutputConstraint:
        return OutputConstraint(kind=self.kind, value=self.constraint(inp))

    def parse_choice(self, output_type: type[OutT], choice: Choice, inp: InT) -> OutT:
        """Validate one sample; a sample cut at max_tokens is reported as truncation, as for JSON."""
        name = output_type.__name__
        if choice.finish_reason == "length":
            raise TruncatedOutput(
                f"{name}: sample stopped at max_tokens before the {self.kind} was complete; raise max_tokens",
                text=choice.text,
            )
        try:
            value = self.parse(choice.text, inp)
            return value if isinstance(value, output_type) else output_type.model_validate(value)
        except (ValueError, ValidationError) as exc:
            snippet = choice.text if len(choice.text) <= 120 else choice.text[:117] + "..."
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise SchemaViolation(f"{name}: {first} in model output {snippet!r}", text=choice.text) from None

    def parse_choices(
        self, output_type: type[OutT], choices: list[Choice], inp: InT
    ) -> tuple[list[OutT], list[SchemaViolation]]:
        ok: list[OutT] = []
        bad: list[SchemaViolation] = []
        for choice in choices:
            try:
                ok.append(self.parse_choice(output_type, choice, inp))
            except SchemaViolation as exc:
                bad.append(exc)
        return ok, bad
