"""A run SIGKILLed at random moments and resumed each time loses nothing and duplicates nothing.

The runner runs in a subprocess on the replayed real SmolLM2 behind a wrapper that sleeps a random
while per request, so kills land before, between and during result writes. After the last resume
the results must be exactly those of an uninterrupted run.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from agentkit.eval.runner import evaluate, select_dataset
from tests.conftest import CASSETTES
from tests.unit.test_eval_runner import CASSETTE

N = 16
KILLS = 5
COMPARED = ("prediction", "label", "correct", "usage", "error", "error_type", "schema_valid", "calls", "extra")

WORKER = """
import asyncio, random, sys
from agentkit.backends.replay import ReplayBackend
from agentkit.eval.runner import evaluate, select_dataset

class Slow:
    def __init__(self, inner, rng):
        self.inner, self.rng = inner, rng
        self.provider, self.model = inner.provider, inner.model

    async def generate(self, request):
        await asyncio.sleep(self.rng.uniform(0.2, 0.6))
        return await self.inner.generate(request)

cassette, out, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
backend = Slow(ReplayBackend(cassette), random.Random(seed))
data = select_dataset("gsm8k", limit=%d)
print("ready", flush=True)
outcome = evaluate("direct", data, backend, out, concurrency=2, resume=True)
print("done", len(outcome.lost), outcome.summary.n, flush=True)
""" % N


def _complete_lines(path: Path) -> int:
    if not path.exists():
        return 0
    return path.read_bytes().count(b"\n")


def _wait_for_growth(path: Path, before: int, proc: subprocess.Popen, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while _complete_lines(path) <= before and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)


def test_kill_at_random_moments_then_resume_loses_and_duplicates_nothing(replay, tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    evaluate("direct", select_dataset("gsm8k", limit=N), replay(CASSETTE), reference)  # also records, if asked
    expected = {r["id"]: r for r in map(json.loads, (reference / "results.jsonl").read_text().splitlines())}
    assert len(expected) == N

    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    out = tmp_path / "killed"
    results = out / "results.jsonl"
    rng = random.Random(20240601)
    mid_run_kills = 0
    for attempt in range(KILLS + 1):
        proc = subprocess.Popen([sys.executable, str(worker), str(CASSETTES / f"{CASSETTE}.jsonl"), str(out),
                                 str(attempt)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready", proc.stderr.read()
            if attempt == KILLS:  # the last one runs to the end
                stdout, stderr = proc.communicate(timeout=120)
                assert proc.returncode == 0, stderr[-3000:]
                assert stdout.split() == ["done", "0", str(N)]
                break
            before = _complete_lines(results)
            if attempt % 2:  # after a result lands: kills between and during the writes that follow
                _wait_for_growth(results, before, proc)
                time.sleep(rng.uniform(0.0, 0.3))
            else:  # anywhere from startup (repairing the file, building the graph) onwards
                time.sleep(rng.uniform(0.0, 1.0))
            if proc.poll() is not None:
                proc.communicate()
                assert proc.returncode == 0, f"worker died on its own (exit {proc.returncode})"
                break  # it finished before the kill
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
            if 0 < _complete_lines(results) < N:
                mid_run_kills += 1
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()

    assert mid_run_kills >= 2, "the kills did not interrupt the run; the test proved nothing"
    raw = results.read_text(encoding="utf-8")
    assert raw.endswith("\n")
    rows = [json.loads(line) for line in raw.splitlines()]  # every line whole
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), "an example was written twice"
    assert set(ids) == set(expected), "an example was lost"
    for r in rows:
        for key in COMPARED:
            assert r[key] == expected[r["id"]][key], (r["id"], key)
    summary = json.loads((out / "summary.json").read_text())
    reference_summary = json.loads((reference / "summary.json").read_text())
    assert summary["n"] == N and summary["correct"] == reference_summary["correct"]
    assert summary["output_tokens"] == reference_summary["output_tokens"]
