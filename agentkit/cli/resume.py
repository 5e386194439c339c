"""``agentkit resume``: continue a run paused for approval, rebuilt from its thread's record.

The thread stores what made the run (pattern, knobs, backend kind, model, URL and in-flight limit;
see ``agentkit.persistence.ThreadRecord``), so the command needs only the store, the thread and the
decision; ``--base-url`` may point the same model at another endpoint, ``--max-in-flight`` give it
another limit.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

import typer

from agentkit.cli._common import (
    BaseUrlOpt,
    MaxInFlightOpt,
    RequestTimeoutOpt,
    TraceFileOpt,
    base_urls,
    exit_codes,
    fail,
)


def resume(
    thread: Annotated[str, typer.Option("--thread", help="the paused run's thread id")],
    checkpoint: Annotated[str, typer.Option(
        "--checkpoint", help="the checkpoint store it is in: a SQLite file or a postgresql:// DSN")],
    decision: Annotated[Literal["approve", "reject"], typer.Option(
        "--decision", help="approve: go on as asked; reject: the pattern's fallback (cascade: keep the lower tier)")],
    base_url: BaseUrlOpt = None,
    max_in_flight: MaxInFlightOpt = None,
    request_timeout: RequestTimeoutOpt = None,
    trace_file: TraceFileOpt = None,
) -> None:
    """Continue a paused run with a decision and print its result as JSON (exit 3 if it pauses again)."""
    from agentkit import persistence, tracing
    from agentkit.backends import make_backend
    from agentkit.cli import _approval
    from agentkit.graphs import get_pattern

    with exit_codes():
        store = persistence.from_target(checkpoint)
        info = asyncio.run(persistence.read_thread(store, thread))
        if info is None:
            fail(f"thread {thread!r} is not in {checkpoint}; see agentkit threads list --checkpoint {checkpoint}")
        settings = info.settings
        if settings is None or settings.pattern is None or settings.backend is None:
            fail(f"thread {thread!r} was not started by `agentkit run`, so its run cannot be rebuilt here; "
                 "resume it from Python with CompiledGraph.aresume")
        if info.status != "paused":
            fail(f"thread {thread!r} is {info.status}, not paused for a decision; rerun its `agentkit run` "
                 "command to continue or read it")
        settings = settings.model_copy(update={"base_url": base_urls(base_url) or settings.base_url,
                                               "max_in_flight": max_in_flight or settings.max_in_flight,
                                               "timeout_s": request_timeout or settings.timeout_s})
        spec = get_pattern(settings.pattern)
        knobs = spec.check_knobs(settings.knobs)
        provider = tracing.configure(trace_file=trace_file)
        try:
            engine = make_backend(settings.backend, model=settings.model, base_url=settings.base_url,
                                  max_in_flight=settings.max_in_flight, timeout_s=settings.timeout_s)
            compiled = spec.build(engine, **knobs).compile(checkpointer=store)
            result = asyncio.run(compiled.aresume(thread, decision, settings=settings))
            result = _approval.settle(compiled, result, thread=thread, checkpoint=checkpoint, settings=settings)
        finally:
            if provider is not None:
                provider.shutdown()
    typer.echo(result.model_dump_json())


def register(app: typer.Typer) -> None:
    app.command("resume")(resume)
