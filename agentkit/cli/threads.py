"""``agentkit threads list|delete --checkpoint ...``: what a checkpoint store holds, and removing a run."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer

from agentkit.cli._common import exit_codes, fail

StoreOpt = Annotated[str, typer.Option("--checkpoint", help="checkpoint store: a SQLite file or a postgresql:// DSN")]

threads = typer.Typer(no_args_is_help=True, help="List or delete the runs (threads) in a checkpoint store.")


@threads.command("list")
def list_(
    checkpoint: StoreOpt,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per thread instead of a table")] = False,
) -> None:
    """Every thread: id, status (finished / unfinished / paused), pattern, step, last update."""
    from agentkit import persistence

    with exit_codes():
        infos = asyncio.run(persistence.list_threads(persistence.from_target(checkpoint)))
    if as_json:
        for info in infos:
            typer.echo(info.model_dump_json())
        return
    if not infos:
        typer.echo(f"no threads in {checkpoint}", err=True)
        return
    typer.echo("\t".join(["thread", "status", "pattern", "step", "updated", "next"]))
    for i in infos:
        pattern = (i.settings.pattern if i.settings else None) or i.graph or "-"
        updated = i.updated.isoformat(timespec="seconds") if i.updated else "-"
        typer.echo("\t".join([i.thread_id, i.status, pattern, str(i.step), updated, ",".join(i.next) or "-"]))


@threads.command("delete")
def delete(
    checkpoint: StoreOpt,
    thread: Annotated[str, typer.Option("--thread", help="the thread id to remove")],
) -> None:
    """Remove every checkpoint of one thread (its run cannot be continued afterwards)."""
    from agentkit import persistence

    with exit_codes():
        removed = asyncio.run(persistence.delete_thread(persistence.from_target(checkpoint), thread))
    if not removed:
        fail(f"thread {thread!r} is not in {checkpoint}; see agentkit threads list --checkpoint {checkpoint}")
    typer.echo(json.dumps({"deleted": thread}))


def register(app: typer.Typer) -> None:
    app.add_typer(threads, name="threads")
