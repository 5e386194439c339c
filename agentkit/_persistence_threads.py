"""What ``agentkit threads list|delete`` sees of a checkpoint store: one line per thread.

Whether a thread is finished is read from its latest checkpoint alone, without rebuilding its graph
(which would need its backend): a LangGraph node is due when a channel that triggers it
(``branch:to:<node>``, ``join:...:<node>``, or ``__start__``) holds a value of a version the node
has not seen. Pinned by ``tests/unit/test_persistence.py`` against LangGraph's own ``next``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from agentkit._persistence_run import RunSettings, opened, record_of

Status = Literal["finished", "unfinished", "paused"]


class ThreadInfo(BaseModel):
    thread_id: str
    graph: str | None = None
    settings: RunSettings | None = None
    status: Status
    next: list[str]
    step: int | None = None
    updated: datetime | None = None
    checkpoints: int = 0


def _triggered(channel: str) -> str | None:
    if channel == "__start__":
        return channel
    if channel.startswith("branch:to:"):
        return channel[len("branch:to:"):]
    if channel.startswith("join:"):
        return channel.rsplit(":", 1)[-1]
    return None


def due_nodes(checkpoint: dict[str, Any]) -> list[str]:
    seen = checkpoint.get("versions_seen", {})
    present = checkpoint.get("channel_values", {})
    due = set()
    for channel, version in checkpoint.get("channel_versions", {}).items():
        node = _triggered(channel)
        if node is None or channel not in present:  # a consumed trigger is cleared (its version still moves)
            continue
        before = seen.get(node, {}).get(channel)
        if before is None or str(version) > str(before):
            due.add(node)
    return sorted(due)


def _info(thread_id: str, tup: Any, count: int) -> ThreadInfo:
    record = record_of(tup.metadata)
    due = due_nodes(tup.checkpoint)
    paused = any(w[1] == "__interrupt__" for w in (tup.pending_writes or ()))
    ts = tup.checkpoint.get("ts")
    return ThreadInfo(thread_id=thread_id, graph=record.graph if record else None,
                      settings=record.settings if record else None,
                      status="paused" if paused else "unfinished" if due else "finished", next=due,
                      step=(tup.metadata or {}).get("step"), updated=datetime.fromisoformat(ts) if ts else None,
                      checkpoints=count)


async def list_threads(checkpointer: Any) -> list[ThreadInfo]:
    """Every thread in the store, most recently updated first."""
    latest: dict[str, Any] = {}
    counts: dict[str, int] = {}
    async with opened(checkpointer) as saver:
        async for tup in saver.alist(None):
            conf = tup.config["configurable"]
            if conf.get("checkpoint_ns", ""):
                continue  # a subgraph's checkpoint: part of its parent's thread
            tid = conf["thread_id"]
            counts[tid] = counts.get(tid, 0) + 1
            if tid not in latest or conf["checkpoint_id"] > latest[tid].config["configurable"]["checkpoint_id"]:
                latest[tid] = tup
        if latest:  # alist leaves pending writes out on some savers: read each latest one whole
            for tid, tup in list(latest.items()):
                whole = await saver.aget_tuple({"configurable": {"thread_id": tid, "checkpoint_ns": ""}})
                latest[tid] = whole or tup
    infos = [_info(tid, tup, counts[tid]) for tid, tup in latest.items()]
    return sorted(infos, key=lambda i: (i.updated is None, -(i.updated.timestamp() if i.updated else 0)))


async def delete_thread(checkpointer: Any, thread_id: str) -> bool:
    """Remove every checkpoint of ``thread_id``; False if the store had none."""
    async with opened(checkpointer) as saver:
        found = await saver.aget_tuple({"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}})
        if found is None:
            return False
        await saver.adelete_thread(thread_id)
        return True


async def read_thread(checkpointer: Any, thread_id: str) -> ThreadInfo | None:
    """One thread's latest state (its record says how to rebuild its run; ``checkpoints`` is not counted
    here: 0); None if the store has no such thread."""
    async with opened(checkpointer) as saver:
        tup = await saver.aget_tuple({"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}})
    return None if tup is None else _info(thread_id, tup, 0)
