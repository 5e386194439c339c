"""DaSLaM end to end on the real SmolLM2 via llama.cpp, decomposer and solver on separate backends,
through the Python API and the CLI. SmolLM2-135M is weak at GSM8K, so the answers' correctness is
not asserted here (see the report's figures); their shape and the procedure are."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from agentkit.eval import load_dataset
from agentkit.graphs import daslam
from tests.helpers import Recording

pytestmark = pytest.mark.integration

PROBLEM = load_dataset("gsm8k", limit=2)[1]  # A robe takes 2 bolts of blue fiber and half that much white fiber...


def test_daslam_runs_the_procedure_on_real_decomposer_and_solver(smollm2) -> None:
    solver, decomposer = Recording(smollm2), Recording(smollm2)
    graph = daslam.build(solver, decomposer, max_subquestions=2, answer_kind="number", max_tokens=128,
                         max_rationale_chars=160).compile()
    out, stats = asyncio.run(graph.ainvoke_with_stats(daslam.input_from(PROBLEM)))
    assert len(decomposer.requests) == 1
    assert 1 <= len(out.subquestions) <= 2 and all(q.strip() for q in out.subquestions)
    assert [s.subquestion for s in out.steps] == out.subquestions
    assert len(solver.requests) == 2 + len(out.steps)  # initial attempt, each sub-question, final answer
    assert stats.calls == 3 + len(out.steps) and stats.valid_samples == stats.samples  # guided: all valid
    last_ask = solver.requests[-2].messages[-1].content  # the last sub-question sees the earlier pairs
    for j, step in enumerate(out.steps[:-1], 1):
        assert f"{j}. Q: {step.subquestion}\n   A: {step.answer}" in last_ask
    for number in (out.answer, out.initial_answer, *(s.answer for s in out.steps)):
        float(number.replace(",", ""))  # answer_kind="number": each answer is a number
    assert out.answer == out.final.answer and out.initial_answer == out.initial.answer


def test_cli_run_daslam_prints_json_with_answer() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "agentkit", "run", "daslam", "--question", PROBLEM.fields["question"],
         "-o", "max_subquestions=1", "-o", "answer_kind=number", "-o", "max_tokens=100",
         "-o", "max_rationale_chars=120"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["answer"] == result["final"]["answer"]
    assert result["initial_answer"] == result["initial"]["answer"]
    assert len(result["subquestions"]) == len(result["steps"]) == 1
