"""Per-run accounting (calls, tokens per model, schema failures) without threading it through state.

A graph run opens a ``RunStats`` in a context variable; every backend call made inside that run,
including calls in concurrent branches (asyncio tasks copy the context), adds to it. Concurrent
graph runs each get their own object, so their counts never mix.
"""

from __future__ import annotations

import contextvars
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from pydantic import BaseModel, Field

from agentkit.backends.base import Usage


class RunStats(BaseModel):
    #: one graph run (nested blocks share their run's id): the default key that keeps a run's calls
    #: on one endpoint of a pool, where its shared prompt prefix is cached
    run_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    calls: int = 0
    samples: int = 0
    valid_samples: int = 0
    usage: Usage = Usage()
    by_model: dict[str, Usage] = Field(default_factory=dict)
    by_server: dict[str, int] = Field(default_factory=dict)  #: requests per server URL (pools)

    def record_server(self, url: str) -> None:
        self.by_server[url] = self.by_server.get(url, 0) + 1

    def record(self, model: str, usage: Usage, samples: int, valid: int) -> None:
        self.calls += 1
        self.samples += samples
        self.valid_samples += valid
        self.usage = self.usage + usage
        self.by_model[model] = self.by_model.get(model, Usage()) + usage

    def absorb(self, other: RunStats) -> None:
        """Add ``other``'s counts to these, model by model.

        For a part of a run measured on its own (a cascade tier in a nested :func:`collect`) that
        must still count towards the whole run; ``collect(forward=True)`` does this on exit.
        """
        self.calls += other.calls
        self.samples += other.samples
        self.valid_samples += other.valid_samples
        self.usage = self.usage + other.usage
        for model, usage in other.by_model.items():
            self.by_model[model] = self.by_model.get(model, Usage()) + usage
        for url, count in other.by_server.items():
            self.by_server[url] = self.by_server.get(url, 0) + count

    @property
    def schema_validity(self) -> float | None:
        return self.valid_samples / self.samples if self.samples else None


_current: contextvars.ContextVar[RunStats | None] = contextvars.ContextVar("agentkit_run_stats", default=None)


def current() -> RunStats | None:
    return _current.get()


@contextmanager
def collect(*, forward: bool = False) -> Iterator[RunStats]:
    """Collect stats for everything run inside the block.

    A nested block collects separately; with ``forward=True`` its counts are also added to the
    enclosing block's when it ends (even by an exception: the calls were made).
    """
    outer = _current.get()
    stats = RunStats() if outer is None else RunStats(run_id=outer.run_id)
    token = _current.set(stats)
    try:
        yield stats
    finally:
        _current.reset(token)
        outer = _current.get()
        if forward and outer is not None:
            outer.absorb(stats)
