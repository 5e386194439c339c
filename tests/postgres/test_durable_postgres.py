"""The PostgreSQL checkpointer against a real server: the DaSLaM kill-and-resume of the SQLite suite,
and two concurrent threads through one store that keep their own state."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from agentkit import persistence
from tests.unit import _persistence_worker as worker
from tests.unit.test_persistence import chain


def test_postgres_kill_after_node_3_then_resume_makes_only_the_remaining_calls(postgres_dsn: str) -> None:
    calls, expected = worker.reference()
    thread = f"robe-{uuid.uuid4().hex[:8]}"
    worker.run_until_blocked_then_kill(postgres_dsn, thread, 4)
    resumed = worker.run_to_the_end(postgres_dsn, thread)
    assert resumed["calls"] == calls - 3
    assert resumed["output"] == expected


def test_two_concurrent_threads_do_not_mix(postgres_dsn: str) -> None:
    store = persistence.postgres(postgres_dsn)
    calls: list[str] = []
    crashing = chain(calls, fail_once={"third"}, delay_s=0.02).compile(checkpointer=store)
    ids = {q: f"{q}-{uuid.uuid4().hex[:8]}" for q in ("x", "yyyy")}

    async def both(graph):
        return await asyncio.gather(*(graph.ainvoke({"q": q}, thread_id=ids[q]) for q in ids),
                                    return_exceptions=True)

    first = asyncio.run(both(crashing))  # one of the two crashes at its last node
    assert sum(isinstance(r, RuntimeError) for r in first) == 1
    assert calls.index("first:yyyy") < calls.index("second:x"), "the two runs did not overlap"
    x, y = asyncio.run(both(chain(calls).compile(checkpointer=store)))
    assert (x.answer, y.answer) == ("x=3", "yyyy=6")
    states = {q: asyncio.run(crashing.aget_state(ids[q])) for q in ids}
    assert [i.x for i in states["x"].items] == [1, 2] and [i.x for i in states["yyyy"].items] == [4, 2]
    listed = {t.thread_id: t for t in asyncio.run(persistence.list_threads(store))}
    assert {listed[ids[q]].status for q in ids} == {"finished"}


def test_a_wrong_dsn_says_what_to_check() -> None:
    from agentkit.errors import ConfigError

    with pytest.raises(ConfigError, match="cannot connect to PostgreSQL"):
        chain([]).compile(checkpointer=persistence.postgres("postgresql://nobody:pw@127.0.0.1:1/none")).invoke(
            {"q": "a"}, thread_id="t")
