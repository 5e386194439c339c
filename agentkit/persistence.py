"""Checkpoint stores for durable runs: ``sqlite(path)`` (embedded) and ``postgres(dsn)`` (production).

``graph.compile(checkpointer=agentkit.persistence.sqlite("runs.db"))`` then
``await compiled.ainvoke(inp, thread_id="t1")`` checkpoints after every step; invoking the same
thread again after a crash continues from the last finished step, so no finished node's model call
is made twice. ``compile`` also takes any LangGraph checkpoint saver as it is.

A ``Checkpointer`` here is a *description* of a store, not an open connection: LangGraph's async
savers are bound to the event loop that made them, while ``CompiledGraph.invoke`` starts a new loop
per call. ``open()`` connects on the running loop, shares one connection among the concurrent runs
of that loop, and closes it when the last one ends.
"""

from __future__ import annotations

import asyncio
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentkit._persistence_run import RunSettings, ThreadRecord, jsonable
from agentkit._persistence_serde import PlainStateSerializer
from agentkit._persistence_threads import ThreadInfo, delete_thread, list_threads, read_thread
from agentkit.errors import ConfigError

__all__ = ["Checkpointer", "RunSettings", "ThreadInfo", "ThreadRecord", "delete_thread", "from_target",
           "jsonable", "list_threads", "postgres", "read_thread", "sqlite"]

log = logging.getLogger(__name__)


@dataclass
class _Shared:
    ready: asyncio.Future[Any]
    stack: AsyncExitStack = field(default_factory=AsyncExitStack)
    users: int = 0


class Checkpointer(ABC):
    """A checkpoint store agentkit knows how to open (see the module doc)."""

    kind: str = ""

    def __init__(self) -> None:
        self._shared: dict[asyncio.AbstractEventLoop, _Shared] = {}

    @property
    @abstractmethod
    def target(self) -> str:
        """Where the store is, safe to print (no password)."""

    @abstractmethod
    def _connect(self) -> AbstractAsyncContextManager[Any]:
        """An async context manager yielding a ready LangGraph saver on the running loop."""

    def __repr__(self) -> str:
        return f"agentkit.persistence.{self.kind}({self.target!r})"

    @asynccontextmanager
    async def open(self) -> AsyncIterator[Any]:
        """The LangGraph saver for this loop, opened on first use and closed after the last user."""
        loop = asyncio.get_running_loop()
        entry = self._shared.get(loop)
        if entry is None:
            entry = self._shared[loop] = _Shared(ready=loop.create_future())
            entry.users += 1
            try:
                saver = await entry.stack.enter_async_context(self._connect())
            except BaseException as exc:
                del self._shared[loop]
                entry.ready.set_exception(exc)
                entry.ready.exception()  # retrieved: waiters re-raise it, nobody logs it as lost
                raise
            entry.ready.set_result(saver)
        else:
            entry.users += 1
        try:
            yield await asyncio.shield(entry.ready)
        finally:
            entry.users -= 1
            if entry.users == 0 and self._shared.get(loop) is entry:
                del self._shared[loop]
                await entry.stack.aclose()


class _SQLite(Checkpointer):
    kind = "sqlite"

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)

    @property
    def target(self) -> str:
        return str(self.path)

    @asynccontextmanager
    async def _connect(self) -> AsyncIterator[Any]:
        import aiosqlite
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        if not self.path.parent.is_dir():
            raise ConfigError(f"checkpoint {self.path}: folder {self.path.parent} does not exist; create it first")
        try:
            conn = await aiosqlite.connect(str(self.path))
        except Exception as exc:
            raise ConfigError(f"checkpoint {self.path}: cannot open it as SQLite ({exc})") from exc
        try:
            saver = AsyncSqliteSaver(conn, serde=PlainStateSerializer())
            await saver.setup()
            yield saver
        finally:
            await conn.close()


_PASSWORD = re.compile(r"(://[^:/@]+:)[^@]*@|(password=)\S+")


def _redact(dsn: str) -> str:
    return _PASSWORD.sub(lambda m: f"{m.group(1)}***@" if m.group(1) else f"{m.group(2)}***", dsn)


class _Postgres(Checkpointer):
    kind = "postgres"

    def __init__(self, dsn: str) -> None:
        super().__init__()
        self.dsn = dsn

    @property
    def target(self) -> str:
        return _redact(self.dsn)

    @asynccontextmanager
    async def _connect(self) -> AsyncIterator[Any]:
        try:
            from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
            from psycopg import AsyncConnection
            from psycopg.rows import dict_row
        except ImportError as exc:
            raise ConfigError("the postgres checkpointer needs langgraph-checkpoint-postgres and psycopg: "
                              "pip install 'agentkit[durable]'") from exc
        try:
            conn = await AsyncConnection.connect(self.dsn, autocommit=True, prepare_threshold=0, row_factory=dict_row)
        except Exception as exc:
            raise ConfigError(f"checkpoint {self.target}: cannot connect to PostgreSQL "
                              f"({str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}); "
                              "check the DSN and that the server is up") from exc
        try:
            saver = AsyncPostgresSaver(conn, serde=PlainStateSerializer())
            await saver.setup()
            yield saver
        finally:
            await conn.close()


def sqlite(path: str | Path) -> Checkpointer:
    """An embedded SQLite checkpoint file (made on first use; its folder must exist)."""
    return _SQLite(path)


def postgres(dsn: str) -> Checkpointer:
    """A PostgreSQL database, e.g. ``postgresql://user:pw@127.0.0.1:5432/agentkit`` (tables made on first use)."""
    if not dsn.strip():
        raise ConfigError("postgres checkpointer: the DSN is empty; pass e.g. postgresql://user@host:5432/db")
    return _Postgres(dsn)


def from_target(target: str) -> Checkpointer:
    """What ``--checkpoint PATH_OR_DSN`` means: a ``postgres://``/``postgresql://`` URL or a SQLite file."""
    if re.match(r"postgres(ql)?://", target):
        return postgres(target)
    if not target.strip():
        raise ConfigError("--checkpoint is empty; pass a SQLite file path or a postgresql:// DSN")
    return sqlite(target)
