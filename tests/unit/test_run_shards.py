"""`make test`'s two sessions (tests/run_shards.py): every test in exactly one shard, and a SIGTERM
to the runner tearing down each session's fixtures."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import run_shards

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"


def test_the_llamacpp_shard_holds_integration_ray_and_packaging_and_the_other_the_rest() -> None:
    for path in ("integration/test_mccot_real.py", "integration/test_ray_real.py", "ray/test_eval_ray.py",
                 "test_packaging.py"):
        assert run_shards.shard_of(TESTS / path) == "llamacpp", path
    for path in ("unit/test_run_shards.py", "postgres/test_durable_postgres.py", "vllm/test_server_real.py",
                 "e2e/test_phoenix.py"):
        assert run_shards.shard_of(TESTS / path) == "others", path


def _collected(shard: str | None, *paths: str) -> set[str]:
    env = {k: v for k, v in os.environ.items() if k != run_shards.SHARD_ENV}
    if shard is not None:
        env[run_shards.SHARD_ENV] = shard
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *paths],
                          cwd=ROOT, env={**env, "AGENTKIT_TEST_PREWARM": "0"}, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert proc.returncode in (0, 5), proc.stdout[-2000:] + proc.stderr[-2000:]  # 5: nothing selected
    return {line.split("::")[0] for line in proc.stdout.splitlines() if "::" in line}


def test_each_session_collects_only_its_shard_and_together_they_collect_everything() -> None:
    paths = ("tests/integration/test_cascade_real.py", "tests/unit/test_run_shards.py")
    llamacpp, others, every = _collected("llamacpp", *paths), _collected("others", *paths), _collected(None, *paths)
    assert llamacpp == {"tests/integration/test_cascade_real.py"}
    assert others == {"tests/unit/test_run_shards.py"}
    assert every == llamacpp | others


def test_an_unknown_shard_is_refused_by_name() -> None:
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                           "tests/unit/test_run_shards.py"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, run_shards.SHARD_ENV: "gpu", "AGENTKIT_TEST_PREWARM": "0"})  # fmt: skip
    assert proc.returncode != 0
    assert "AGENTKIT_TEST_SHARD='gpu': use one of llamacpp, others" in proc.stdout + proc.stderr


@pytest.mark.timeout(180)
def test_sigterm_to_the_runner_tears_down_the_sessions_it_started(tmp_path: Path) -> None:
    mark = tmp_path / "mark"
    script = ("import sys; from tests import run_shards; "
              "sys.exit(run_shards.run([], paths=('tests/unit/_sigterm_probe.py',)))")  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, text=True,
                            env={**os.environ, "SIGTERM_PROBE_MARK": str(mark), "AGENTKIT_TEST_PREWARM": "0"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    deadline = time.monotonic() + 120
    while not Path(f"{mark}.running").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=120)
    assert mark.read_text() == "torn down", output  # the probe's session (shard "others") ran its teardown
    assert proc.returncode != 0, output  # interrupted, not passed
    assert "[others] " in output and "shard llamacpp: exit" in output and "shard others: exit" in output, output


def test_while_recording_cassettes_the_shards_run_one_after_the_other(monkeypatch: pytest.MonkeyPatch) -> None:
    starts: list[tuple[str, bool]] = []
    real_popen = subprocess.Popen

    def popen(*args: object, **kwargs: object) -> subprocess.Popen[str]:
        env = kwargs["env"]
        assert isinstance(env, dict)
        others_running = any(p.poll() is None for p in started)
        starts.append((env[run_shards.SHARD_ENV], others_running))
        proc = real_popen([sys.executable, "-c", "import time; time.sleep(0.5)"], text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
        started.append(proc)
        return proc

    started: list[subprocess.Popen[str]] = []
    monkeypatch.setattr(run_shards.subprocess, "Popen", popen)
    monkeypatch.setattr(run_shards.signal, "signal", lambda *a: None)  # leave this session's handlers alone
    monkeypatch.setenv("AGENTKIT_RECORD", "missing")
    assert run_shards.run([]) == 0
    assert starts == [("llamacpp", False), ("others", False)]
    monkeypatch.delenv("AGENTKIT_RECORD")
    starts.clear()
    started.clear()
    assert run_shards.run([]) == 0
    assert starts == [("llamacpp", False), ("others", True)]  # side by side
