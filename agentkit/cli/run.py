"""``agentkit run``: one pattern on one input, the result as one JSON object on stdout."""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any

import typer

from agentkit.cli._common import (
    PATTERN_HELP,
    BackendOpt,
    BaseUrlOpt,
    KnobsOpt,
    MaxInFlightOpt,
    ModelOpt,
    RequestTimeoutOpt,
    SamplesOpt,
    SeedOpt,
    TraceFileOpt,
    base_urls,
    exit_codes,
    fail,
    parse_input,
    pattern_knobs,
)

CheckpointOpt = Annotated[str | None, typer.Option(
    "--checkpoint", help="checkpoint store: a SQLite file or a postgresql:// DSN (with --thread)")]
ThreadOpt = Annotated[str | None, typer.Option("--thread", help="the run's thread id in the checkpoint store")]


def run(
    pattern: Annotated[str, typer.Argument(help=PATTERN_HELP)],
    question: Annotated[str | None, typer.Option("--question", help="the question, as text")] = None,
    input_json: Annotated[str | None, typer.Option("--input", help="the pattern's input as a JSON object")] = None,
    backend: BackendOpt = "llamacpp",
    base_url: BaseUrlOpt = None,
    max_in_flight: MaxInFlightOpt = None,
    request_timeout: RequestTimeoutOpt = None,
    model: ModelOpt = None,
    samples: SamplesOpt = None,
    seed: SeedOpt = None,
    trace_file: TraceFileOpt = None,
    option: KnobsOpt = None,
    checkpoint: CheckpointOpt = None,
    thread: ThreadOpt = None,
    stream: Annotated[bool, typer.Option("--stream", help="one progress line per node on stderr")] = False,
    approve_escalation: Annotated[bool, typer.Option(
        "--approve-escalation", help="cascade: ask before escalating to a dearer tier (y/n on a terminal; "
        "otherwise exit 3 with the resume command)")] = False,
) -> None:
    """Run one pattern on one input and print the result as JSON.

    With --checkpoint and --thread the run is durable: rerunning the same command after a crash
    continues it without redoing finished model calls; rerunning a finished one prints its result.
    A run paused for approval asks on a terminal, else exits 3 printing `agentkit resume ...`.
    """
    from agentkit import tracing
    from agentkit.backends import make_backend
    from agentkit.cli import _approval
    from agentkit.graphs import get_pattern
    from agentkit.persistence import RunSettings, from_target, jsonable

    with exit_codes():
        if (checkpoint is None) != (thread is None):
            fail("--checkpoint and --thread go together: give both (or neither)")
        spec = get_pattern(pattern)
        inp = parse_input(spec.input_type, question, input_json)
        knobs = pattern_knobs(spec, samples=samples, seed=seed, options=option or [])
        if approve_escalation:
            if "approve_escalation" not in spec.knobs:
                fail(f"--approve-escalation is for the cascade pattern, not {pattern!r}")
            if checkpoint is None and not _approval.interactive():
                fail("--approve-escalation without a terminal needs --checkpoint and --thread, so the paused run "
                     "can be resumed (agentkit resume)")
            knobs = spec.check_knobs({**knobs, "approve_escalation": True})
        store = from_target(checkpoint) if checkpoint is not None else _memory_store(knobs)
        thread = thread if thread is not None or store is None else f"run-{uuid.uuid4().hex[:12]}"
        provider = tracing.configure(trace_file=trace_file)
        try:
            engine = make_backend(backend, model=model, base_url=base_urls(base_url), max_in_flight=max_in_flight,
                                  timeout_s=request_timeout)
            compiled = spec.build(engine, **knobs).compile(checkpointer=store)
            durable = {} if store is None else {"thread_id": thread, "settings": RunSettings(
                pattern=pattern, knobs=jsonable(knobs), backend=backend, model=model, base_url=base_urls(base_url),
                max_in_flight=max_in_flight, timeout_s=request_timeout)}
            if stream:
                result = asyncio.run(_streamed(compiled, inp, durable))
            else:
                result = asyncio.run(compiled.ainvoke(inp, **durable))
            result = _approval.settle(compiled, result, thread=thread or "", checkpoint=checkpoint,
                                      settings=durable.get("settings"))
        finally:
            if provider is not None:
                provider.shutdown()
    typer.echo(result.model_dump_json())


async def _streamed(compiled: Any, inp: Any, durable: dict[str, Any]) -> Any:
    """Progress on stderr as each node ends (rich on a terminal, plain lines otherwise); the output back."""
    import sys

    from rich.console import Console

    from agentkit.graph import NodeFinished, Paused

    console = Console(stderr=True) if sys.stderr.isatty() else None
    async for event in compiled.astream(inp, **durable):
        if not isinstance(event, NodeFinished):
            return event if isinstance(event, Paused) else event.output
        tokens = f"{event.usage.input_tokens}/{event.usage.output_tokens}"
        if console is not None:
            console.print(f"[green]✓[/] [bold]{event.node}[/]  [dim]{event.elapsed_s:6.2f}s  "
                          f"calls={event.calls}  tokens in/out={tokens}[/]", highlight=False)
        else:
            typer.echo(f"{event.node} {event.elapsed_s:.2f}s calls={event.calls} tokens={tokens}", err=True)
    raise AssertionError("astream ended without its final event")


def _memory_store(knobs: dict[str, Any]) -> Any:
    """A run asked on this terminal needs a store only while it waits: LangGraph's in-memory one."""
    if knobs.get("approve_escalation") is not True:
        return None
    from langgraph.checkpoint.memory import InMemorySaver

    from agentkit._persistence_serde import PlainStateSerializer

    return InMemorySaver(serde=PlainStateSerializer())


def register(app: typer.Typer) -> None:
    app.command("run")(run)
