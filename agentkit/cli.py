"""The ``agentkit`` command. Bad input exits with code 2 and one line naming what to fix."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from typing import Annotated, Any, NoReturn

import typer
from pydantic import BaseModel, ValidationError

from agentkit.errors import AgentkitError, ConfigError, InputError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Compose small language models into reasoning patterns.")



@app.callback()
def _root() -> None:
    """agentkit: typed graphs of small language models, guided decoding, verifiers and traces."""

BackendOpt = Annotated[str, typer.Option("--backend", help="llamacpp (embedded SmolLM2) | vllm | openai")]
ModelOpt = Annotated[str | None, typer.Option("--model", help="GGUF path (llamacpp) or served model name")]
BaseUrlOpt = Annotated[str | None, typer.Option("--base-url", help="server URL for vllm/openai backends")]


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _parse_input(input_type: type[BaseModel], question: str | None, input_json: str | None) -> BaseModel:
    if (question is None) == (input_json is None):
        _fail("give exactly one of --question TEXT or --input JSON")
    needs_more = any(f.is_required() for name, f in input_type.model_fields.items() if name != "question")
    if question is not None and ("question" not in input_type.model_fields or needs_more):
        _fail(f"this pattern takes --input JSON with fields: {', '.join(input_type.model_fields)} (not --question)")
    if question is not None:
        return input_type.model_validate({"question": question})
    try:
        data: Any = json.loads(input_json or "")
    except json.JSONDecodeError as exc:
        _fail(f"--input is not valid JSON ({exc.msg} at position {exc.pos}); pass a JSON object, e.g. '{{\"question\": \"...\"}}'")
    try:
        return input_type.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "<root>"
        _fail(f"--input field {field!r}: {err['msg']}; expected fields: {', '.join(input_type.model_fields)}")


def _parse_knobs(options: list[str], build: Any) -> dict[str, Any]:
    """``-o k=3 -o answer_kind=number``: values are JSON when they parse, else plain strings."""
    import inspect

    accepted = set(inspect.signature(build).parameters) - {"backend"}
    knobs: dict[str, Any] = {}
    for item in options:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            _fail(f"--option {item!r} is not KEY=VALUE")
        if key not in accepted:
            _fail(f"--option {key!r} is not a knob of this pattern; knobs: {', '.join(sorted(accepted))}")
        try:
            knobs[key] = json.loads(raw)
        except json.JSONDecodeError:
            knobs[key] = raw
    return knobs


@app.command()
def run(
    pattern: Annotated[str, typer.Argument(help="daslam | maj | linc | mccot | cascade")],
    question: Annotated[str | None, typer.Option("--question", help="the question, as text")] = None,
    input_json: Annotated[str | None, typer.Option("--input", help="the pattern's input as a JSON object")] = None,
    backend: BackendOpt = "llamacpp",
    base_url: BaseUrlOpt = None,
    model: ModelOpt = None,
    samples: Annotated[int | None, typer.Option("--samples", min=1, help="k samples (n=k in one request)")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="sampling seed")] = None,
    trace_file: Annotated[str | None, typer.Option("--trace-file", help="write spans as JSON lines here")] = None,
    option: Annotated[
        list[str] | None, typer.Option("--option", "-o", help="pattern knob KEY=VALUE (JSON value), repeatable")
    ] = None,
) -> None:
    """Run one pattern on one input and print the result as JSON."""
    from agentkit import tracing
    from agentkit.backends import make_backend
    from agentkit.graphs import get_pattern

    try:
        spec = get_pattern(pattern)
        module = spec.load()
        inp = _parse_input(getattr(module, spec.input_type), question, input_json)
        provider = tracing.configure(trace_file=trace_file)
        engine = make_backend(backend, model=model, base_url=base_url)
        knobs: dict[str, Any] = {}
        if samples is not None and spec.samples_knob:
            knobs[spec.samples_knob] = samples
        if seed is not None:
            knobs["seed"] = seed
        build = getattr(module, spec.builder)
        knobs.update(_parse_knobs(option or [], build))
        graph = build(engine, **knobs).compile()
        result = asyncio.run(graph.ainvoke(inp))
        if provider is not None:
            provider.shutdown()
    except (ConfigError, InputError) as exc:
        _fail(str(exc).splitlines()[0])
    except AgentkitError as exc:
        _fail(f"{type(exc).__name__}: {str(exc).splitlines()[0]}", code=1)
    typer.echo(result.model_dump_json())


#: Modules that add their own commands to ``app`` via ``register(app)``, one job per module.
_COMMAND_MODULES: list[str] = ["agentkit._cli_eval", "agentkit._cli_models", "agentkit._cli_serve", "agentkit._cli_trace"]


def _register_commands() -> None:
    import importlib

    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(app)


_register_commands()


def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    app()


if __name__ == "__main__":
    main()
