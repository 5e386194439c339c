"""MC-CoT end to end on the real SmolLM2 via llama.cpp: through the Python API and the CLI."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from agentkit.graphs import mccot
from agentkit.verifiers.answer import normalize_answer
from tests.helpers import Recording

pytestmark = pytest.mark.integration

QUESTION = "A farmer has 3 pens with 4 sheep in each pen. How many sheep are there in total?"


def test_mccot_votes_over_k_real_samples_from_one_request(smollm2) -> None:
    backend = Recording(smollm2)
    graph = mccot.build(backend, k=6, answer_kind="number", seed=5).compile()
    out, stats = asyncio.run(graph.ainvoke_with_stats({"question": QUESTION}))
    assert len(backend.requests) == 1 and backend.requests[0].n == 6
    assert stats.calls == 1 and stats.samples == 6
    assert len(out.samples) == stats.valid_samples == 6  # guided decoding: every sample is well-formed
    assert sum(out.votes.counts.values()) <= 6
    assert out.answer == out.votes.winner
    assert out.agreement == out.votes.counts[out.answer] / 6
    winners = [s for s in out.samples if normalize_answer(s.answer, "number") == out.answer]
    assert out.rationale in [s.rationale for s in winners], "the rationale must come from a winning sample"


def test_cli_run_prints_json_with_answer_and_writes_the_trace(tmp_path) -> None:
    trace = tmp_path / "spans.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "agentkit", "run", "mccot", "--question", QUESTION, "--samples", "3",
         "--seed", "1", "-o", "answer_kind=number", "--trace-file", str(trace)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert "answer" in result and result["k"] == 3
    assert len(result["samples"]) == 3
    spans = [json.loads(line) for line in trace.read_text().splitlines()]
    names = {s["name"] for s in spans}
    assert "invoke_workflow mccot" in names and "invoke_agent sample_rationales" in names
    chat = next(s for s in spans if s["name"].startswith("chat "))
    assert chat["attributes"]["gen_ai.request.choice.count"] == 3
    assert chat["attributes"]["gen_ai.usage.output_tokens"] > 0
    root = next(s for s in spans if s["name"] == "invoke_workflow mccot")
    assert all(s["trace_id"] == root["trace_id"] for s in spans)
