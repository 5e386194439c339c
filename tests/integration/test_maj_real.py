"""MAJ end to end on the real SmolLM2 via llama.cpp: a board of three judges on a GSM8K candidate
solution, through the Python API and the CLI. SmolLM2-135M is a poor judge, so the verdict's
correctness is not asserted here (see the report's figures); the board's procedure and output are."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from agentkit.eval import load_dataset
from agentkit.graphs import maj
from tests.helpers import Recording

pytestmark = pytest.mark.integration

CASE = load_dataset("gsm8k-judge", limit=4)[3]  # Janet's ducks, a correct 175B-model solution


def test_maj_board_judges_and_deliberates_on_the_real_model(smollm2) -> None:
    backend = Recording(smollm2)
    graph = maj.build(backend, max_rounds=1).compile()
    out, stats = asyncio.run(graph.ainvoke_with_stats(maj.input_from(CASE)))
    rounds = out.rounds_used + 1
    assert out.rounds_used in (0, 1)
    assert len(backend.requests) == stats.calls == 3 * rounds
    assert stats.valid_samples == stats.samples == 3 * rounds  # guided decoding: every judgment validates
    assert [(t.round, t.judge) for t in out.transcript] == [
        (r, p.name) for r in range(rounds) for p in maj.DEFAULT_JUDGES
    ]
    for turn in out.transcript:
        assert turn.verdict in ("correct", "incorrect") and 0.0 <= turn.confidence <= 1.0 and turn.rationale
    final = [t.verdict for t in out.transcript if t.round == out.rounds_used]
    assert out.unanimous == (len(set(final)) == 1)
    assert out.rounds_used == 1 or out.unanimous, "a board that did not deliberate must have agreed"
    assert out.answer in final and out.votes.total == 3
    assert out.agreement == final.count(out.answer) / 3


def test_cli_run_maj_prints_json_with_answer() -> None:
    """Judge profiles are data: the CLI takes them as JSON (one judge keeps this run to one model call)."""
    payload = json.dumps({"question": CASE.fields["question"], "candidate": CASE.fields["candidate"]})
    judges = json.dumps([{"name": "skeptic", "instructions": "Recompute every number in the solution."}])
    proc = subprocess.run(
        [sys.executable, "-m", "agentkit", "run", "maj", "--input", payload, "-o", f"judges={judges}",
         "-o", "max_rounds=0"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["answer"] in ("correct", "incorrect")
    assert result["rounds_used"] == 0 and result["unanimous"] is True
    assert [(t["round"], t["judge"], t["verdict"]) for t in result["transcript"]] == [(0, "skeptic", result["answer"])]
