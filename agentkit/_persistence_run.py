"""One checkpointed run: start a thread, continue an unfinished one, or return a finished one's output.

A thread remembers what it takes to rebuild its run (``ThreadRecord``: graph, pattern, knobs,
backend, input, the state model's schema) in the metadata of every checkpoint it writes. Before a
thread is continued, the current run is compared with that record and refused on any difference
that would make the continuation a different computation; an endpoint URL may change (the same
model moved), so it is only logged. Checkpoints are written synchronously after each step
(LangGraph's ``durability="sync"``): a process killed during step n+1 has step n on disk.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from agentkit.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

log = logging.getLogger(__name__)

#: checkpoint-metadata key of the thread record (LangGraph keeps only scalar metadata: a JSON string)
RECORD_KEY = "agentkit_thread"


class RunSettings(BaseModel):
    """What rebuilds a run besides the graph: pattern, knobs and backend (kind, model, URL, and the
    in-flight limit and request timeout a shared server was given)."""

    pattern: str | None = None
    knobs: dict[str, Any] = Field(default_factory=dict)
    backend: str | None = None
    model: str | None = None
    base_url: str | list[str] | None = None  #: several for a pool
    max_in_flight: int | None = None  #: sequences at each server at once (``--max-in-flight``)
    timeout_s: float | None = None  #: seconds a request may take (``--request-timeout``)


class ThreadRecord(BaseModel):
    """Stored with every checkpoint of a thread."""

    graph: str
    settings: RunSettings = Field(default_factory=RunSettings)
    input: dict[str, Any] = Field(default_factory=dict)
    state_schema: dict[str, str] = Field(default_factory=dict)  # field -> digest of its JSON schema


def jsonable(value: Any) -> Any:
    """Knobs and inputs as JSON data; objects JSON cannot hold (a Backend) are kept as their type name."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return json.loads(json.dumps(value, default=lambda o: o.model_dump(mode="json") if isinstance(o, BaseModel)
                                 else f"<{type(o).__name__}>"))


def state_schema(state: type[BaseModel]) -> dict[str, str]:
    out = {}
    for name, info in state.model_fields.items():
        try:
            text = json.dumps(TypeAdapter(info.annotation).json_schema(), sort_keys=True)
        except Exception:  # a type with no JSON schema: its name is what we can compare
            text = repr(info.annotation)
        out[name] = hashlib.sha256(text.encode()).hexdigest()[:16]
    return out


def record_of(metadata: Mapping[str, Any] | None) -> ThreadRecord | None:
    raw = (metadata or {}).get(RECORD_KEY)
    if not raw:
        return None
    try:
        return ThreadRecord.model_validate_json(raw)
    except ValidationError:
        log.warning("checkpoint metadata %s is not a thread record this agentkit reads; ignoring it", RECORD_KEY)
        return None


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


def compare(stored: ThreadRecord, now: ThreadRecord, thread_id: str, *, check_settings: bool) -> None:
    """Refuse to continue ``thread_id`` with a run that differs from the one that wrote it."""
    what = f"thread {thread_id!r}"
    fix = "rerun with the thread's settings, or start a new thread (another --thread id)"
    if stored.graph != now.graph:
        raise ConfigError(f"{what} belongs to graph {stored.graph!r}, not {now.graph!r}; {fix}")
    for name in sorted(set(stored.state_schema) | set(now.state_schema)):
        before, after = stored.state_schema.get(name), now.state_schema.get(name)
        if before != after:
            change = ("was removed" if after is None else "is new" if before is None else "changed type")
            raise ConfigError(f"{what} was checkpointed with another state model: field {name!r} {change} since; "
                              "finish it with the old code, or delete it (agentkit threads delete)")
    for key in sorted(set(stored.input) | set(now.input)):
        if stored.input.get(key) != now.input.get(key):
            raise ConfigError(f"{what} was started with input {key}={_show(stored.input.get(key))}, "
                              f"this run has {_show(now.input.get(key))}; {fix}")
    if not check_settings:
        return
    old, new = stored.settings, now.settings
    for name in ("pattern", "backend", "model"):
        if getattr(old, name) != getattr(new, name):
            raise ConfigError(f"{what} was started with {name} {_show(getattr(old, name))}, "
                              f"this run has {_show(getattr(new, name))}; {fix}")
    for knob in sorted(set(old.knobs) | set(new.knobs)):
        if old.knobs.get(knob) != new.knobs.get(knob):
            raise ConfigError(f"{what} was started with knob {knob}={_show(old.knobs.get(knob))}, "
                              f"this run has {_show(new.knobs.get(knob))}; {fix}")
    if old.base_url != new.base_url:
        log.info("%s continues on %s (started on %s)", what, new.base_url, old.base_url)


