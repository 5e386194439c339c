"""What ``agentkit run`` and ``agentkit resume`` do with a run paused for approval.

On a terminal the question is asked (y/n) and the run continues in this process; otherwise the
pause is printed (JSON on stdout, the resume command on stderr) and the command exits 3, so a
script or a scheduler can hand the decision to a person and resume later, anywhere.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import sys
from typing import Any

import typer

from agentkit.graph import Paused

PAUSED_EXIT = 3


def interactive() -> bool:
    """A person is there to answer: stdin and stderr are terminals."""
    return sys.stdin.isatty() and sys.stderr.isatty()


def resume_command(thread: str, checkpoint: str) -> str:
    return (f"agentkit resume --thread {shlex.quote(thread)} --checkpoint {shlex.quote(checkpoint)} "
            "--decision approve|reject")


def settle(compiled: Any, result: Any, *, thread: str, checkpoint: str | None, settings: Any) -> Any:
    """The run's output: ask while it pauses (on a terminal), or exit 3 naming the resume command."""
    while isinstance(result, Paused):
        if not interactive():
            _announce(result, thread, checkpoint)
        typer.echo(f"paused at {result.node}: {result.question}", err=True)
        yes = typer.confirm("approve?", default=False, err=True)
        result = asyncio.run(compiled.aresume(thread, "approve" if yes else "reject", settings=settings))
    return result


def _announce(paused: Paused, thread: str, checkpoint: str | None) -> None:
    command = resume_command(thread, checkpoint) if checkpoint is not None else None
    typer.echo(json.dumps({**paused.model_dump(mode="json"), "resume": command}))
    typer.echo(f"paused at {paused.node}: {paused.question}", err=True)
    typer.echo(f"thread {thread} waits for a decision; resume with:\n  {command}", err=True)
    raise typer.Exit(PAUSED_EXIT)
