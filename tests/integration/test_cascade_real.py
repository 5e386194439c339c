"""The cascade on the real SmolLM2 via llama.cpp: both tiers are MC-CoT on the embedded model (the
large tier differs only in samples here; the vLLM/OpenAI tier is exercised by examples/cascade.py).
Routing is asserted exactly where it is forced (threshold 0 or above 1) and checked for consistency
where the model decides."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from agentkit.graphs import cascade, mccot
from agentkit.graphs.cascade import Tier
from tests.helpers import Recording

pytestmark = pytest.mark.integration

QUESTION = "Tom has 3 boxes with 5 apples in each box. He eats 2 apples. How many apples are left?"


def _tiers(backend) -> list[Tier]:
    return [Tier(name="small", task=mccot.build(backend, k=2, answer_kind="number", seed=4, max_tokens=200)),
            Tier(name="large", task=mccot.build(backend, k=3, answer_kind="number", seed=4, max_tokens=200))]


def test_forced_routes_on_the_real_model(smollm2) -> None:
    backend = Recording(smollm2)
    escalating = cascade.build(tiers=_tiers(backend), threshold=1.01).compile()
    out, run = asyncio.run(escalating.ainvoke_with_stats({"question": QUESTION}))
    small, large = out.attempts
    assert small.failure == "low_confidence" and small.escalated and small.answer is not None
    assert large.failure == "low_confidence" and not large.escalated
    assert out.answered_by == "large" and out.answer == large.answer and out.confident is False
    assert [r.n for r in backend.requests] == [2, 3] and run.calls == 2
    assert small.usage.output_tokens > 0 and large.usage.output_tokens > 0 and out.cost > 0

    accepting = cascade.build(tiers=_tiers(backend), threshold=0.0).compile()
    out = asyncio.run(accepting.ainvoke({"question": QUESTION}))
    assert [a.tier for a in out.attempts] == ["small"] and out.answered_by == "small" and out.confident


def test_cli_run_cascade_routes_consistently(tmp_path) -> None:
    trace = tmp_path / "spans.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "agentkit", "run", "cascade", "--question", QUESTION, "--samples", "2", "--seed", "2",
         "-o", "answer_kind=number", "-o", "large_k=3", "-o", "threshold=0.75", "--trace-file", str(trace)],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    first = result["attempts"][0]
    assert first["tier"] == "small" and "answer" in result
    if first["passed"]:
        assert first["confidence"] >= 0.75 and len(result["attempts"]) == 1 and result["answered_by"] == "small"
    else:
        assert first["failure"] in ("low_confidence", "no_answer") and first["escalated"]
        assert result["attempts"][1]["tier"] == "small_more_samples"
    spans = [json.loads(line) for line in trace.read_text().splitlines()]
    tiers = [s["attributes"]["agentkit.cascade.tier"] for s in spans if s["name"].startswith("node run_")]
    assert tiers == [a["tier"] for a in result["attempts"]]