def check_values(state: type[BaseModel], values: Mapping[str, Any], thread_id: str) -> None:
    """Each stored field must still fit the current state model; the error names the one that does not.

    Field by field, since a checkpoint taken before the first step holds only some of them.
    """
    for name, value in values.items():
        info = state.model_fields.get(name)
        if info is None:
            raise ConfigError(f"thread {thread_id!r}: its checkpoint has field {name!r}, which {state.__name__} no "
                              "longer has; finish it with the old code, or delete it (agentkit threads delete)")
        try:
            adapter = TypeAdapter(info.annotation)
        except Exception:  # a type pydantic cannot validate on its own (arbitrary class): nothing to check
            continue
        try:
            adapter.validate_python(value)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in (name, *err["loc"]))
            raise ConfigError(f"thread {thread_id!r}: its checkpointed field {where!r} does not fit "
                              f"{state.__name__} any more ({err['msg']}); finish it with the old code, or delete "
                              "it (agentkit threads delete)") from None


@asynccontextmanager
async def opened(checkpointer: Any) -> AsyncIterator[Any]:
    """An agentkit ``Checkpointer`` is opened on this loop; a LangGraph saver is used as it is."""
    ctx: AbstractAsyncContextManager[Any] = checkpointer.open() if hasattr(checkpointer, "_connect") \
        else nullcontext(checkpointer)
    async with ctx as saver:
        yield saver


def config_for(thread_id: str, record: ThreadRecord, recursion_limit: int) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread_id}, "recursion_limit": recursion_limit,
            "metadata": {RECORD_KEY: record.model_dump_json()}}


class Plan(BaseModel, arbitrary_types_allowed=True):
    """How to run a thread: ``pregel`` (with the saver) on ``input`` (None: continue), or nothing to
    run when ``finished`` holds the stored final values."""

    pregel: Any
    input: dict[str, Any] | None
    config: dict[str, Any]
    finished: dict[str, Any] | None = None


async def plan(pregel: Any, saver: Any, *, state: type[BaseModel], graph: str, data: dict[str, Any],
               thread_id: str, settings: RunSettings | None, recursion_limit: int) -> Plan:
    """Start ``thread_id``, continue it, or re-read it; refuse a run that differs from the thread's."""
    if not thread_id:
        raise ConfigError(f"graph {graph!r}: thread_id is empty; name the run, e.g. thread_id='run-1'")
    lg = pregel.copy(update={"checkpointer": saver})
    record = ThreadRecord(graph=graph, settings=settings or RunSettings(), input=jsonable(data),
                          state_schema=state_schema(state))
    config = config_for(thread_id, record, recursion_limit)
    found = await latest(saver, thread_id)
    if found is None:  # a new thread
        return Plan(pregel=lg, input=data, config=config)
    metadata, values = found
    stored = record_of(metadata)
    if stored is not None:  # checked before LangGraph reads the state: it would fail on a drifted model
        compare(stored, record, thread_id, check_settings=settings is not None)
    check_values(state, values, thread_id)
    snapshot = await lg.aget_state(config)
    if not snapshot.next:
        log.info("thread %r is finished; returning its stored output", thread_id)
        return Plan(pregel=lg, input=None, config=config, finished=dict(snapshot.values))
    log.info("thread %r continues at %s", thread_id, ", ".join(snapshot.next))
    return Plan(pregel=lg, input=None, config=config)


async def invoke(pregel: Any, saver: Any, **kw: Any) -> Any:
    """Run, continue or re-read a thread (see ``plan``); return its final values."""
    p = await plan(pregel, saver, **kw)
    if p.finished is not None:
        return p.finished
    return await p.pregel.ainvoke(p.input, p.config, durability="sync")


async def latest(saver: Any, thread_id: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The thread's latest checkpoint as (metadata, state values), read straight from the store."""
    tup = await saver.aget_tuple({"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}})
    if tup is None:
        return None
    channels = tup.checkpoint.get("channel_values", {})
    values = {k: v for k, v in channels.items() if ":" not in k and not k.startswith("__")}  # not LangGraph's own
    return dict(tup.metadata or {}), values


async def resume_plan(pregel: Any, saver: Any, *, state: type[BaseModel], graph: str, thread_id: str,
                      settings: RunSettings | None, recursion_limit: int) -> tuple[Plan, Any]:
    """How to continue a paused thread: its checkpointed run (checked like ``plan``) and its pending
    interrupts (LangGraph's, for ``_interrupt.pending``). Refused if the thread is not paused."""
    found = await latest(saver, thread_id)
    if found is None:
        raise ConfigError(f"thread {thread_id!r} is not in this checkpoint store; see agentkit threads list")
    metadata, values = found
    stored = record_of(metadata)
    record = ThreadRecord(graph=graph, settings=settings or (stored.settings if stored else RunSettings()),
                          input=stored.input if stored else {}, state_schema=state_schema(state))
    if stored is not None:
        compare(stored, record, thread_id, check_settings=settings is not None)
    check_values(state, values, thread_id)
    lg = pregel.copy(update={"checkpointer": saver})
    config = config_for(thread_id, record, recursion_limit)
    snapshot = await lg.aget_state(config)
    if not snapshot.interrupts:
        status = "finished" if not snapshot.next else f"unfinished (next: {', '.join(snapshot.next)})"
        raise ConfigError(f"thread {thread_id!r} is not paused for a decision: it is {status}; "
                          "continue an unfinished run by rerunning it")
    return Plan(pregel=lg, input=None, config=config), snapshot.interrupts
