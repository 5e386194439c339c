"""Arize Phoenix, the local OTel viewer: find or install it, start it on loopback, stop it.

Phoenix pulls ~90 packages (~850 MB) and pins some of agentkit's dependencies lower (tenacity,
python-dateutil), so by default it lives in its own venv under
``${XDG_CACHE_HOME:-~/.cache}/agentkit/phoenix``; an environment that installed the ``phoenix``
extra uses its own copy instead. Phoenix is configured only through PHOENIX_* variables: bound to
127.0.0.1, no telemetry, no external resources, no agent assistant (there is no network here).
Its gRPC receiver always binds [::] (Phoenix has no host setting for it), so it gets its own port.
"""

from __future__ import annotations

import fcntl
import importlib.metadata
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from pydantic import BaseModel, ConfigDict, Field

from agentkit.errors import AgentkitError, ConfigError

log = logging.getLogger(__name__)

REQUIREMENT = "arize-phoenix>=20.26,<21"
_MODULE = "phoenix.server.main"
_DIST = "arize-phoenix"


class PhoenixError(AgentkitError):
    """Phoenix could not be installed or did not come up; the message points at its log."""


class PhoenixSettings(BaseModel):
    """Where a Phoenix server listens and keeps its database."""

    model_config = ConfigDict(frozen=True)
    host: str = "127.0.0.1"
    port: int = Field(6006, ge=1, le=65535)
    grpc_port: int = Field(4317, ge=1, le=65535)
    working_dir: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def otlp_endpoint(self) -> str:
        """The value for OTEL_EXPORTER_OTLP_ENDPOINT (spans are POSTed to ``/v1/traces`` under it)."""
        return self.url

    def environment(self) -> dict[str, str]:
        return {
            "PHOENIX_HOST": self.host,
            "PHOENIX_PORT": str(self.port),
            "PHOENIX_GRPC_PORT": str(self.grpc_port),
            "PHOENIX_WORKING_DIR": str(self.working_dir),
            "PHOENIX_TELEMETRY_ENABLED": "false",
            "PHOENIX_ALLOW_EXTERNAL_RESOURCES": "false",
            "PHOENIX_DISABLE_AGENT_ASSISTANT": "true",
        }


def cache_venv() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "agentkit" / "phoenix"


def default_working_dir() -> Path:
    """Traces persist here between sessions (Phoenix keeps them in SQLite)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "agentkit" / "phoenix"


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _has_phoenix(python: Path) -> bool:
    # the distribution's metadata, not an import: importing phoenix takes seconds (pandas, sqlalchemy, ...)
    probe = f"import importlib.metadata as m; m.version({_DIST!r})"
    try:
        return subprocess.run([str(python), "-c", probe], capture_output=True, timeout=60, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def find_python() -> Path | None:
    """An interpreter that can run Phoenix: this one (the ``phoenix`` extra), else the cached venv."""
    try:
        importlib.metadata.version(_DIST)
        return Path(sys.executable)
    except importlib.metadata.PackageNotFoundError:
        pass
    python = _venv_python(cache_venv())
    return python if python.exists() and _has_phoenix(python) else None


def install(venv: Path | None = None) -> Path:
    """Create ``venv`` (default: the cache venv) and pip-install Phoenix into it; returns its python.

    A lock file serialises concurrent installs (a test and a CLI call racing on one cache).
    """
    venv = venv or cache_venv()
    venv.parent.mkdir(parents=True, exist_ok=True)
    python = _venv_python(venv)
    with open(venv.parent / f".{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if python.exists() and _has_phoenix(python):
            return python
        base = getattr(sys, "_base_executable", None) or sys.executable
        log.warning("installing %s into %s (one-off, about a minute)", REQUIREMENT, venv)
        _run([base, "-m", "venv", str(venv)], "create the Phoenix venv")
        _run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", REQUIREMENT],
             f"pip install {REQUIREMENT}")
    return python


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise PhoenixError(f"could not {what} (exit {proc.returncode}):\n{tail}")


def ensure_installed() -> Path:
    return find_python() or install()


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class RunningPhoenix:
    """A Phoenix server process this process started (and must stop)."""

    def __init__(self, settings: PhoenixSettings, process: subprocess.Popen[bytes], log_path: Path) -> None:
        self.settings = settings
        self.process = process
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PhoenixError(
                    f"Phoenix exited with code {self.process.returncode} before it was ready; "
                    f"its log ({self.log_path}) ends with:\n{self.log_tail()}"
                )
            try:
                if httpx.get(f"{self.settings.url}/healthz", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise PhoenixError(
            f"Phoenix did not answer on {self.settings.url} within {timeout_s:.0f} s; see {self.log_path}"
        )

    def stop(self, timeout_s: float = 20.0) -> int | None:
        """SIGTERM, then SIGKILL if it lingers; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                log.warning("Phoenix (pid %d) ignored SIGTERM for %.0f s; killing it", self.pid, timeout_s)
                self.process.kill()
                self.process.wait(timeout=timeout_s)
        return self.process.returncode


def start(settings: PhoenixSettings, *, python: Path, ready_timeout_s: float = 180.0) -> RunningPhoenix:
    """Start ``phoenix serve`` with ``settings`` and return once it answers /healthz."""
    for name, port in (("port", settings.port), ("gRPC port", settings.grpc_port)):
        if not port_is_free(settings.host, port):
            raise ConfigError(f"Phoenix {name} {port} on {settings.host} is already in use; choose another one")
    if settings.port == settings.grpc_port:
        raise ConfigError(f"Phoenix port and gRPC port must differ (both are {settings.port})")
    try:
        settings.working_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"Phoenix working dir {settings.working_dir} cannot be created: {exc.strerror}") from None
    log_path = settings.working_dir / "phoenix.log"
    env = {**os.environ, **settings.environment()}
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(
            [str(python), "-m", _MODULE, "serve"], env=env, stdout=log_file, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    server = RunningPhoenix(settings, process, log_path)
    try:
        server.wait_ready(ready_timeout_s)
    except BaseException:
        server.stop()
        raise
    return server
