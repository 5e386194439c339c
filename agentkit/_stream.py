"""Node-by-node streaming: ``CompiledGraph.astream`` yields a typed event as each node finishes.

Each node measures its own calls and tokens (a nested ``stats.collect``, forwarded to the run's)
and hands them to LangGraph's custom stream; the node's state update follows on the "updates"
stream, and the two are paired by node name. The last event carries the validated output.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from agentkit import _interrupt, _persistence_run, stats
from agentkit._interrupt import Paused
from agentkit.backends.base import Usage

if TYPE_CHECKING:
    from agentkit.graph import CompiledGraph
    from agentkit.persistence import RunSettings

_USAGE_KEY = "agentkit_node_usage"


class NodeFinished(BaseModel):
    """One node finished: its state update, the model calls and tokens it used, seconds since the start."""

    kind: Literal["node"] = "node"
    node: str
    update: dict[str, Any] = Field(default_factory=dict)
    calls: int = 0
    usage: Usage = Field(default_factory=Usage)
    elapsed_s: float


class RunFinished(BaseModel):
    """The run's end: its output (the graph's output model), totals, and seconds since the start."""

    kind: Literal["final"] = "final"
    output: Any
    calls: int = 0
    usage: Usage = Field(default_factory=Usage)
    elapsed_s: float


StreamEvent = NodeFinished | RunFinished | Paused


def report(node: str, used: stats.RunStats) -> None:
    """Called by a node when it ends: its usage goes to the custom stream (a no-op when not streaming)."""
    from langgraph.config import get_stream_writer

    try:
        writer = get_stream_writer()
    except (RuntimeError, KeyError):  # not inside a LangGraph run
        return
    writer({_USAGE_KEY: {"node": node, "calls": used.calls, "usage": used.usage}})


async def stream(compiled: CompiledGraph[Any], data: dict[str, Any], *, thread_id: str | None,
                 settings: RunSettings | None, recursion_limit: int) -> AsyncIterator[StreamEvent]:
    start = time.perf_counter()
    modes = ["updates", "custom", "values"]
    with stats.collect() as total:
        if thread_id is None:
            async for event in _events(compiled, compiled.langgraph.astream(
                    data, {"recursion_limit": recursion_limit}, stream_mode=modes), start, total, None):
                yield event
            return
        async with _persistence_run.opened(compiled._require_checkpointer()) as saver:
            plan = await _persistence_run.plan(compiled.langgraph, saver, state=compiled.graph.state,
                                               graph=compiled.name, data=data, thread_id=thread_id,
                                               settings=settings, recursion_limit=recursion_limit)
            if plan.finished is not None:
                yield _final(compiled, plan.finished, start, total)
                return
            chunks = plan.pregel.astream(plan.input, plan.config, stream_mode=modes, durability="sync")
            async for event in _events(compiled, chunks, start, total, thread_id):
                yield event


def _final(compiled: CompiledGraph[Any], values: Any, start: float, total: stats.RunStats) -> RunFinished:
    values = values.model_dump() if isinstance(values, BaseModel) else dict(values)
    output = (compiled.graph.output or compiled.graph.state).model_validate(values)
    return RunFinished(output=output, calls=total.calls, usage=total.usage, elapsed_s=time.perf_counter() - start)


async def _events(compiled: CompiledGraph[Any], chunks: Any, start: float,
                  total: stats.RunStats, thread_id: str | None) -> AsyncIterator[StreamEvent]:
    measured: dict[str, list[dict[str, Any]]] = {}
    last: Any = {}
    asked: tuple[Paused, dict[str, str]] | None = None
    async for mode, chunk in chunks:
        if mode == "custom" and isinstance(chunk, dict) and _USAGE_KEY in chunk:
            entry = chunk[_USAGE_KEY]
            measured.setdefault(entry["node"], []).append(entry)
        elif mode == "values":
            last = chunk
        elif mode == "updates":
            for node, update in chunk.items():
                if node == "__interrupt__":  # an approval node paused the run: the last event says so
                    asked = asked or _interrupt.pending(update, thread_id or "")
                if node.startswith("__"):  # LangGraph's own
                    continue
                used = (measured.get(node) or [{}]).pop(0) if measured.get(node) else {}
                yield NodeFinished(node=node, update=dict(update or {}), calls=used.get("calls", 0),
                                   usage=used.get("usage", Usage()), elapsed_s=time.perf_counter() - start)
    yield asked[0] if asked is not None else _final(compiled, last, start, total)
