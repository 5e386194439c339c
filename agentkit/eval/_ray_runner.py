"""Run an evaluation's examples on Ray actors; the driver stays the only writer of results.jsonl.

``aevaluate`` does everything it does without Ray (manifest, resume, summary); only how the
``todo`` examples run changes. The driver keeps a queue and feeds each actor up to its share of
the concurrency; each outcome comes back to the driver, which settles it exactly as a local run
does (``_Run._settle``: fsync'd line, progress, stop rules), skipping an id already written. When
an actor's process dies, its in-flight examples go back to the front of the queue for the others
and a replacement actor is started; an example that has killed ``max_attempts`` workers is left
unfinished (lost: --resume runs it again) rather than looping.

A local Ray (no address) binds 127.0.0.1 only, with the dashboard and usage reporting off; it is
started here and stopped at the end. A Ray that is already initialised (a test session, a
notebook) is used as it is and left running.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from agentkit.errors import ConfigError
from agentkit.eval._attempt import Lost
from agentkit.eval._ray_spec import RayOptions, require_ray
from agentkit.eval._ray_worker import EvalWorker, Fatal, WorkerRecipe
from agentkit.eval.datasets import Example
from agentkit.eval.metrics import ExampleResult

__all__ = ["RayWorkers", "connect"]

_LOG = logging.getLogger(__name__)


class _Settler(Protocol):
    """The local run's bookkeeping (``agentkit.eval.runner._Run``) that outcomes are handed to."""

    stopped: str | None
    fatal: BaseException | None
    written: set[str]

    def _settle(self, outcome: ExampleResult | Lost) -> None: ...


def connect(options: RayOptions) -> tuple[Any, bool]:
    """(the ray module, whether this call started Ray and so must stop it)."""
    ray = require_ray(local=options.address is None)
    if ray.is_initialized():
        return ray, False
    if options.address is None:
        ray.init(address="local", num_cpus=options.num_cpus or os.cpu_count() or 1, include_dashboard=False,
                 object_store_memory=options.object_store_mb * 1024 * 1024, _node_ip_address="127.0.0.1",
                 logging_level=logging.WARNING, namespace="agentkit-eval")
    else:
        try:
            ray.init(address=options.address, logging_level=logging.WARNING, namespace="agentkit-eval")
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ConfigError(f"--ray-address {options.address}: cannot join that Ray cluster "
                              f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
                              "is `ray start --head` running there?") from None
    return ray, True


@dataclass
class _Actor:
    handle: Any
    index: int
    busy: int = 0
    alive: bool = True
    pid: int | None = None


