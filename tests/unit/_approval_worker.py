"""A fresh process running the ``agentkit`` command on the replayed real SmolLM2 cascade.

Two backend kinds are registered before the CLI runs: ``replay-small`` and ``replay-large``, both
replaying ``tests/cassettes/cascade_sheep.jsonl``. Each call is appended (``small n=3`` ...) to the
file named by ``AGENTKIT_TEST_CALLS``, so the test can see which tier made model calls in which
process. The thread's record names these kinds, so ``agentkit resume`` in a new worker rebuilds the
same run.

    python -m tests.unit._approval_worker run cascade ...   (any agentkit arguments)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CASSETTE = ROOT / "tests" / "cassettes" / "cascade_sheep.jsonl"
QUESTION = "A farmer has 3 pens with 4 sheep in each pen. How many sheep are there in total?"
#: small tier k=3, large tier k=9 (both recorded at max_tokens 256, seed 5); a threshold no
#: agreement reaches, so the small tier always asks to escalate
RUN = ["run", "cascade", "--question", QUESTION, "--backend", "replay-small", "--samples", "3", "--seed", "5",
       "-o", "answer_kind=number", "-o", "large_backend=replay-large", "-o", "large_k=9", "-o", "threshold=1.01"]


class _Logged:
    def __init__(self, inner: Any, name: str) -> None:
        self.inner, self.name = inner, name
        self.provider, self.model = inner.provider, inner.model

    async def generate(self, request: Any) -> Any:
        with Path(os.environ["AGENTKIT_TEST_CALLS"]).open("a") as f:  # noqa: ASYNC230 (a test log line)
            f.write(f"{self.name} n={request.n}\n")
        return await self.inner.generate(request)


def _register() -> None:
    from agentkit.backends import register_backend
    from agentkit.backends.replay import ReplayBackend

    for name in ("small", "large"):
        register_backend(f"replay-{name}", lambda model=None, base_url=None, name=name: _Logged(
            ReplayBackend(CASSETTE), name), help=f"test: replayed cascade, {name} tier")


def agentkit(*args: str, calls: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``agentkit ARGS`` in a new process (stdin not a terminal)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AGENTKIT_TEST_CALLS": str(calls)}
    return subprocess.run([sys.executable, "-m", "tests.unit._approval_worker", *args], cwd=ROOT, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, check=False)


if __name__ == "__main__":
    _register()
    from agentkit.cli import main

    sys.argv = ["agentkit", *sys.argv[1:]]
    main()
