"""Pausing a checkpointed run for a person, and continuing it later (possibly in another process).

An approval node (``Graph.add_approval``, or a node named in ``compile(interrupt_before=[...])``)
asks with LangGraph's ``interrupt``: the run stops, the question is stored with the thread's
checkpoint, and the caller gets a ``Paused``. ``CompiledGraph.aresume(thread_id, decision)`` hands
the decision back; LangGraph re-runs the approval node, whose ``interrupt`` now returns it. The
question is therefore stored as plain JSON data (any store can hold it, and a new process can read
it without the graph's classes), and an approval node must not call a model: it runs twice.

The pausing node also stores its trace context (W3C ``traceparent``), so the resumed run's workflow
span continues the original trace and links to the span that paused: one story in a trace viewer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from pydantic import BaseModel, Field

from agentkit import tracing
from agentkit.errors import ConfigError, GraphBuildError

if TYPE_CHECKING:
    from agentkit._persistence_run import RunSettings
    from agentkit.graph import CompiledGraph

log = logging.getLogger(__name__)

Decision = Literal["approve", "reject"]
#: what an approval node writes to its output key
Outcome = Literal["approved", "rejected"]

_PAUSE_MARK = "agentkit_approval"  # a key of every payload this module stores (not someone else's interrupt)


class Paused(BaseModel):
    """A run waiting for a decision: what is asked, where, and the thread to resume.

    ``details`` are the asking node's facts (for the cascade: reason, tiers, estimated cost).
    Continue with ``CompiledGraph.aresume(thread_id, "approve" | "reject")``.
    """

    kind: Literal["paused"] = "paused"
    thread_id: str
    node: str
    question: str
    details: dict[str, Any] = Field(default_factory=dict)


def decision_of(value: Any, where: str) -> Decision:
    """``approve``/``reject`` (also ``True``/``False``, ``y``/``n``, ``approved``/``rejected``)."""
    text = str(value).strip().lower() if not isinstance(value, bool) else ("approve" if value else "reject")
    if text in ("approve", "approved", "yes", "y", "true"):
        return "approve"
    if text in ("reject", "rejected", "no", "n", "false"):
        return "reject"
    raise ConfigError(f"{where}: decision {value!r} is neither 'approve' nor 'reject'")


def _traceparent() -> dict[str, str]:
    carrier: dict[str, str] = {}
    if tracing.enabled():
        propagate.inject(carrier)
    return carrier


async def ask(node: str, question: str, details: Mapping[str, Any], auto: Decision | None) -> Outcome:
    """The body of an approval node: pause (or, with ``auto``, decide at once) and return the outcome."""
    from langgraph.errors import GraphBubbleUp
    from langgraph.types import interrupt

    paused: GraphBubbleUp | None = None
    with tracing.node_span(node, "approval") as s:
        if s.is_recording():
            s.set_attributes({"agentkit.approval.question": question,
                              "agentkit.approval.auto": auto or ""})
        if auto is not None:
            decision: Decision = auto
        else:
            payload = {_PAUSE_MARK: 1, "node": node, "question": question,
                       "details": _plain_details(details), "trace": _traceparent()}
            try:
                decision = decision_of(interrupt(payload), f"node {node!r}")
            except GraphBubbleUp as exc:  # the pause itself: not an error of this span
                if s.is_recording():
                    s.set_attribute("agentkit.approval.status", "paused")
                paused = exc
        if paused is None and s.is_recording():
            s.set_attribute("agentkit.approval.decision", decision)
    if paused is not None:
        raise paused
    log.info("node %r: %s", node, decision)
    return "approved" if decision == "approve" else "rejected"


def _plain_details(details: Mapping[str, Any]) -> dict[str, Any]:
    """Details as JSON data: they are stored in the checkpoint and read back by another process."""
    from agentkit._persistence_run import jsonable

    return dict(jsonable(dict(details)))


def pending(interrupts: Any, thread_id: str) -> tuple[Paused, dict[str, str]] | None:
    """The first agentkit approval among a run's interrupts, with the trace context it paused in."""
    for item in interrupts or ():
        value = getattr(item, "value", item)
        if isinstance(value, Mapping) and _PAUSE_MARK in value:
            return (Paused(thread_id=thread_id, node=str(value.get("node")), question=str(value.get("question")),
                           details=dict(value.get("details") or {})), dict(value.get("trace") or {}))
    return None


