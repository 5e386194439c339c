"""Durable runs on the real SmolLM2 via llama.cpp (one thread, small k and max_tokens): a
checkpointed MC-CoT run whose thread is then re-read without a model call, and a streamed DaSLaM
run whose node events arrive in the procedure's order before its final event."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agentkit import persistence
from agentkit.eval import load_dataset
from agentkit.graph import NodeFinished, RunFinished
from agentkit.graphs import daslam, mccot
from tests.helpers import Recording

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def one_thread():
    from agentkit.backends.llamacpp import LlamaCppBackend

    return LlamaCppBackend(n_threads=1, n_ctx=2048)


def test_checkpointed_mccot_is_stored_and_reread_without_model_calls(one_thread, tmp_path: Path) -> None:
    store = persistence.sqlite(tmp_path / "runs.db")
    first = Recording(one_thread)
    graph = mccot.build(first, k=2, answer_kind="number", max_tokens=96, max_rationale_chars=120, seed=3)
    out = graph.compile(checkpointer=store).invoke({"question": "What is 6 times 7?"}, thread_id="real")
    assert len(first.requests) == 1 and first.requests[0].n == 2 and out.answer is not None
    float(out.answer.replace(",", ""))  # guided: a number
    (info,) = asyncio.run(persistence.list_threads(store))
    assert info.thread_id == "real" and info.status == "finished"

    again = Recording(one_thread)
    reread = mccot.build(again, k=2, answer_kind="number", max_tokens=96, max_rationale_chars=120, seed=3)
    stored = reread.compile(checkpointer=store).invoke({"question": "What is 6 times 7?"}, thread_id="real")
    assert again.requests == [] and stored == out


def test_streamed_daslam_yields_each_node_as_it_finishes(one_thread) -> None:
    problem = load_dataset("gsm8k", limit=1)[0]
    backend = Recording(one_thread)
    graph = daslam.build(backend, backend, max_subquestions=1, answer_kind="number", max_tokens=48,
                         max_rationale_chars=60).compile()

    async def events() -> list:
        return [e async for e in graph.astream(daslam.input_from(problem))]

    *nodes, last = asyncio.run(events())
    assert all(isinstance(e, NodeFinished) for e in nodes) and isinstance(last, RunFinished)
    names = [e.node for e in nodes]  # the paper's procedure, one sub-question at most
    one_step = ["pose_subquestion", "sub_solving", "record_answer"]
    assert names in (["initial_attempt", "decomposition", *one_step, "final_answer", "conclude"],
                     ["initial_attempt", "decomposition", "final_answer", "conclude"])
    assert [e.elapsed_s for e in nodes] == sorted(e.elapsed_s for e in nodes) <= [last.elapsed_s] * len(nodes)
    assert sum(e.calls for e in nodes) == last.calls == len(backend.requests) > 0
    assert sum(e.usage.output_tokens for e in nodes) == last.usage.output_tokens > 0
    assert nodes[0].calls == 1  # the first node (the initial attempt) called the model itself
    assert last.output.answer is not None
