"""`agentkit eval` end to end on the real SmolLM2 via llama.cpp: MC-CoT and its baselines on GSM8K.

Accuracy is not asserted (a 135M model is weak; docs/RESULTS.md reports it); the files, their
fields and the accounting are, exactly.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agentkit.eval import load_dataset
from agentkit.verifiers.answer import answers_match

pytestmark = pytest.mark.integration

LIMIT = 3
FIELDS = {"id", "prediction", "label", "correct", "usage", "latency_s", "error", "error_type", "schema_valid",
          "calls", "extra"}


# About a minute on 2 idle cores; the bounds only matter on a machine shared with other heavy jobs.
@pytest.mark.timeout(1800)
def test_eval_mccot_with_baselines_on_gsm8k(tmp_path: Path) -> None:
    out = tmp_path / "mccot"
    proc = subprocess.run(
        [sys.executable, "-m", "agentkit", "eval", "mccot", "--dataset", "gsm8k", "--limit", str(LIMIT),
         "--samples", "2", "--seed", "3", "-o", "max_tokens=160", "--baselines", "--out", str(out), "--no-progress"],
        capture_output=True, text=True, timeout=1700,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    gold = {e.id: e.label for e in load_dataset("gsm8k", limit=LIMIT)}
    for run_dir, pattern, calls in ((out, "mccot", 1), (out / "baseline-direct", "direct", 1),
                                    (out / "baseline-cot", "cot", 1)):
        rows = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
        assert sorted(r["id"] for r in rows) == sorted(gold)
        for r in rows:
            assert set(r) >= FIELDS
            assert r["label"] == gold[r["id"]] and r["calls"] == calls and r["latency_s"] > 0
            assert r["usage"]["input_tokens"] > 0 and r["usage"]["output_tokens"] > 0
            assert list(r["usage"]["by_model"]) == ["SmolLM2-135M-Instruct.Q4_1"]
            if r["error"] is None:
                assert r["correct"] == answers_match(r["prediction"], r["label"], "number")
            else:  # a real failure of the model (e.g. a sample cut at max_tokens) is a result, not a crash
                assert r["correct"] is False and r["error_type"]
        summary = json.loads((run_dir / "summary.json").read_text())
        assert (summary["pattern"], summary["dataset"], summary["n"]) == (pattern, "gsm8k", LIMIT)
        assert summary["correct"] == sum(r["correct"] for r in rows)
        assert summary["output_tokens"] == sum(r["usage"]["output_tokens"] for r in rows)
        assert summary["latency_p50_s"] > 0 and summary["calls_per_example"] == calls
        assert (run_dir / "report.png").read_bytes()[:4] == b"\x89PNG"
    mccot_rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert all(r["extra"]["samples"] == 2 for r in mccot_rows)  # k=2 samples in ONE request per example
    report = (out / "report.md").read_text()
    assert "## Pattern vs baselines" in report
    for name in ("mccot", "direct", "cot"):
        assert any(line.startswith(f"| {name} |") for line in report.splitlines())
    assert proc.stdout.startswith("| metric | mccot | direct (baseline-direct) | cot (baseline-cot) |")