@contextmanager
def continued_trace(carrier: Mapping[str, str]) -> Iterator[trace.Link | None]:
    """Make the paused run's span the parent of what opens inside (unless a span is already active:
    the caller's own trace wins), and give the link to add to the resumed run's span."""
    if not carrier or not tracing.enabled():
        yield None
        return
    ctx = propagate.extract(dict(carrier))
    span_ctx = trace.get_current_span(ctx).get_span_context()
    if not span_ctx.is_valid:
        yield None
        return
    link = trace.Link(span_ctx, {"agentkit.link": "resumed_from"})
    if trace.get_current_span().get_span_context().is_valid:
        yield link
        return
    token = otel_context.attach(ctx)
    try:
        yield link
    finally:
        otel_context.detach(token)


def add_link(span: Any, link: trace.Link | None) -> None:
    if link is not None and span.is_recording() and hasattr(span, "add_link"):
        span.add_link(link.context, link.attributes)


def approval_body(name: str, question: str | Callable[[Any], str],
                  details: Callable[[Any], Mapping[str, Any]] | None, output: str | None,
                  auto: Decision | None) -> Callable[[Any], Any]:
    """An ``add_approval`` node: ask, write the outcome to ``output`` (if any)."""

    async def approval(state: Any, backend: Any = None) -> dict[str, Any]:
        text = question(state) if callable(question) else question
        facts = details(state) if details is not None else {}
        outcome = await ask(name, text, facts, auto)
        return {output: outcome} if output is not None else {}

    return approval


async def resume(compiled: CompiledGraph[Any], thread_id: str, decision: Decision | bool, *,
                 settings: RunSettings | None, recursion_limit: int) -> Any:
    """``CompiledGraph.aresume``: read the paused thread, hand back the decision, run on."""
    from langgraph.types import Command

    from agentkit import _persistence_run

    choice = decision_of(decision, f"thread {thread_id!r}")
    async with _persistence_run.opened(compiled._require_checkpointer()) as saver:
        plan, interrupts = await _persistence_run.resume_plan(
            compiled.langgraph, saver, state=compiled.graph.state, graph=compiled.name, thread_id=thread_id,
            settings=settings, recursion_limit=recursion_limit)
        asked = pending(interrupts, thread_id)
        with continued_trace(asked[1] if asked else {}) as link, tracing.workflow_span(compiled.name) as s:
            add_link(s, link)
            if s.is_recording():
                s.set_attributes({"agentkit.resume.thread_id": thread_id, "agentkit.resume.decision": choice})
            final = await plan.pregel.ainvoke(Command(resume=choice), plan.config, durability="sync")
            result = compiled._result(final, thread_id)
            tracing.set_output(s, result)
    return result


def check_gates(graph: str, nodes: list[str], asking: list[str], interrupt_before: Any, checkpointer: Any) -> None:
    """At compile: ``interrupt_before`` names real nodes, and a graph that can pause has a store."""
    unknown = [n for n in interrupt_before if n not in nodes]
    if unknown:
        raise GraphBuildError(f"graph {graph!r}: interrupt_before names unknown nodes {unknown}; "
                              f"nodes are {sorted(nodes)}")
    if (asking or interrupt_before) and checkpointer is None:
        raise ConfigError(f"graph {graph!r} pauses for approval at {[*asking, *interrupt_before]}: compile with "
                          "checkpointer=agentkit.persistence.sqlite(PATH) (or postgres(DSN)) so the run can be "
                          "resumed, or give the approval an auto decision")
