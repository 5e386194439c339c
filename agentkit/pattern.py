"""A reasoning pattern as one object: how to build it, what it reads, and how the harness grades it.

Everything that drives a pattern by name (``agentkit run``, ``agentkit eval``, the registry in
``agentkit.graphs``) reads it from here, so adding a pattern means writing its module and listing it
once. The runtime knows no pattern: a pattern module creates its ``Pattern`` and registers it.

Knobs are the keyword parameters of ``build`` after the backend. Their annotations are the contract:
``checked_knobs`` validates every value against them (pydantic), in one place used by the CLI, the
eval harness and the Python API, so ``k="abc"`` or ``max_tokens=-5`` fail with one line naming the
knob, the value and the type instead of a traceback deep inside a run.
"""

from __future__ import annotations

import functools
import inspect
import json
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import ConfigDict, TypeAdapter, ValidationError

from agentkit.errors import ConfigError
from agentkit.vocab import Example

__all__ = ["Knob", "Pattern", "ScoredExample", "checked_knobs", "knobs_of", "validate_knobs"]

_ARBITRARY = ConfigDict(arbitrary_types_allowed=True)


class ScoredExample(Protocol):
    """What a pattern's ``summarize`` hook sees of each graded example (an eval result line)."""

    id: str
    prediction: str | None
    label: str
    correct: bool | None
    error: str | None
    extra: dict[str, Any]


@dataclass(frozen=True)
class Knob:
    """One keyword parameter of a builder: its name, annotation and default."""

    name: str
    annotation: Any
    default: Any

    @functools.cached_property
    def _adapter(self) -> TypeAdapter[Any] | None:
        if self.annotation is inspect.Parameter.empty:
            return None
        try:
            return TypeAdapter(self.annotation, config=_ARBITRARY)
        except Exception:  # an annotation pydantic cannot build a validator for: accept values as given
            return None

    def validate(self, value: Any, owner: str) -> Any:
        adapter = self._adapter
        if adapter is None:
            return value
        try:
            return adapter.validate_python(value)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise ConfigError(f"{owner}: knob {self.name!r} = {_show(value)} is not valid ({err['msg']}); "
                              f"expected {type_name(self.annotation)}") from None
        except TypeError:  # e.g. isinstance() against a non-runtime Protocol: nothing to check
            return value

    @property
    def type_name(self) -> str:
        return type_name(self.annotation)


def _show(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return f"<{type(value).__name__}>"


def type_name(annotation: Any) -> str:
    """The annotation in a user's words: ``int > 0``, ``one of "a", "b"``, ``list[JudgeProfile] or null``."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        bounds = [_bound(m) for m in args[1:]]
        return " ".join([type_name(args[0]), *(b for b in bounds if b)])
    if origin is typing.Literal:
        return "one of " + ", ".join(json.dumps(a) for a in args)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return " or ".join("null" if a is type(None) else type_name(a) for a in args)
    if origin is not None:
        return f"{getattr(origin, '__name__', str(origin))}[{', '.join(type_name(a) for a in args)}]"
    return getattr(annotation, "__name__", str(annotation))


def _bound(meta: Any) -> str:
    for attr, sign in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
        value = getattr(meta, attr, None)
        if value is not None:
            return f"{sign} {value}"
    for inner in getattr(meta, "metadata", ()):  # a FieldInfo carries its bounds as metadata
        text = _bound(inner)
        if text:
            return text
    return ""


def knobs_of(build: Callable[..., Any]) -> dict[str, Knob]:
    """The keyword parameters of ``build`` after its first (the backend), with resolved annotations."""
    target = inspect.unwrap(build)
    params = list(inspect.signature(target).parameters.values())[1:]
    try:
        hints = typing.get_type_hints(target, include_extras=True)
    except Exception:  # an annotation that does not resolve: keep names, skip value checks
        hints = {}
    named = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return {p.name: Knob(p.name, hints.get(p.name, inspect.Parameter.empty), p.default)
            for p in params if p.kind in named}


def validate_knobs(owner: str, knobs: Mapping[str, Knob], values: Mapping[str, Any]) -> dict[str, Any]:
    """Check names and values; return the values as the annotations coerce them (``"3"`` -> 3)."""
    unknown = sorted(set(values) - set(knobs))
    if unknown:
        raise ConfigError(f"{owner} has no knob {', '.join(map(repr, unknown))}; "
                          f"knobs: {', '.join(sorted(knobs))}")
    return {name: knobs[name].validate(value, owner) for name, value in values.items()}


def checked_knobs(build: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a pattern's ``build`` so its keyword knobs are validated on every call (Python API too)."""
    owner = f"{build.__module__.rsplit('.', 1)[-1]}.{build.__name__}"

    first = next(iter(inspect.signature(build).parameters))

    @functools.wraps(build)
    def wrapper(*args: Any, **knobs: Any) -> Any:
        if first in knobs:  # the backend passed by name
            args = (*args, knobs.pop(first))
        return build(*args, **validate_knobs(owner, _knobs(), knobs))

    @functools.cache
    def _knobs() -> dict[str, Knob]:
        return knobs_of(build)

    return wrapper


@dataclass(frozen=True)
class Pattern:
    """A pattern as the CLI and the harness see it.

    ``input_from`` turns a dataset row into the pattern's input, ``prediction`` reads the graded
    answer off the output, ``extras`` keeps per-example facts in results.jsonl, and ``summarize``
    turns the graded examples into the figures only this pattern has (summary.json's
    ``pattern_metrics``). ``samples_knob`` is the knob ``--samples`` sets, None if it has none.
    """

    name: str
    build: Callable[..., Any]
    input_type: type[Any]
    description: str = ""
    samples_knob: str | None = None
    input_from: Callable[[Example], Any] | None = None
    prediction: Callable[[Any], str | None] | None = None
    extras: Callable[[Any], Mapping[str, Any]] | None = None
    summarize: Callable[[Sequence[ScoredExample]], Mapping[str, Any]] | None = None
    _knobs: dict[str, Knob] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"pattern name {self.name!r}: use letters, digits, '-' or '_'")
        if self.samples_knob is not None and self.samples_knob not in self.knobs:
            raise ConfigError(f"pattern {self.name!r}: samples_knob {self.samples_knob!r} is not a knob of its build")

    @property
    def knobs(self) -> dict[str, Knob]:
        if not self._knobs:
            self._knobs.update(knobs_of(self.build))
        return self._knobs

    @property
    def evaluable(self) -> bool:
        return self.input_from is not None and self.prediction is not None

    def check_knobs(self, values: Mapping[str, Any]) -> dict[str, Any]:
        return validate_knobs(f"pattern {self.name!r}", self.knobs, values)

    def parse_option(self, item: str) -> tuple[str, Any]:
        """``KEY=VALUE`` from the command line: the value is JSON when it parses, else a plain string."""
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--option {item!r} is not KEY=VALUE")
        if key not in self.knobs:
            raise ConfigError(f"--option {key!r} is not a knob of {self.name}; knobs: {', '.join(sorted(self.knobs))}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        return key, value

    def graph(self, backend: Any = None, **knobs: Any) -> Any:
        """Build the pattern's graph with checked knobs (not compiled: callers may add to it)."""
        return self.build(backend, **self.check_knobs(knobs))

    def accepts(self, knob: str, value: Any) -> bool:
        """Whether ``knob`` exists and takes ``value`` (the harness fills answer_kind/labels this way)."""
        spec = self.knobs.get(knob)
        if spec is None:
            return False
        try:
            spec.validate(value, self.name)
        except ConfigError:
            return False
        return True
