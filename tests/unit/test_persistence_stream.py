"""``astream``: one typed event per node as it finishes, in node order, the first one well before the
run ends (a graph with a slow last node); each event carries that node's own model usage; the last
event carries the output; ``agentkit run --stream`` keeps stdout to the final JSON."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from typer.testing import CliRunner

from agentkit import persistence
from agentkit.graph import NodeFinished, RunFinished
from agentkit.graphs import mccot
from tests.helpers import Recording
from tests.unit.test_persistence import State, chain
from tests.unit.test_persistence_cli import QUESTION, backend  # noqa: F401  (fixture)


async def collect(agen):
    events, stamps = [], []
    async for event in agen:
        events.append(event)
        stamps.append(time.perf_counter())
    return events, stamps


def slow_last(delay_s: float):
    calls: list[str] = []
    graph = chain(calls)
    third = graph._nodes["third"].run

    async def slow(state, engine):
        await asyncio.sleep(delay_s)
        return await third(state, engine)

    graph._nodes["third"].run = slow
    return graph


def test_events_arrive_in_node_order_and_before_the_run_ends() -> None:
    graph = slow_last(0.6).compile()
    start = time.perf_counter()
    events, stamps = asyncio.run(collect(graph.astream({"q": "abc"})))
    end = time.perf_counter()
    assert [e.node for e in events[:-1]] == ["first", "second", "third"]
    assert all(isinstance(e, NodeFinished) for e in events[:-1]) and isinstance(events[-1], RunFinished)
    assert stamps[0] - start < end - start - 0.5, "the first event waited for the slow last node"
    assert events[0].update["first"].x == 3
    assert events[2].elapsed_s >= 0.6 > events[1].elapsed_s
    final = events[-1].output
    assert isinstance(final, State) and final.answer == "abc=5"
    assert final == chain([]).compile().invoke({"q": "abc"})


def test_each_event_carries_its_own_nodes_usage(replay) -> None:
    model = Recording(replay("mccot_k5"))
    graph = mccot.build(model, k=5, seed=11).compile()
    events, _ = asyncio.run(collect(graph.astream({"question": "What is 6 times 7?"})))
    by_node = {e.node: e for e in events if isinstance(e, NodeFinished)}
    assert list(by_node) == ["sample_rationales", "vote", "select_rationale"]
    sampled = by_node["sample_rationales"]
    assert sampled.calls == 1 and sampled.usage.output_tokens > 0 and len(sampled.update["samples"]) >= 1
    assert by_node["vote"].calls == 0 and by_node["vote"].usage.output_tokens == 0
    final = events[-1]
    assert final.calls == 1 and final.usage == sampled.usage
    plain = mccot.build(Recording(replay("mccot_k5")), k=5, seed=11).compile().invoke({"question": "What is 6 times 7?"})
    assert final.output.model_dump() == plain.model_dump()  # (each build makes its own sample type)


def test_a_checkpointed_stream_continues_a_thread(tmp_path: Path) -> None:
    store = persistence.sqlite(tmp_path / "c.db")
    calls: list[str] = []
    try:
        asyncio.run(collect(chain(calls, fail_once={"second"}).compile(checkpointer=store).astream(
            {"q": "ab"}, thread_id="t")))
    except RuntimeError:
        pass
    events, _ = asyncio.run(collect(chain(calls).compile(checkpointer=store).astream({"q": "ab"}, thread_id="t")))
    assert [e.node for e in events[:-1]] == ["second", "third"]
    assert events[-1].output.answer == "ab=4"
    again, _ = asyncio.run(collect(chain(calls).compile(checkpointer=store).astream({"q": "ab"}, thread_id="t")))
    assert len(again) == 1 and again[0].output.answer == "ab=4"


def test_cli_stream_prints_progress_on_stderr_and_only_json_on_stdout(backend) -> None:  # noqa: F811
    res = CliRunner().invoke(__import__("agentkit.cli", fromlist=["app"]).app,
                             ["run", "mccot", "--question", QUESTION, "--samples", "5", "--seed", "11",
                              "--backend", "replay-durable", "--stream"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["answer"]
    lines = res.stderr.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["sample_rationales", "vote", "select_rationale"]
    assert "calls=1" in lines[0]
