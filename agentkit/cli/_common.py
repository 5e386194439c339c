"""What every ``agentkit`` command shares: option types whose help comes from the registries, the
exit-code rule, and turning command-line words into a pattern's input and knobs.

The exit-code rule is the CLI's contract: a caller's mistake (unknown pattern, knob or backend, a
bad value, malformed JSON) exits 2 with one line naming what to fix; a failure of the run itself
(a backend that died) exits 1; nothing ends in a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any, NoReturn

import typer
from pydantic import BaseModel, ValidationError

from agentkit.errors import AgentkitError, ConfigError, InputError
from agentkit.pattern import Pattern
from agentkit.vocab import first_error


def fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def exit_codes() -> Iterator[None]:
    """Caller mistakes exit 2, run failures 1, each as one line on stderr."""
    try:
        yield
    except (ConfigError, InputError) as exc:
        fail(str(exc).splitlines()[0])
    except AgentkitError as exc:
        fail(f"{type(exc).__name__}: {str(exc).splitlines()[0]}", code=1)


def _backend_help() -> str:
    from agentkit.backends import backend_kinds

    return "; ".join(f"{kind}: {text}" for kind, text in backend_kinds().items())


def _pattern_help() -> str:
    from agentkit.graphs import pattern_names

    return " | ".join(pattern_names())


BackendOpt = Annotated[str, typer.Option("--backend", help=_backend_help())]
ModelOpt = Annotated[str | None, typer.Option("--model", help="GGUF path (llamacpp) or served model name")]
BaseUrlOpt = Annotated[list[str] | None, typer.Option(
    "--base-url", help="server URL for the server backends; repeat it to pool replicas of one model")]


MaxInFlightOpt = Annotated[int | None, typer.Option(
    "--max-in-flight", min=1, help="server backends: sequences at each server at once (match its --max-num-seqs; "
    "vllm default 128); the rest queue in the client")]


RequestTimeoutOpt = Annotated[float | None, typer.Option(
    "--request-timeout", min=0.001, help="server backends: seconds a request sent to a server may take before it "
    "fails (default 300); raise it when long generations share a loaded CPU server")]


def base_urls(values: list[str] | None) -> str | list[str] | None:
    """--base-url as make_backend takes it: one URL, several (a pool), or none."""
    if not values:
        return None
    return values[0] if len(values) == 1 else list(values)
SamplesOpt = Annotated[int | None, typer.Option("--samples", min=1, help="k samples (the pattern's samples knob)")]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="sampling seed")]
TraceFileOpt = Annotated[str | None, typer.Option("--trace-file", help="write spans as JSON lines here")]
KnobsOpt = Annotated[
    list[str] | None, typer.Option("--option", "-o", help="pattern knob KEY=VALUE (JSON value), repeatable")
]
PATTERN_HELP = _pattern_help()


def parse_input(input_type: type[BaseModel], question: str | None, input_json: str | None) -> BaseModel:
    """``--question TEXT`` for single-question patterns, ``--input JSON`` for any."""
    if (question is None) == (input_json is None):
        fail("give exactly one of --question TEXT or --input JSON")
    fields = input_type.model_fields
    needs_more = any(f.is_required() for name, f in fields.items() if name != "question")
    if question is not None and ("question" not in fields or needs_more):
        fail(f"this pattern takes --input JSON with fields: {', '.join(fields)} (not --question)")
    try:
        data: Any = {"question": question} if question is not None else json.loads(input_json or "")
    except json.JSONDecodeError as exc:
        fail(f"--input is not valid JSON ({exc.msg} at position {exc.pos}); pass a JSON object, "
             "e.g. '{\"question\": \"...\"}'")
    try:
        return input_type.model_validate(data)
    except ValidationError as exc:
        fail(f"{first_error(exc, '--input ')}; expected fields: {', '.join(fields)}")


def pattern_knobs(pattern: Pattern, *, samples: int | None, seed: int | None, options: Sequence[str]) -> dict[str, Any]:
    """The knobs a command line sets: --samples (the pattern's samples knob), --seed, -o KEY=VALUE.

    Checked against the pattern's build signature in ``Pattern.check_knobs``, the one place the
    Python API and the eval harness check them too.
    """
    knobs: dict[str, Any] = {}
    if samples is not None:
        if pattern.samples_knob is None:
            raise ConfigError(f"pattern {pattern.name!r} has no samples knob; drop --samples")
        knobs[pattern.samples_knob] = samples
    if seed is not None and "seed" in pattern.knobs:
        knobs["seed"] = seed
    knobs.update(pattern.parse_option(item) for item in options)
    return pattern.check_knobs(knobs)
