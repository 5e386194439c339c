"""The Ray actor of an evaluation: one backend and one compiled graph, examples in, results out.

The actor runs ``agentkit.eval._attempt.attempt``, the very code the local runner runs, and returns
its outcome; it writes nothing. A ConfigError (fatal for the whole run) comes back as a ``Fatal``
value rather than a Ray task error, so the driver re-raises the original error unwrapped.
This module does not import ray: the driver wraps ``EvalWorker`` with ``ray.remote``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from agentkit.backends.base import Backend
from agentkit.backends.pool import server_endpoints
from agentkit.errors import ConfigError
from agentkit.eval._attempt import Lost, WarnOnce, attempt
from agentkit.eval._ray_spec import BackendSpec
from agentkit.eval.datasets import Example
from agentkit.eval.metrics import ExampleResult
from agentkit.pattern import Pattern


@dataclass(frozen=True)
class WorkerRecipe:
    """Everything an actor needs to rebuild the run's graph; it must pickle."""

    backend: BackendSpec
    pattern: str | Pattern
    knobs: dict[str, Any] = field(default_factory=dict)
    answer_kind: str = "text"
    labels: list[str] | None = None
    n_threads: int | None = None  #: llama.cpp threads of this actor (the CPUs' share)
    actors: int = 1  #: actors sharing each endpoint: each takes 1/actors of its in-flight limit


def share_in_flight(backend: Backend, actors: int) -> None:
    """Give this actor its share of each endpoint's in-flight limit: the limit is the server's
    capacity, and every actor's client would otherwise fill all of it (N actors, N x the server's
    sequences, and the queue and its timeouts move back to the server)."""
    if actors <= 1:
        return
    for endpoint in server_endpoints(backend):
        if endpoint.max_in_flight is not None:
            endpoint.max_in_flight = max(1, endpoint.max_in_flight // actors)


@dataclass(frozen=True)
class Fatal:
    """A ConfigError raised in the actor, to be raised again by the driver."""

    error: BaseException


class EvalWorker:
    def __init__(self, recipe: WorkerRecipe) -> None:
        from agentkit.graphs import get_pattern

        self._recipe = recipe
        self._warn = WarnOnce()
        #: why the backend or graph could not be built: kept, not raised, so the driver gets the
        #: original error (a Ray creation-task failure would bury it in Ray's own message)
        self._broken: Exception | None = None
        try:
            self._pattern = recipe.pattern if isinstance(recipe.pattern, Pattern) else get_pattern(recipe.pattern)
            self._backend = recipe.backend.build(n_threads=recipe.n_threads)
            share_in_flight(self._backend, recipe.actors)
            self._graph = self._pattern.build(self._backend, **recipe.knobs).compile()
        except Exception as exc:  # noqa: BLE001 - handed to the driver as it is
            self._broken = exc

    async def identity(self) -> dict[str, Any]:
        """What the run manifest records, and which process this is (tests kill it by pid)."""
        if self._broken is not None:
            return {"broken": self._broken, "pid": os.getpid()}
        backend = self._backend
        return {"provider": str(getattr(backend, "provider", type(backend).__name__)),
                "model": str(getattr(backend, "model", "")), "pid": os.getpid(),
                "n_threads": self._recipe.n_threads if self._recipe.backend.runs_llamacpp else None,
                "max_in_flight": {e.base_url: e.max_in_flight for e in server_endpoints(backend)}}

    async def run(self, example: Example) -> ExampleResult | Lost | Fatal:
        if self._broken is not None:
            return Fatal(self._broken)
        try:
            return await attempt(self._pattern, self._graph, example, answer_kind=self._recipe.answer_kind,
                                 labels=self._recipe.labels, warn=self._warn)
        except ConfigError as exc:
            return Fatal(exc)
