"""Typed graph builder compiled to a LangGraph StateGraph.

State is a pydantic model. Nodes are agents, verifiers, tools or plain functions; each declares
the keys it reads and writes, which lets ``compile`` reject mis-wired graphs (see ``_wiring``)
before any model is called. Parallel branches run concurrently on asyncio.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import (
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, get_type_hints

from langgraph.graph import StateGraph
from pydantic import BaseModel, create_model

from agentkit import _interrupt, _stream, stats, tracing
from agentkit._interrupt import Decision, Paused
from agentkit._stream import NodeFinished, RunFinished, StreamEvent
from agentkit._wiring import END, START, ancestors, check_parallel_writes, check_reads
from agentkit.agent import Agent, Retry
from agentkit.backends.base import Backend
from agentkit.compiled import CompiledGraph
from agentkit.errors import GraphBuildError

S = TypeVar("S", bound=BaseModel)
Out = TypeVar("Out", bound=BaseModel)

__all__ = ["END", "START", "CompiledGraph", "Decision", "Graph", "NodeFinished", "Paused", "RunFinished",
           "StreamEvent"]

NodeFn = Callable[[Any], "dict[str, Any] | Awaitable[dict[str, Any]]"]


@dataclass
class _Node:
    name: str
    kind: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    run: Callable[[BaseModel, Backend | None], Awaitable[dict[str, Any]]]
    attrs: dict[str, Any] = field(default_factory=dict)


def _reducer_fields(state: type[BaseModel]) -> set[str]:
    hints = get_type_hints(state, include_extras=True)
    return {name for name, hint in hints.items() if name in state.model_fields and getattr(hint, "__metadata__", ())}


class Graph(Generic[S]):
    """Builder. ``inputs`` are the keys a caller must supply (default: state fields without a default)."""

    def __init__(
        self,
        name: str,
        state: type[S],
        *,
        inputs: Iterable[str] | None = None,
        output: type[BaseModel] | None = None,
    ) -> None:
        self.name = name
        self.state = state
        self.output = output
        fields = state.model_fields
        self.inputs = set(inputs) if inputs is not None else {k for k, f in fields.items() if f.is_required()}
        unknown = self.inputs - set(fields)
        if unknown:
            raise GraphBuildError(f"graph {name!r}: inputs {sorted(unknown)} are not fields of {state.__name__}")
        self._nodes: dict[str, _Node] = {}
        self._edges: list[tuple[str, str]] = []
        self._routes: list[tuple[str, Callable[[Any], str], dict[str, str]]] = []
        self._joins: list[tuple[tuple[str, ...], str]] = []

    # -- nodes ---------------------------------------------------------------------------------

    def _add(self, node: _Node) -> Graph[S]:
        if node.name in self._nodes or node.name in (START, END):
            raise GraphBuildError(f"graph {self.name!r}: node name {node.name!r} is already used")
        self._nodes[node.name] = node
        return self

    def add_node(self, name: str, fn: NodeFn, *, reads: Sequence[str], writes: Sequence[str]) -> Graph[S]:
        """A plain function ``fn(state) -> {key: value}`` (sync or async)."""
        is_async = inspect.iscoroutinefunction(fn)
        allowed = set(writes)

        async def run(state: BaseModel, backend: Backend | None) -> dict[str, Any]:
            update = await fn(state) if is_async else fn(state)
            if not isinstance(update, dict):
                raise GraphBuildError(f"node {name!r} must return a dict of state updates, got {type(update).__name__}")
            extra = set(update) - allowed
            if extra:
                raise GraphBuildError(
                    f"node {name!r} wrote {sorted(extra)} but declared writes={sorted(allowed)}; declare them"
                )
            return update

        return self._add(_Node(name, "function", tuple(reads), tuple(writes), run))

    def add_agent(
        self,
        name: str,
        agent: Agent[Any, Any],
        *,
        output: str,
        inputs: Sequence[str] | Mapping[str, str] | None = None,
        many: bool | None = None,
        retry: Retry | None = None,
        violations: str | None = None,
    ) -> Graph[S]:
        """Run ``agent`` on state keys; write its outputs (a list if ``many``, default n > 1) to ``output``.

        ``inputs`` maps the agent's input field names to state keys (a list means same names).
        ``violations`` names a key that also receives the messages of samples that failed validation
        (with ``min_valid=0`` on the agent, a pattern can then count failed samples instead of failing).
        """
        mapping = self._input_mapping(name, agent, inputs)
        input_model = agent.input_type or create_model(  # type: ignore[call-overload]
            f"{name.title().replace('_', '')}Input",
            **{f: (self._field_type(mapping[f]), ...) for f in mapping},
        )
        many = agent.n > 1 if many is None else many

        async def run(state: BaseModel, backend: Backend | None) -> dict[str, Any]:
            inp = input_model.model_validate({f: getattr(state, key) for f, key in mapping.items()})
            engine = backend if agent.backend is None else agent.backend  # a backend may be falsy (an empty cassette)
            with tracing.agent_span(name, provider=getattr(engine, "provider", None),
                                    model=getattr(engine, "model", None), inp=inp) as s:
                result = await agent.arun(inp, backend=engine, retry=retry)
                if s.is_recording():
                    s.set_attributes({"agentkit.samples.valid": len(result.outputs),
                                      "agentkit.samples.invalid": len(result.violations)})
                    tracing.set_output(s, result.outputs)
            update: dict[str, Any] = {output: result.outputs if many else result.outputs[0]}
            if violations is not None:
                update[violations] = result.violations
            return update

        writes = (output,) if violations is None else (output, violations)
        return self._add(_Node(name, "agent", tuple(mapping.values()), writes, run))

    def add_verifier(
        self, name: str, verifier: Any, *, candidate: str, output: str, context: Sequence[str] = ()
    ) -> Graph[S]:
        """Run ``verifier.verify(state[candidate], {k: state[k] for k in context})`` in a thread."""

        async def run(state: BaseModel, backend: Backend | None) -> dict[str, Any]:
            ctx = {k: getattr(state, k) for k in context}
            verdict = await asyncio.to_thread(verifier.verify, getattr(state, candidate), ctx)
            return {output: verdict}

        return self._add(_Node(name, "verifier", (candidate, *context), (output,), run))

    def add_tool(self, name: str, tool: Any, *, args: Mapping[str, str], output: str) -> Graph[S]:
        """Call ``tool`` with arguments taken from state keys (``args`` maps argument -> key)."""

        async def run(state: BaseModel, backend: Backend | None) -> dict[str, Any]:
            values = {arg: getattr(state, key) for arg, key in args.items()}
            result = await asyncio.to_thread(tool.call, values)
            return {output: result}

        return self._add(_Node(name, "tool", tuple(args.values()), (output,), run))

    def add_approval(
        self, name: str, question: str | Callable[[Any], str], *, output: str | None = None,
        reads: Sequence[str] = (), details: Callable[[Any], Mapping[str, Any]] | None = None,
        auto: Decision | None = None,
    ) -> Graph[S]:
        """A node that pauses the run for a person's decision (``ainvoke`` returns a ``Paused``).

        ``question``/``details`` (functions of the state, reading ``reads``) say what is asked;
        ``"approved"`` or ``"rejected"`` goes to ``output``, for a route to act on. ``auto`` decides
        without pausing (a policy for unattended runs). Pausing needs a checkpointer: the decision
        may come from another process (``CompiledGraph.aresume``). The node runs again on resume,
        so ``question`` and ``details`` must be cheap and deterministic (no model calls).
        """
        run = _interrupt.approval_body(name, question, details, output, auto)
        writes = (output,) if output is not None else ()
        return self._add(_Node(name, "approval", tuple(reads), writes, run, {"asks": auto is None}))

    # -- edges ---------------------------------------------------------------------------------

    def add_edge(self, src: str | Sequence[str], dst: str | Sequence[str]) -> Graph[S]:
        """``src -> dst``; a list ``dst`` fans out (concurrent branches), a list ``src`` joins."""
        srcs = [src] if isinstance(src, str) else list(src)
        dsts = [dst] if isinstance(dst, str) else list(dst)
        if len(srcs) > 1 and len(dsts) > 1:
            raise GraphBuildError(f"graph {self.name!r}: an edge can fan out or join, not both ({srcs} -> {dsts})")
        self._edges.extend((s, d) for s in srcs for d in dsts)
        if len(srcs) > 1:
            self._joins.append((tuple(srcs), dsts[0]))
        return self

    def add_route(
        self, src: str, router: Callable[[Any], str], targets: Sequence[str] | Mapping[str, str]
    ) -> Graph[S]:
        """After ``src``, go to the one target ``router(state)`` names (a key of ``targets``)."""
        table = dict(targets) if isinstance(targets, Mapping) else {t: t for t in targets}
        self._routes.append((src, router, table))
        return self

    # -- compile -------------------------------------------------------------------------------

    def _field_type(self, key: str) -> Any:
        if key not in self.state.model_fields:
            raise GraphBuildError(f"graph {self.name!r}: {key!r} is not a field of {self.state.__name__}")
        return self.state.model_fields[key].annotation

    def _input_mapping(
        self, name: str, agent: Agent[Any, Any], inputs: Sequence[str] | Mapping[str, str] | None
    ) -> dict[str, str]:
        if isinstance(inputs, Mapping):
            return dict(inputs)
        if inputs is not None:
            return {k: k for k in inputs}
        if agent.input_type is None:
            raise GraphBuildError(f"graph {self.name!r}: agent node {name!r} needs inputs=[...] or an input_type")
        return {k: k for k in agent.input_type.model_fields}

    def _all_edges(self) -> list[tuple[str, str]]:
        routed = [(src, dst) for src, _, table in self._routes for dst in table.values()]
        return self._edges + routed

    def _validate(self) -> None:
        known = set(self._nodes) | {START, END}
        for src, dst in self._all_edges():
            for end in (src, dst):
                if end not in known:
                    raise GraphBuildError(
                        f"graph {self.name!r}: edge {src!r} -> {dst!r} names unknown node {end!r}; "
                        f"nodes are {sorted(self._nodes)}"
                    )
        if not any(src == START for src, _ in self._all_edges()):
            raise GraphBuildError(f"graph {self.name!r}: nothing starts; add_edge(START, <first node>)")
        edges = self._all_edges()
        upstream = ancestors(edges)
        reads = {n.name: n.reads for n in self._nodes.values()}
        writes = {n.name: n.writes for n in self._nodes.values()}
        fields = set(self.state.model_fields)
        check_reads(reads, writes, self.inputs, fields, upstream, self.name)
        check_parallel_writes(writes, self._edges, edges, _reducer_fields(self.state), self.name)
        if self.output is not None:
            missing = set(self.output.model_fields) - fields
            if missing:
                raise GraphBuildError(
                    f"graph {self.name!r}: output {self.output.__name__} has fields {sorted(missing)} "
                    f"that the state {self.state.__name__} lacks"
                )

    def compile(self, *, backend: Backend | None = None, checkpointer: Any = None,
                interrupt_before: Sequence[str] = ()) -> CompiledGraph[S]:
        """``checkpointer``: an ``agentkit.persistence`` store or any LangGraph checkpoint saver; runs
        then take a ``thread_id`` and continue where a crashed run of that thread stopped.

        ``interrupt_before``: nodes a person approves before they run (the run pauses, see
        ``add_approval``); a rejected node is skipped (writes nothing) and the run goes on."""
        self._validate()
        asking = [n.name for n in self._nodes.values() if n.attrs.get("asks")]
        _interrupt.check_gates(self.name, list(self._nodes), asking, interrupt_before, checkpointer)
        builder = StateGraph(self.state)
        for node in self._nodes.values():
            builder.add_node(node.name, _bind(node, backend, gated=node.name in interrupt_before))
        joined = {(s, d) for srcs, d in self._joins for s in srcs}
        for srcs, dst in self._joins:
            builder.add_edge(list(srcs), dst)
        for src, dst in self._edges:
            if (src, dst) not in joined:
                builder.add_edge(src, dst)
        for src, router, table in self._routes:
            builder.add_conditional_edges(src, _checked_router(self.name, src, router, table), table)
        return CompiledGraph(self, builder.compile(), checkpointer=checkpointer)


def _bind(node: _Node, backend: Backend | None, *, gated: bool = False,
          ) -> Callable[[BaseModel], Awaitable[dict[str, Any]]]:
    """``gated``: a person approves the node first (``interrupt_before``); rejected, it is skipped."""

    async def call(state: BaseModel) -> dict[str, Any]:
        try:
            if gated and await _interrupt.ask(node.name, f"run node {node.name!r}?", {"node": node.name},
                                              None) == "rejected":
                return {}
            with stats.collect(forward=True) as used:  # this node's own usage, for astream's events
                if node.kind in ("agent", "approval"):  # they open their own spans
                    update = await node.run(state, backend)
                else:
                    with tracing.node_span(node.name, node.kind) as s:
                        update = await node.run(state, backend)
                        tracing.annotate_tallies(s, update)
            _stream.report(node.name, used)
            return update
        except Exception as exc:
            exc.add_note(f"in node {node.name!r}")
            raise

    call.__name__ = node.name
    return call


def _checked_router(graph: str, src: str, router: Callable[[Any], str], table: dict[str, str]) -> Callable[[Any], str]:
    def route(state: Any) -> str:
        choice = router(state)
        if choice not in table:
            raise GraphBuildError(
                f"graph {graph!r}: router after {src!r} returned {choice!r}; expected one of {sorted(table)}"
            )
        return choice

    return route
