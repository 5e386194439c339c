"""``agentkit run``: one pattern on one input, the result as one JSON object on stdout."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from agentkit.cli._common import (
    PATTERN_HELP,
    BackendOpt,
    BaseUrlOpt,
    KnobsOpt,
    ModelOpt,
    SamplesOpt,
    SeedOpt,
    TraceFileOpt,
    exit_codes,
    parse_input,
    pattern_knobs,
)


def run(
    pattern: Annotated[str, typer.Argument(help=PATTERN_HELP)],
    question: Annotated[str | None, typer.Option("--question", help="the question, as text")] = None,
    input_json: Annotated[str | None, typer.Option("--input", help="the pattern's input as a JSON object")] = None,
    backend: BackendOpt = "llamacpp",
    base_url: BaseUrlOpt = None,
    model: ModelOpt = None,
    samples: SamplesOpt = None,
    seed: SeedOpt = None,
    trace_file: TraceFileOpt = None,
    option: KnobsOpt = None,
) -> None:
    """Run one pattern on one input and print the result as JSON."""
    from agentkit import tracing
    from agentkit.backends import make_backend
    from agentkit.graphs import get_pattern

    with exit_codes():
        spec = get_pattern(pattern)
        inp = parse_input(spec.input_type, question, input_json)
        knobs = pattern_knobs(spec, samples=samples, seed=seed, options=option or [])
        provider = tracing.configure(trace_file=trace_file)
        try:
            engine = make_backend(backend, model=model, base_url=base_url)
            result = asyncio.run(spec.build(engine, **knobs).compile().ainvoke(inp))
        finally:
            if provider is not None:
                provider.shutdown()
    typer.echo(result.model_dump_json())


def register(app: typer.Typer) -> None:
    app.command("run")(run)
