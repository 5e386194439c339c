"""Kill-and-resume of a checkpointed DaSLaM run, shared by the SQLite and PostgreSQL suites.

The worker runs DaSLaM (max 3 sub-questions: 6 model calls) on the replayed real SmolLM2 with a
checkpointer. Its test-only hook is a backend wrapper: when model call ``--block-at`` starts, every
earlier node has finished and, since agentkit checkpoints synchronously after each step, is on
disk; the wrapper then says so on stdout and waits forever, and the test SIGKILLs the process by
its pid. The next worker on the same thread must make exactly the calls that remain.

    python -m tests.unit._persistence_worker CHECKPOINT THREAD [--block-at N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CASSETTES = ROOT / "tests" / "cassettes"
TOTAL_CALLS = 6


class _Counting:
    """Counts calls across both DaSLaM backends; blocks the call numbered ``block_at``."""

    def __init__(self, inner: Any, shared: dict[str, int], block_at: int | None) -> None:
        self.inner, self.shared, self.block_at = inner, shared, block_at
        self.provider, self.model = inner.provider, inner.model

    async def generate(self, request: Any) -> Any:
        self.shared["calls"] += 1
        if self.shared["calls"] == self.block_at:
            print(f"blocked at call {self.block_at}", flush=True)
            await asyncio.Event().wait()
        return await self.inner.generate(request)


def build(block_at: int | None = None) -> tuple[Any, dict[str, int], dict[str, str]]:
    from agentkit.backends.replay import ReplayBackend
    from agentkit.eval import load_dataset
    from agentkit.graphs import daslam

    shared = {"calls": 0}
    solver = _Counting(ReplayBackend(CASSETTES / "daslam_solver.jsonl"), shared, block_at)
    decomposer = _Counting(ReplayBackend(CASSETTES / "daslam_decomposer.jsonl"), shared, block_at)
    graph = daslam.build(solver, decomposer, max_subquestions=3, answer_kind="number")
    return graph, shared, {"question": load_dataset("gsm8k", limit=2)[1].fields["question"]}


def _main() -> None:
    from agentkit import persistence

    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoint")
    parser.add_argument("thread")
    parser.add_argument("--block-at", type=int, default=None)
    args = parser.parse_args()
    graph, shared, inp = build(args.block_at)
    compiled = graph.compile(checkpointer=persistence.from_target(args.checkpoint))
    out = compiled.invoke(inp, thread_id=args.thread)
    print(json.dumps({"calls": shared["calls"], "output": out.model_dump(mode="json")}), flush=True)


# -- the test's side -------------------------------------------------------------------------------


def reference() -> tuple[int, dict[str, Any]]:
    """An uninterrupted run without a checkpointer: its call count and output."""
    graph, shared, inp = build()
    out = graph.compile().invoke(inp)
    return shared["calls"], out.model_dump(mode="json")


def _worker(checkpoint: str, thread: str, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "tests.unit._persistence_worker", checkpoint, thread, *extra],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_until_blocked_then_kill(checkpoint: str, thread: str, block_at: int) -> None:
    proc = _worker(checkpoint, thread, "--block-at", str(block_at))
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line == f"blocked at call {block_at}", f"worker said {line!r}; stderr: {proc.stderr.read()[-3000:]}"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def run_to_the_end(checkpoint: str, thread: str) -> dict[str, Any]:
    proc = _worker(checkpoint, thread)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr[-3000:]
    return json.loads(stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    _main()
