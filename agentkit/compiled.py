"""The runnable form of a ``Graph``: one input or many, streamed, checkpointed, paused and resumed.

``Graph.compile`` builds it; this module holds what a caller does with it, so the builder stays about
wiring. Persistence, streaming and approval each live in their own module (``_persistence_run``,
``_stream``, ``_interrupt``); the methods here are the public entry points to them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel

from agentkit import _interrupt, _persistence_run, _stream, stats, tracing
from agentkit._interrupt import Decision
from agentkit._persistence_run import RunSettings
from agentkit._stream import RunFinished, StreamEvent
from agentkit.errors import ConfigError

if TYPE_CHECKING:
    from agentkit.graph import Graph

S = TypeVar("S", bound=BaseModel)

__all__ = ["CompiledGraph"]


class CompiledGraph(Generic[S]):
    """Runnable graph: ``invoke``/``ainvoke`` one input, ``batch``/``abatch`` many with a limit."""

    def __init__(self, graph: Graph[S], compiled: Any, *, checkpointer: Any = None) -> None:
        self.graph = graph
        self.langgraph = compiled
        self.checkpointer = checkpointer

    @property
    def name(self) -> str:
        return self.graph.name

    def _coerce(self, inp: BaseModel | Mapping[str, Any]) -> dict[str, Any]:
        data = inp.model_dump() if isinstance(inp, BaseModel) else dict(inp)
        missing = self.graph.inputs - set(data)
        if missing:
            raise ConfigError(f"graph {self.name!r}: input is missing {sorted(missing)}")
        return data

    async def ainvoke(self, inp: BaseModel | Mapping[str, Any], *, recursion_limit: int = 100,
                      thread_id: str | None = None, settings: RunSettings | None = None) -> Any:
        """Run once; with ``thread_id`` (and a checkpointer) start, continue or re-read that thread.

        ``settings`` (pattern, knobs, backend) are stored with a new thread, and continuing it with
        other ones is refused naming the difference (the CLI passes them; see ``_persistence_run``).
        """
        data = self._coerce(inp)
        with tracing.workflow_span(self.name, data) as s:
            if thread_id is None and self.checkpointer is not None:
                raise ConfigError(f"graph {self.name!r} was compiled with a checkpointer: pass thread_id=... "
                                  "to name the run it stores")
            if thread_id is None:
                final = await self.langgraph.ainvoke(data, config={"recursion_limit": recursion_limit})
            else:
                async with _persistence_run.opened(self._require_checkpointer()) as saver:
                    final = await _persistence_run.invoke(
                        self.langgraph, saver, state=self.graph.state, graph=self.name, data=data,
                        thread_id=thread_id, settings=settings, recursion_limit=recursion_limit)
            result = self._result(final, thread_id)
            tracing.set_output(s, result)
        return result

    def _result(self, final: Any, thread_id: str | None) -> Any:
        """The output model, or ``Paused`` when an approval node stopped the run."""
        values = final.model_dump() if isinstance(final, BaseModel) else dict(final)
        asked = _interrupt.pending(values.pop("__interrupt__", None), thread_id or "")
        if asked is not None:
            return asked[0]
        return (self.graph.output or self.graph.state).model_validate(values)

    async def aresume(self, thread_id: str, decision: Decision | bool, *, recursion_limit: int = 100,
                      settings: RunSettings | None = None) -> Any:
        """Continue a run paused for approval with ``decision``; the output, or the next ``Paused``.

        Works in another process than the one that paused (the thread is read from the store). The
        resumed run's spans continue the paused run's trace, with a link to the span that paused.
        """
        return await _interrupt.resume(self, thread_id, decision, settings=settings,
                                       recursion_limit=recursion_limit)

    def resume(self, thread_id: str, decision: Decision | bool, **kw: Any) -> Any:
        _require_no_loop("resume", "aresume")
        return asyncio.run(self.aresume(thread_id, decision, **kw))

    async def astream(self, inp: BaseModel | Mapping[str, Any], *, recursion_limit: int = 100,
                      thread_id: str | None = None, settings: RunSettings | None = None,
                      ) -> AsyncIterator[StreamEvent]:
        """Like ``ainvoke``, but yield a ``NodeFinished`` as each node ends, then ``RunFinished`` (the
        output), or ``Paused`` when the run stops for approval."""
        data = self._coerce(inp)
        if thread_id is None and self.checkpointer is not None:
            raise ConfigError(f"graph {self.name!r} was compiled with a checkpointer: pass thread_id=... "
                              "to name the run it stores")
        with tracing.workflow_span(self.name, data) as s:
            async for event in _stream.stream(self, data, thread_id=thread_id, settings=settings,
                                              recursion_limit=recursion_limit):
                if isinstance(event, RunFinished):
                    tracing.set_output(s, event.output)
                yield event

    def _require_checkpointer(self) -> Any:
        if self.checkpointer is None:
            raise ConfigError(f"graph {self.name!r}: thread_id needs a checkpoint store; compile with "
                              "checkpointer=agentkit.persistence.sqlite(PATH) (or postgres(DSN))")
        return self.checkpointer

    async def aget_state(self, thread_id: str) -> S | None:
        """The thread's latest checkpointed state as the state model (None before its first step)."""
        async with _persistence_run.opened(self._require_checkpointer()) as saver:
            found = await _persistence_run.latest(saver, thread_id)
        if found is None or not found[1]:  # no such thread, or no step finished yet
            return None
        _persistence_run.check_values(self.graph.state, found[1], thread_id)
        return self.graph.state.model_validate(found[1])

    async def ainvoke_with_stats(self, inp: BaseModel | Mapping[str, Any]) -> tuple[Any, stats.RunStats]:
        """Run once and also return the run's calls/tokens (what the eval harness records)."""
        with stats.collect() as outer:
            result = await self.ainvoke(inp)
        return result, outer

    def invoke(self, inp: BaseModel | Mapping[str, Any], **kw: Any) -> Any:
        _require_no_loop("invoke", "ainvoke")
        return asyncio.run(self.ainvoke(inp, **kw))

    async def abatch(
        self, inputs: Sequence[BaseModel | Mapping[str, Any]], *, concurrency: int = 4, return_exceptions: bool = False
    ) -> list[Any]:
        if concurrency < 1:
            raise ConfigError(f"concurrency must be >= 1, got {concurrency}")
        gate = asyncio.Semaphore(concurrency)

        async def one(x: BaseModel | Mapping[str, Any]) -> Any:
            async with gate:
                return await self.ainvoke(x)

        return await asyncio.gather(*(one(x) for x in inputs), return_exceptions=return_exceptions)

    def batch(self, inputs: Sequence[BaseModel | Mapping[str, Any]], **kw: Any) -> list[Any]:
        _require_no_loop("batch", "abatch")
        return asyncio.run(self.abatch(inputs, **kw))


def _require_no_loop(sync: str, async_: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise ConfigError(f"{sync}() was called inside a running event loop; await {async_}() instead")
