"""Runtime mechanics on replayed real SmolLM2 generations: fan-out concurrency, one request for k
samples, tenacity retries, batch limits, per-run stats, replay misses."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Literal

import pytest
from pydantic import BaseModel, Field

from agentkit import END, START, Agent, Graph, Retry, Sampling
from agentkit.errors import BackendError, CassetteMiss, TransientBackendError
from agentkit.reducers import Collect, MajorityVote, Tally
from tests.helpers import Flaky, Recording

QUESTIONS = [f"Is {a} + {b} = {a + b}?" for a, b in [(2, 3), (7, 5), (10, 4), (6, 6), (9, 1), (3, 8)]]


class Claim(BaseModel):
    question: str


class Judgment(BaseModel):
    verdict: Literal["correct", "incorrect"]
    reason: str = Field(max_length=120)


class Panel(BaseModel):
    question: str
    judgments: Annotated[list[Judgment], Collect()] = []
    votes: Annotated[Tally, MajorityVote()] = Tally()
    verdict: str | None = None


PROFILES = {
    "deductive": "You are a deductive reasoner. Decide if the claim is correct.",
    "logical": "You are a logical reasoner. Decide if the claim is correct.",
    "robust": "You are a robust reasoner. Check the claim carefully and decide if it is correct.",
}


def panel_graph(retry: Retry | None = None) -> Graph[Panel]:
    g = Graph("panel", Panel)
    for name, instructions in PROFILES.items():
        judge = Agent(name, instructions=instructions, input_type=Claim, output_type=Judgment,
                      sampling=Sampling(max_tokens=80), retry=retry)
        g.add_agent(name, judge, output="judgments", many=True)
        g.add_edge(START, name)
    g.add_node("aggregate", lambda s: {"votes": [j.verdict for j in s.judgments]}, reads=["judgments"], writes=["votes"])
    g.add_node("decide", lambda s: {"verdict": s.votes.winner}, reads=["votes"], writes=["verdict"])
    g.add_edge(list(PROFILES), "aggregate")
    g.add_edge("aggregate", "decide")
    g.add_edge("decide", END)
    return g


def test_fanout_branches_run_concurrently(replay) -> None:
    backend = Recording(replay("panel"), delay_s=0.3)
    graph = panel_graph().compile(backend=backend)
    start = time.perf_counter()
    out = graph.invoke({"question": QUESTIONS[0]})
    elapsed = time.perf_counter() - start
    assert backend.max_in_flight == 3, "the three judges should be in flight together"
    assert elapsed < 0.3 * 3 * 0.8, f"three 0.3 s calls took {elapsed:.2f} s: they ran one after another"
    assert len(out.judgments) == 3
    assert out.votes.total == 3
    assert out.verdict == out.votes.winner in ("correct", "incorrect")


def test_k_samples_are_one_request_with_n_k(replay) -> None:
    from agentkit.graphs import mccot

    backend = Recording(replay("mccot_k5"))
    out = mccot.build(backend, k=5, seed=11).compile().invoke({"question": "What is 6 times 7?"})
    assert len(backend.requests) == 1
    assert backend.requests[0].n == 5
    assert out.k == 5 and len(out.samples) <= 5
    assert out.votes.total == len(out.samples)
    assert out.answer == out.votes.winner


def test_transient_errors_are_retried(replay) -> None:
    backend = Flaky(replay("panel"), failures=2)
    g = Graph("one", Panel)
    judge = Agent("deductive", instructions=PROFILES["deductive"], input_type=Claim, output_type=Judgment,
                  sampling=Sampling(max_tokens=80), retry=Retry(attempts=3, wait_initial_s=0))
    g.add_agent("deductive", judge, output="judgments", many=True)
    g.add_edge(START, "deductive")
    out = g.compile(backend=backend).invoke({"question": QUESTIONS[0]})
    assert len(backend.requests) == 3
    assert len(out.judgments) == 1


def test_retries_give_up_after_the_last_attempt(replay) -> None:
    backend = Flaky(replay("panel"), failures=5)
    graph = panel_graph(Retry(attempts=2, wait_initial_s=0)).compile(backend=backend)
    with pytest.raises(TransientBackendError):
        graph.invoke({"question": QUESTIONS[0]})


def test_non_transient_errors_are_not_retried(replay) -> None:
    backend = Flaky(replay("panel"), failures=1, error=BackendError)
    g = Graph("one", Panel)
    judge = Agent("deductive", instructions=PROFILES["deductive"], input_type=Claim, output_type=Judgment,
                  sampling=Sampling(max_tokens=80), retry=Retry(attempts=5, wait_initial_s=0))
    g.add_agent("deductive", judge, output="judgments", many=True)
    g.add_edge(START, "deductive")
    with pytest.raises(BackendError):
        g.compile(backend=backend).invoke({"question": QUESTIONS[0]})
    assert len(backend.requests) == 1


def test_per_node_retry_overrides_the_agent(replay) -> None:
    backend = Flaky(replay("panel"), failures=1)
    g = Graph("one", Panel)
    judge = Agent("deductive", instructions=PROFILES["deductive"], input_type=Claim, output_type=Judgment,
                  sampling=Sampling(max_tokens=80), retry=Retry(attempts=5, wait_initial_s=0))
    g.add_agent("deductive", judge, output="judgments", many=True, retry=Retry(attempts=1))
    g.add_edge(START, "deductive")
    with pytest.raises(TransientBackendError):
        g.compile(backend=backend).invoke({"question": QUESTIONS[0]})


def test_batch_respects_the_concurrency_limit(replay) -> None:
    backend = Recording(replay("panel"), delay_s=0.05)
    graph = panel_graph().compile(backend=backend)
    outs = graph.batch([{"question": q} for q in QUESTIONS], concurrency=2)
    assert [o.question for o in outs] == QUESTIONS
    assert backend.max_in_flight == 2 * len(PROFILES), "two runs of three judges each, never more"
    assert len(backend.requests) == 3 * len(QUESTIONS)


async def test_concurrent_runs_keep_separate_stats(replay) -> None:
    graph = panel_graph().compile(backend=Recording(replay("panel"), delay_s=0.05))
    results = await asyncio.gather(*(graph.ainvoke_with_stats({"question": q}) for q in QUESTIONS[:4]))
    for _, stats in results:
        assert stats.calls == 3
        assert stats.samples == 3
        assert stats.usage.output_tokens > 0


def test_replay_miss_names_the_request() -> None:
    from agentkit.backends.replay import ReplayBackend
    from tests.conftest import CASSETTES

    graph = panel_graph().compile(backend=ReplayBackend(CASSETTES / "panel.jsonl"))
    with pytest.raises(CassetteMiss, match=r"panel\.jsonl has no recording for request .*Is 1 \+ 1 = 3\?"):
        graph.invoke({"question": "Is 1 + 1 = 3?"})
