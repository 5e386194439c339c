"""`agentkit eval --ray` on the real SmolLM2 (llama.cpp in each of 2 Ray actors): every example written
once, and each actor decodes on its share of the CPUs (cpus // actors threads), not on all of them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from agentkit.eval import load_dataset

pytestmark = pytest.mark.integration

LIMIT = 3
ACTORS = 2


@pytest.mark.timeout(600)
def test_eval_direct_on_ray_with_two_llamacpp_actors(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    out = tmp_path / "direct"
    proc = subprocess.run(
        [sys.executable, "-m", "agentkit", "eval", "direct", "--dataset", "gsm8k", "--limit", str(LIMIT),
         "-o", "max_tokens=48", "--ray", "--ray-actors", str(ACTORS), "--concurrency", "2", "--out", str(out),
         "--no-progress"],
        capture_output=True, text=True, timeout=540,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    gold = {e.id: e.label for e in load_dataset("gsm8k", limit=LIMIT)}
    assert Counter(r["id"] for r in rows) == Counter(list(gold))  # each example exactly once
    for r in rows:
        assert r["calls"] == 1 and r["usage"]["output_tokens"] > 0
        assert list(r["usage"]["by_model"]) == ["SmolLM2-135M-Instruct.Q4_1"]
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["provider"] == "llama.cpp" and manifest["model"] == "SmolLM2-135M-Instruct.Q4_1"
    cpus = os.cpu_count() or 1
    assert manifest["ray"] == {"address": "local", "actors": ACTORS, "cpus_per_actor": max(1, cpus // ACTORS),
                               "n_threads": max(1, cpus // ACTORS), "max_in_flight": None}
    assert json.loads((out / "summary.json").read_text())["n"] == LIMIT
