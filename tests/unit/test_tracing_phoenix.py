"""``agentkit trace serve`` and the Phoenix launcher, without Phoenix: settings, the environment
DESIGN.md asks for, port clashes, a server that dies at startup. The real server is started by
tests/e2e/test_phoenix.py."""

from __future__ import annotations

import importlib.metadata
import socket
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentkit import _phoenix
from agentkit.cli import app
from agentkit.errors import ConfigError


def test_settings_environment_keeps_phoenix_local_and_offline(tmp_path: Path) -> None:
    settings = _phoenix.PhoenixSettings(port=7001, grpc_port=7002, working_dir=tmp_path)
    assert settings.environment() == {
        "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_PORT": "7001",
        "PHOENIX_GRPC_PORT": "7002",
        "PHOENIX_WORKING_DIR": str(tmp_path),
        "PHOENIX_TELEMETRY_ENABLED": "false",
        "PHOENIX_ALLOW_EXTERNAL_RESOURCES": "false",
        "PHOENIX_DISABLE_AGENT_ASSISTANT": "true",
    }
    assert settings.url == settings.otlp_endpoint == "http://127.0.0.1:7001"


def test_cache_venv_follows_xdg_cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert _phoenix.cache_venv() == tmp_path / "agentkit" / "phoenix"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert _phoenix.cache_venv() == Path.home() / ".cache" / "agentkit" / "phoenix"


def test_find_python_without_any_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # an empty cache
    try:
        importlib.metadata.version("arize-phoenix")
        here = True
    except importlib.metadata.PackageNotFoundError:
        here = False
    assert _phoenix.find_python() == (Path(sys.executable) if here else None)


def test_start_refuses_a_busy_port(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        settings = _phoenix.PhoenixSettings(port=port, grpc_port=_phoenix.free_port(), working_dir=tmp_path)
        with pytest.raises(ConfigError, match=f"port {port} on 127.0.0.1 is already in use"):
            _phoenix.start(settings, python=Path(sys.executable))


def test_start_refuses_equal_ports(tmp_path: Path) -> None:
    port = _phoenix.free_port()
    settings = _phoenix.PhoenixSettings(port=port, grpc_port=port, working_dir=tmp_path)
    with pytest.raises(ConfigError, match="must differ"):
        _phoenix.start(settings, python=Path(sys.executable))


def test_a_server_that_dies_at_startup_is_reported_with_its_log(tmp_path: Path) -> None:
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'sqlite: database is locked' >&2\nexit 3\n")
    fake.chmod(0o755)
    settings = _phoenix.PhoenixSettings(port=_phoenix.free_port(), grpc_port=_phoenix.free_port(),
                                        working_dir=tmp_path / "wd")
    with pytest.raises(_phoenix.PhoenixError, match="exited with code 3") as err:
        _phoenix.start(settings, python=fake, ready_timeout_s=30)
    assert "database is locked" in str(err.value) and str(tmp_path / "wd" / "phoenix.log") in str(err.value)


def test_cli_without_phoenix_and_no_install_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_phoenix, "find_python", lambda: None)
    result = CliRunner().invoke(app, ["trace", "serve", "--no-install"])
    assert result.exit_code == 2
    assert "Phoenix is not installed" in result.output


def test_cli_busy_port_exits_2_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_phoenix, "find_python", lambda: Path(sys.executable))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(app, ["trace", "serve", "--port", str(port), "--working-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert f"port {port}" in result.output and "already in use" in result.output


def test_cli_rejects_an_out_of_range_port() -> None:
    result = CliRunner().invoke(app, ["trace", "serve", "--port", "70000"])
    assert result.exit_code == 2
