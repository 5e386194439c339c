"""``agentkit trace serve``: run Arize Phoenix locally and say where to send spans."""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from agentkit.errors import AgentkitError, ConfigError

trace_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Look at agentkit's traces.")


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # unwinds into the `finally` that stops Phoenix


@trace_app.command("serve")
def serve(
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Phoenix UI and OTLP/HTTP port")] = 6006,
    grpc_port: Annotated[
        int, typer.Option("--grpc-port", min=1, max=65535, help="Phoenix's OTLP/gRPC port (binds all interfaces)")
    ] = 4317,
    working_dir: Annotated[
        Path | None, typer.Option("--working-dir", help="where Phoenix keeps its database (default: XDG data dir)")
    ] = None,
    install: Annotated[
        bool, typer.Option("--install/--no-install", help="install Phoenix into its own cached venv if missing")
    ] = True,
    ready_timeout: Annotated[float, typer.Option("--ready-timeout", min=1, help="seconds to wait for startup")] = 180.0,
) -> None:
    """Start Phoenix on 127.0.0.1, print its URL and the OTLP endpoint, run until Ctrl-C."""
    previous = signal.signal(signal.SIGTERM, _stop_on_sigterm)  # so a plain `kill` also stops Phoenix
    try:
        code = _serve(port, grpc_port, working_dir, install, ready_timeout)
    finally:
        signal.signal(signal.SIGTERM, previous)
    raise typer.Exit(code)


def _serve(port: int, grpc_port: int, working_dir: Path | None, install: bool, ready_timeout: float) -> int:
    from agentkit import _phoenix

    try:
        python = _phoenix.find_python()
        if python is None:
            if not install:
                raise ConfigError(
                    f"Phoenix is not installed; drop --no-install or pip install '{_phoenix.REQUIREMENT}'"
                )
            typer.echo(f"installing {_phoenix.REQUIREMENT} into {_phoenix.cache_venv()} ...", err=True)
            python = _phoenix.install()
        settings = _phoenix.PhoenixSettings(
            port=port, grpc_port=grpc_port, working_dir=working_dir or _phoenix.default_working_dir()
        )
        server = _phoenix.start(settings, python=python, ready_timeout_s=ready_timeout)
    except ConfigError as exc:
        typer.echo(f"error: {str(exc).splitlines()[0]}", err=True)
        return 2
    except AgentkitError as exc:
        typer.echo(f"error: {type(exc).__name__}: {exc}", err=True)
        return 1
    except KeyboardInterrupt:
        return 130

    typer.echo(f"Phoenix UI:     {settings.url}")
    typer.echo(f"OTLP endpoint:  {settings.otlp_endpoint}  (OTLP/HTTP protobuf at {settings.otlp_endpoint}/v1/traces)")
    typer.echo(f"Send a run:     OTEL_EXPORTER_OTLP_ENDPOINT={settings.otlp_endpoint} agentkit run PATTERN ...")
    typer.echo(f"Phoenix pid {server.pid}, log {server.log_path}; Ctrl-C stops it.")
    try:
        code = server.process.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        server.stop()
    typer.echo(f"error: Phoenix exited by itself with code {code}; see {server.log_path}", err=True)
    return 1


def register(app: typer.Typer) -> None:
    app.add_typer(trace_app, name="trace")