class RayWorkers:
    """The actors of one evaluation. ``start`` blocks until each has built its backend and graph."""

    def __init__(self, ray: Any, owns_ray: bool, recipe: WorkerRecipe, count: int, slots: int,
                 options: RayOptions, cpus_per_actor: float) -> None:
        self._ray, self._owns_ray, self._recipe = ray, owns_ray, recipe
        self._options, self._slots, self._cpus = options, slots, cpus_per_actor
        self._remote = ray.remote(EvalWorker).options(num_cpus=cpus_per_actor, max_restarts=0,
                                                     max_concurrency=slots)
        self._actors: list[_Actor] = []
        self._spawned = 0
        self._replacements_left = count  # a dead actor is replaced, up to one more round of them
        self.identity: dict[str, Any] = {}
        for _ in range(count):
            self._spawn()

    @classmethod
    def start(cls, options: RayOptions, recipe: WorkerRecipe, *, concurrency: int) -> RayWorkers:
        ray, owns = connect(options)
        workers: RayWorkers | None = None
        try:
            cpus = max(1.0, float(ray.cluster_resources().get("CPU", 1.0)))
            count = options.actors or int(cpus)
            share = cpus / count
            cpus_per_actor = float(int(share)) if share >= 1 else round(share, 4)
            if recipe.backend.runs_llamacpp and recipe.n_threads is None:
                recipe = replace(recipe, n_threads=max(1, int(cpus) // count))
            recipe = replace(recipe, actors=count)
            slots = max(1, -(-concurrency // count))  # ceil: the run's concurrency spread over the actors
            try:
                workers = cls(ray, owns, recipe, count, slots, options, cpus_per_actor)
            except TypeError as exc:  # Ray could not pickle the recipe for the actors
                raise ConfigError(f"the run cannot be sent to Ray actors ({_first_line(exc)}): its knobs and "
                                  "BackendSpec must pickle (no live backends or open clients in knobs)") from None
            workers._await_ready()
        except BaseException:
            if workers is not None:
                workers.close()  # its actors, on a cluster that stays up; and a Ray started here
            elif owns:
                ray.shutdown()
            raise
        return workers

    @property
    def pids(self) -> list[int]:
        """The live actors' process ids."""
        return [a.pid for a in self._actors if a.alive and a.pid is not None]

    @property
    def count(self) -> int:
        return sum(a.alive for a in self._actors)

    def describe(self) -> dict[str, Any]:
        """What run.json records about where the run ran (information only, not identity)."""
        return {"address": self._options.address or "local", "actors": self.count,
                "cpus_per_actor": self._cpus, "n_threads": self.identity.get("n_threads"),
                "max_in_flight": self.identity.get("max_in_flight") or None}

    def _spawn(self) -> _Actor:
        actor = _Actor(self._remote.remote(self._recipe), self._spawned)
        self._spawned += 1
        self._actors.append(actor)
        return actor

    def _await_ready(self) -> None:
        ray = self._ray
        refs = [a.handle.identity.remote() for a in self._actors]
        try:
            found = ray.get(refs, timeout=self._options.startup_timeout_s)
        except ray.exceptions.GetTimeoutError:
            raise ConfigError(f"{len(refs)} Ray actors did not start within {self._options.startup_timeout_s:.0f} s "
                              "(not enough CPUs in the cluster?); pass fewer --ray-actors") from None
        except ray.exceptions.RayActorError as exc:
            raise ConfigError(f"a Ray actor failed to build the backend or graph: {_first_line(exc)}") from None
        for ident in found:
            if "broken" in ident:  # the error building the backend or graph, as a local run raises it
                raise ident["broken"]
        for actor, ident in zip(self._actors, found, strict=True):
            actor.pid = ident["pid"]
        self.identity = found[0]
        _LOG.info("Ray: %d actors (pids %s), %s CPUs each", len(found), self.pids, self._cpus)

    async def run(self, run: _Settler, todo: Sequence[Example]) -> None:
        """Every example of ``todo`` settled through ``run`` (or left unfinished when the run stops)."""
        ray = self._ray
        queue: deque[Example] = deque(todo)
        deaths: Counter[str] = Counter()
        flight: dict[asyncio.Future[Any], tuple[Example, _Actor]] = {}
        try:
            while True:
                while queue and not (run.stopped or run.fatal) and (actor := self._free()) is not None:
                    example = queue.popleft()
                    if example.id in run.written:
                        continue
                    actor.busy += 1
                    flight[asyncio.wrap_future(actor.handle.run.remote(example).future())] = (example, actor)
                if not flight:
                    if queue and not (run.stopped or run.fatal):
                        run.stopped = "every Ray actor died; rerun with --resume"
                        _LOG.error("stopping the run: %s", run.stopped)
                    return
                done, _ = await asyncio.wait(flight, return_when=asyncio.FIRST_COMPLETED)
                for future in done:
                    example, actor = flight.pop(future)
                    actor.busy -= 1
                    try:
                        outcome = future.result()
                    except ray.exceptions.RayActorError as exc:  # its process died: hand the example on
                        self._bury(actor, exc)
                        deaths[example.id] += 1
                        if deaths[example.id] >= self._options.max_attempts:
                            run._settle(Lost(example.id, f"{deaths[example.id]} Ray workers died running it",
                                             dead=False))
                        else:
                            queue.appendleft(example)
                        continue
                    except ray.exceptions.RayError as exc:  # the actor's code broke, not the example: stop
                        run.fatal = run.fatal or ConfigError(f"a Ray actor failed running example {example.id}: "
                                                             f"{_first_line(exc)}")
                        continue
                    if isinstance(outcome, Fatal):
                        run.fatal = run.fatal or outcome.error
                    elif isinstance(outcome, ExampleResult) and outcome.id in run.written:
                        _LOG.warning("example %s came back twice; the first result is kept", outcome.id)
                    else:
                        run._settle(outcome)
        finally:
            for future in flight:
                future.cancel()

    def _free(self) -> _Actor | None:
        live = [a for a in self._actors if a.alive and a.busy < self._slots]
        return min(live, key=lambda a: (a.busy, a.index)) if live else None

    def _bury(self, actor: _Actor, exc: BaseException) -> None:
        if not actor.alive:
            return
        actor.alive = False
        _LOG.warning("Ray actor %s (pid %s) died: %s; its examples go to the others", actor.index, actor.pid,
                     _first_line(exc))
        try:
            self._ray.kill(actor.handle, no_restart=True)
        except Exception:  # noqa: BLE001 - it is gone already
            pass
        if self._replacements_left > 0:
            self._replacements_left -= 1
            self._spawn()  # builds its backend while the others work; calls to it wait until it has

    def close(self) -> None:
        """Stop the actors (finished results are on disk already) and a Ray this run started."""
        for actor in self._actors:
            if actor.alive:
                try:
                    self._ray.kill(actor.handle, no_restart=True)
                except Exception:  # noqa: BLE001 - stopping what may already be gone
                    pass
                actor.alive = False
        if self._owns_ray:
            self._ray.shutdown()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
