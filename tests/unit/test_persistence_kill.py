"""A checkpointed DaSLaM run on SQLite, SIGKILLed by pid after its third model-calling node, resumes
in a new process with exactly the remaining model calls, and ends with an uninterrupted run's output
(see ``_persistence_worker`` for the test-only hook that holds the process at a deterministic point)."""

from __future__ import annotations

from pathlib import Path

from agentkit import persistence
from tests.unit import _persistence_worker as worker

BLOCK_AT = 4  # calls 1-3 (initial attempt, decomposition, first sub-question) are finished and stored


def test_sqlite_kill_after_node_3_then_resume_makes_only_the_remaining_calls(tmp_path: Path) -> None:
    calls, expected = worker.reference()
    assert calls == worker.TOTAL_CALLS
    db = str(tmp_path / "runs.db")
    worker.run_until_blocked_then_kill(db, "robe", BLOCK_AT)
    resumed = worker.run_to_the_end(db, "robe")
    assert resumed["calls"] == worker.TOTAL_CALLS - (BLOCK_AT - 1)
    assert resumed["output"] == expected
    # the finished thread is re-read, not re-run, in this process too
    graph, shared, inp = worker.build()
    again = graph.compile(checkpointer=persistence.sqlite(db)).invoke(inp, thread_id="robe")
    assert shared["calls"] == 0 and again.model_dump(mode="json") == expected
