"""CLI runs on the real SmolLM2 end without warnings on stderr.

Every guided run used to end with two ``ResourceWarning: unclosed file /dev/null`` lines: the
handles llama-cpp-python opens at import outlived the warning filters (see
agentkit/backends/_llamacpp_devnull.py). Runs as a user would: a fresh interpreter, default filters.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
WARNING = re.compile(r"\b[A-Z][A-Za-z]*Warning\b")


def _agentkit(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONWARNINGS", "PYTHONDEVMODE")}
    return subprocess.run([sys.executable, "-m", "agentkit", *args], capture_output=True, text=True,
                          timeout=600, env=env, cwd=cwd, check=False)  # fmt: skip


def test_guided_run_prints_no_warning(tmp_path: Path) -> None:
    proc = _agentkit("run", "mccot", "--question", "What is 12 + 30?", "--samples", "2", "--seed", "3",
                     "-o", "max_tokens=96", "-o", "answer_kind=number", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "answer" in json.loads(proc.stdout)
    assert WARNING.findall(proc.stderr) == [], proc.stderr[-3000:]


def test_eval_run_prints_no_warning(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = _agentkit("eval", "mccot", "--dataset", "gsm8k", "--limit", "1", "--samples", "2", "--out", str(out),
                     "-o", "max_tokens=96", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "summary.json").is_file()
    assert WARNING.findall(proc.stderr) == [], proc.stderr[-3000:]
