"""Pausing a checkpointed graph for a person (``add_approval``, ``interrupt_before``) and resuming it
with a decision, on SQLite: the typed ``Paused``, both decisions, refusals, streaming, thread status,
and the resumed run's spans continuing the paused run's trace."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pydantic import BaseModel

from agentkit import persistence
from agentkit.errors import ConfigError, GraphBuildError
from agentkit.graph import END, START, Graph, NodeFinished, Paused


class Order(BaseModel):
    amount: int
    decision: str | None = None
    charged: int = 0
    receipt: str = ""


def _graph(ran: list[str], *, approval: bool = True, auto=None) -> Graph[Order]:
    def price(s: Order) -> dict:
        ran.append("price")
        return {"amount": s.amount * 2}

    def charge(s: Order) -> dict:
        ran.append("charge")
        return {"charged": s.amount}

    def receipt(s: Order) -> dict:
        ran.append("receipt")
        return {"receipt": f"charged {s.charged}"}

    g = Graph("order", Order, inputs=["amount"])
    g.add_node("price", price, reads=["amount"], writes=["amount"])
    g.add_node("charge", charge, reads=["amount"], writes=["charged"])
    g.add_node("receipt", receipt, reads=["charged"], writes=["receipt"])
    g.add_edge(START, "price")
    if approval:
        g.add_approval("confirm", lambda s: f"charge {s.amount}?", reads=["amount"], output="decision",
                       details=lambda s: {"amount": s.amount}, auto=auto)
        g.add_edge("price", "confirm")
        g.add_route("confirm", lambda s: s.decision, {"approved": "charge", "rejected": "receipt"})
    else:
        g.add_edge("price", "charge")
    g.add_edge("charge", "receipt")
    g.add_edge("receipt", END)
    return g


def test_approval_pauses_and_each_decision_continues_from_the_store(tmp_path: Path) -> None:
    db = persistence.sqlite(tmp_path / "runs.db")
    ran: list[str] = []
    paused = _graph(ran).compile(checkpointer=db).invoke({"amount": 21}, thread_id="a")
    assert isinstance(paused, Paused) and paused.thread_id == "a" and paused.node == "confirm"
    assert paused.question == "charge 42?" and paused.details == {"amount": 42}
    assert ran == ["price"]
    (info,) = asyncio.run(persistence.list_threads(db))
    assert info.status == "paused" and info.next == ["confirm"]
    # invoking the paused thread again asks again, and runs nothing that finished
    assert _graph(ran).compile(checkpointer=db).invoke({"amount": 21}, thread_id="a") == paused
    assert ran == ["price"]

    ran.clear()  # a fresh graph object: what a new process has, with only the store in common
    out = _graph(ran).compile(checkpointer=db).resume("a", "approve")
    assert ran == ["charge", "receipt"] and out.decision == "approved" and out.receipt == "charged 42"
    assert asyncio.run(persistence.list_threads(db))[0].status == "finished"

    ran.clear()
    compiled = _graph(ran).compile(checkpointer=db)
    assert isinstance(compiled.invoke({"amount": 5}, thread_id="b"), Paused)
    out = compiled.resume("b", False)
    assert ran == ["price", "receipt"] and out.decision == "rejected" and out.charged == 0


def test_resume_refuses_a_thread_that_is_not_paused_and_a_bad_decision(tmp_path: Path) -> None:
    db = persistence.sqlite(tmp_path / "runs.db")
    compiled = _graph([]).compile(checkpointer=db)
    with pytest.raises(ConfigError, match="'nope' is not in this checkpoint store"):
        compiled.resume("nope", "approve")
    compiled.invoke({"amount": 1}, thread_id="p")
    with pytest.raises(ConfigError, match="neither 'approve' nor 'reject'"):
        compiled.resume("p", "maybe")
    compiled.resume("p", "approve")
    with pytest.raises(ConfigError, match="thread 'p' is not paused for a decision: it is finished"):
        compiled.resume("p", "approve")


def test_a_graph_that_can_pause_needs_a_store_unless_its_approval_decides_itself() -> None:
    with pytest.raises(ConfigError, match=r"pauses for approval at \['confirm'\]: compile with checkpointer"):
        _graph([]).compile()
    with pytest.raises(ConfigError, match=r"pauses for approval at \['charge'\]"):
        _graph([], approval=False).compile(interrupt_before=["charge"])
    with pytest.raises(GraphBuildError, match="interrupt_before names unknown nodes"):
        _graph([], approval=False).compile(checkpointer=object(), interrupt_before=["refund"])
    ran: list[str] = []
    out = _graph(ran, auto="reject").compile().invoke({"amount": 3})
    assert out.decision == "rejected" and ran == ["price", "receipt"]


def test_interrupt_before_asks_first_and_a_rejected_node_is_skipped(tmp_path: Path) -> None:
    db = persistence.sqlite(tmp_path / "runs.db")
    ran: list[str] = []
    compiled = _graph(ran, approval=False).compile(checkpointer=db, interrupt_before=["charge"])
    paused = compiled.invoke({"amount": 4}, thread_id="x")
    assert isinstance(paused, Paused) and paused.node == "charge" and "charge" in paused.question
    assert ran == ["price"]
    assert compiled.resume("x", "approve").receipt == "charged 8" and ran == ["price", "charge", "receipt"]
    ran.clear()
    compiled.invoke({"amount": 4}, thread_id="y")
    out = compiled.resume("y", "reject")
    assert ran == ["price", "receipt"] and out.charged == 0 and out.receipt == "charged 0"


def test_astream_ends_with_paused_after_the_finished_nodes(tmp_path: Path) -> None:
    compiled = _graph([]).compile(checkpointer=persistence.sqlite(tmp_path / "runs.db"))

    async def events() -> list:
        return [e async for e in compiled.astream({"amount": 2}, thread_id="s")]

    *nodes, last = asyncio.run(events())
    assert [e.node for e in nodes] == ["price"] and all(isinstance(e, NodeFinished) for e in nodes)
    assert isinstance(last, Paused) and last.thread_id == "s" and last.question == "charge 4?"


def test_the_resumed_run_continues_the_paused_runs_trace(tmp_path: Path, spans) -> None:
    db = persistence.sqlite(tmp_path / "runs.db")
    assert isinstance(_graph([]).compile(checkpointer=db).invoke({"amount": 1}, thread_id="t"), Paused)
    first = spans.get_finished_spans()
    (asker,) = [s for s in first if s.name == "node confirm"]
    assert asker.attributes["agentkit.approval.status"] == "paused" and asker.status.is_ok
    (original,) = [s for s in first if s.name == "invoke_workflow order"]
    spans.clear()

    _graph([]).compile(checkpointer=db).resume("t", "approve")  # only the store links the two
    later = spans.get_finished_spans()
    (resumed,) = [s for s in later if s.name == "invoke_workflow order"]
    assert resumed.context.trace_id == original.context.trace_id
    assert resumed.parent is not None and resumed.parent.span_id == asker.context.span_id
    assert [link.context.span_id for link in resumed.links] == [asker.context.span_id]
    assert resumed.attributes["agentkit.resume.decision"] == "approve"
    assert {s.name for s in later} >= {"node charge", "node receipt"}
    assert all(s.context.trace_id == original.context.trace_id for s in later)
