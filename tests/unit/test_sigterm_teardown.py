"""A test session killed with SIGTERM (a CI timeout) still tears down its session fixtures, which is
where the shared vLLM and Phoenix servers are stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_sigterm_tears_the_session_fixtures_down(tmp_path: Path) -> None:
    mark = tmp_path / "mark"
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/unit/_sigterm_probe.py"],
                            cwd=ROOT, env={**os.environ, "SIGTERM_PROBE_MARK": str(mark), "AGENTKIT_TEST_PREWARM": "0"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL))  # fmt: skip
    deadline = time.monotonic() + 60
    while not Path(f"{mark}.running").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=60)
    assert mark.read_text() == "torn down", output
    assert proc.returncode != 0  # interrupted, not passed
