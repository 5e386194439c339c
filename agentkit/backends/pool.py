"""One backend over several OpenAI-compatible endpoints serving the same model (vLLM replicas).

Routing keeps a graph run on one endpoint: DaSLaM's sequential calls and a MAJ panel's parallel
judges share a long prompt prefix, and only the server that saw it first has it in its prefix
cache; a round-robin router would make every replica prefill it again. So each request carries an
affinity key (by default its graph run's id, ``stats.RunStats.run_id``; or a hash of its leading
messages) and goes where that key went before while that endpoint is up and has room (or while no
other endpoint has room either: moving then would only lose the cache); otherwise, and for a new
key, to the endpoint with the least work routed to it and not yet answered, counting what queues
in the client for an in-flight slot: counting only what is at the server would pile every queued
request onto one endpoint while another's slots free up with nothing waiting for them.

Failures: a connection error, a 5xx or a generation timeout marks the endpoint down, and the
request goes at once to another one, without the caller's retry budget (each endpoint retries
nothing itself). Health is also checked in the background: every ``probe_every_s`` a task GETs
/models on every endpoint, so a server that died while idle is out before a request finds it, and
one that came back is in again before a request tries it. The task starts with the first request
(a constructor has no running loop to put it on) and ``aclose()`` cancels it. A down endpoint a
request finds past its cool-down is still probed first, for pools with the background probe off
(``probe_every_s=None``). A 4xx (a bad schema, an unknown model) is the caller's error and is raised
as it is: every replica would say the same.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from agentkit import stats
from agentkit.backends._chat_client import RetryPolicy
from agentkit.backends.base import Generation, GenerationRequest
from agentkit.backends.openai_compat import OpenAICompatibleBackend
from agentkit.errors import BackendUnavailable, ConfigError, GenerationTimeout, TransientBackendError

_log = logging.getLogger(__name__)

AffinityKey = Callable[[GenerationRequest], str]
#: an endpoint's own retries: none, so a failure moves the request to another endpoint at once
NO_RETRY = RetryPolicy(attempts=1)
#: remembered affinity keys (oldest forgotten first): one per recent graph run
_MAX_KEYS = 65536


def server_endpoints(backend: object) -> list[OpenAICompatibleBackend]:
    """The HTTP endpoints behind a backend: a pool's, a server backend itself, or none (llama.cpp)."""
    if isinstance(backend, PoolBackend):
        return backend.endpoints
    return [backend] if isinstance(backend, OpenAICompatibleBackend) else []


def run_key(request: GenerationRequest) -> str:
    """The graph run the request belongs to; outside any run, its leading messages."""
    run = stats.current()
    return run.run_id if run is not None else prompt_key(request)


def prompt_key(request: GenerationRequest) -> str:
    """A hash of the system message and the first turn: requests that share them share a prefix."""
    head = "\x00".join(m.content for m in request.messages[:2])
    return hashlib.sha256(head.encode()).hexdigest()[:16]


_KEYS: dict[str, AffinityKey] = {"run": run_key, "prompt": prompt_key}


@dataclass
class _Endpoint:
    backend: OpenAICompatibleBackend
    down_until: float = 0.0  #: monotonic time before which it is not tried (0: up)
    failures: int = 0
    requests: int = 0  #: requests it answered
    last_error: str = ""
    pending: int = 0  #: sequences routed here and not yet answered: queued in the client or at the server

    @property
    def url(self) -> str:
        return self.backend.base_url

    @property
    def full(self) -> bool:
        limit = self.backend.max_in_flight
        return limit is not None and self.pending >= limit

    @property
    def load(self) -> float:
        """Pending sequences per in-flight slot (endpoints may differ in their limit)."""
        limit = self.backend.max_in_flight
        return self.pending / limit if limit else float(self.pending)


class PoolBackend:
    """``endpoints``: backends of one model, one per server (the pool sets their own ``retry`` to
    NO_RETRY: a failed request moves to another server instead of waiting on the same one).
    ``affinity``: "run", "prompt", a function of the request, or None (no affinity: each request
    goes to the least loaded endpoint, which spreads a run's calls round-robin and loses its
    prefixes). ``cooldown_s``: how long a failed endpoint rests before it is probed.
    ``retry.attempts``: passes over the whole pool before giving up, with its backoff between passes.
    ``probe_every_s``: seconds between background health probes of every endpoint (None: none, a
    down endpoint is then probed only when a request needs it); ``probe_timeout_s``: how long a
    probe waits for GET /models before the endpoint counts as down."""

    def __init__(self, endpoints: Sequence[OpenAICompatibleBackend], *,
                 affinity: Literal["run", "prompt"] | AffinityKey | None = "run", cooldown_s: float = 5.0,
                 retry: RetryPolicy | None = None, probe_every_s: float | None = 5.0,
                 probe_timeout_s: float = 5.0) -> None:
        if probe_every_s is not None and probe_every_s <= 0:
            raise ConfigError(f"probe_every_s must be > 0 (or None for no background probe), got {probe_every_s}")
        if probe_timeout_s <= 0:
            raise ConfigError(f"probe_timeout_s must be > 0, got {probe_timeout_s}")
        if not endpoints:
            raise ConfigError("a pool needs at least one endpoint; pass --base-url once per server")
        urls = [e.base_url for e in endpoints]
        if len(set(urls)) != len(urls):
            raise ConfigError(f"a pool lists an endpoint twice: {urls}")
        models = {e.base_url: e.model for e in endpoints}
        if len(set(models.values())) > 1:
            listed = ", ".join(f"{url} serves {model!r}" for url, model in models.items())
            raise ConfigError(f"the pool's endpoints serve different models ({listed}); the samples of one run must "
                              "come from one model: pool only replicas of the same model")
        for endpoint in endpoints:
            endpoint.retry = NO_RETRY
        self._endpoints = [_Endpoint(e) for e in endpoints]
        if isinstance(affinity, str) and affinity not in _KEYS:
            raise ConfigError(f"unknown affinity {affinity!r}; use one of {', '.join(_KEYS)}, a function of the "
                              "request, or None")
        self._key = _KEYS[affinity] if isinstance(affinity, str) else affinity
        self._sticky: OrderedDict[str, _Endpoint] = OrderedDict()
        self.cooldown_s = cooldown_s
        self.retry = retry or RetryPolicy()
        self.provider = endpoints[0].provider
        self.model = endpoints[0].model
        self.probe_every_s = probe_every_s
        self.probe_timeout_s = probe_timeout_s
        #: the background probe of each event loop the pool is used from (tasks belong to a loop)
        self._probers: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}

    @property
    def base_urls(self) -> list[str]:
        return [e.url for e in self._endpoints]

    @property
    def endpoints(self) -> list[OpenAICompatibleBackend]:
        return [e.backend for e in self._endpoints]

    @property
    def requests_by_endpoint(self) -> dict[str, int]:
        return {e.url: e.requests for e in self._endpoints}

    @property
    def down_endpoints(self) -> list[str]:
        """Endpoints that last failed a request or a probe and have not answered since."""
        return [e.url for e in self._endpoints if e.failures]

    async def generate(self, request: GenerationRequest) -> Generation:
        self._start_probe()
        key = self._key(request) if self._key is not None else None
        failures: list[str] = []
        for round_ in range(self.retry.attempts):
            tried: set[str] = set()
            while (endpoint := await self._choose(key, tried)) is not None:
                tried.add(endpoint.url)
                endpoint.pending += request.n
                try:
                    generation = await endpoint.backend.generate(request)
                except (TransientBackendError, BackendUnavailable, GenerationTimeout) as exc:
                    self._mark_down(endpoint, exc)
                    failures.append(f"{endpoint.url}: {exc}")
                    continue  # at once, to the next endpoint
                finally:
                    endpoint.pending -= request.n
                endpoint.requests += 1
                endpoint.failures = 0
                run = stats.current()
                if run is not None:
                    run.record_server(endpoint.url)
                return generation
            if round_ + 1 < self.retry.attempts:  # every endpoint is down: back off, then probe again
                await asyncio.sleep(min(self.retry.backoff_max_s, self.retry.backoff_initial_s * 2**round_))
        last = "; ".join(failures[-len(self._endpoints):]) or "none was up"
        raise BackendUnavailable(f"every endpoint of the pool failed ({self.retry.attempts} rounds): {last}; "
                                 "are the servers running?")

    async def _choose(self, key: str | None, tried: set[str]) -> _Endpoint | None:
        """The key's endpoint if it is up and has room (or none has), else the least loaded one that
        is up (a down one whose cool-down has ended is probed first); None when none is left to try."""
        now = time.monotonic()
        candidates = [e for e in self._endpoints if e.url not in tried and e.down_until <= now]
        if not candidates:
            return None
        up = [e for e in candidates if e.failures == 0 or await self._probe(e)]
        if not up:
            return None
        least = min(up, key=lambda e: (e.full, e.load, e.requests))
        if key is None:
            return least
        sticky = self._sticky.get(key)
        if sticky is not None and sticky in up and (not sticky.full or least.full):
            self._sticky.move_to_end(key)
            return sticky
        chosen = least
        self._sticky[key] = chosen
        self._sticky.move_to_end(key)
        while len(self._sticky) > _MAX_KEYS:
            self._sticky.popitem(last=False)
        return chosen

    async def _probe(self, endpoint: _Endpoint) -> bool:
        """GET /models on an endpoint that failed before; it is back in if it answers. (Requests
        routed at the same moment may each probe it: a few GETs, no lock to tie to one loop.)"""
        try:
            await endpoint.backend.probe(timeout_s=self.probe_timeout_s)
        except Exception as exc:  # noqa: BLE001 - any failure keeps it down
            self._mark_down(endpoint, exc)
            return False
        _log.warning("pool endpoint %s is back", endpoint.url)
        endpoint.failures = 0
        return True

    def _start_probe(self) -> None:
        """Start this loop's background probe unless it runs already. Its context is empty, so the
        probe's GETs carry no caller's span or run."""
        if self.probe_every_s is None:
            return
        loop = asyncio.get_running_loop()
        task = self._probers.get(loop)
        if task is not None and not task.done():
            return
        for old in [lp for lp in self._probers if lp.is_closed()]:
            del self._probers[old]
        self._probers[loop] = loop.create_task(self._probe_forever(), name="agentkit pool health probe",
                                               context=contextvars.Context())

    async def _probe_forever(self) -> None:
        assert self.probe_every_s is not None
        while True:
            await asyncio.sleep(self.probe_every_s)
            await asyncio.gather(*(self._check(e) for e in self._endpoints))

    async def _check(self, endpoint: _Endpoint) -> None:
        """One background probe: a failure marks the endpoint down (it may have died idle); an answer
        brings a down endpoint back once its cool-down has ended (a request's 5xx is not forgiven
        the moment /models answers: that part of a server often outlives its engine)."""
        try:
            await endpoint.backend.probe(timeout_s=self.probe_timeout_s)
        except Exception as exc:  # noqa: BLE001 - any failure counts against the endpoint
            self._mark_down(endpoint, exc)
            return
        if endpoint.failures and endpoint.down_until <= time.monotonic():
            _log.warning("pool endpoint %s is back (background probe)", endpoint.url)
            endpoint.failures = 0
            endpoint.down_until = 0.0

    def _mark_down(self, endpoint: _Endpoint, exc: BaseException) -> None:
        was_up = endpoint.failures == 0
        endpoint.failures += 1
        endpoint.last_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        endpoint.down_until = time.monotonic() + self.cooldown_s
        # a dead server fails every probe: say so when it goes down, not every few seconds after
        _log.log(logging.WARNING if was_up else logging.DEBUG, "pool endpoint %s is down (%s)", endpoint.url,
                 endpoint.last_error)

    async def aclose(self) -> None:
        """Stop the background probes, then close every endpoint's connections."""
        await self._stop_probes()
        for endpoint in self._endpoints:
            await endpoint.backend.aclose()

    async def _stop_probes(self) -> None:
        current = asyncio.get_running_loop()
        probers, self._probers = self._probers, {}
        mine = [task for loop, task in probers.items() if loop is current]
        for loop, task in probers.items():
            if loop is not current and not loop.is_closed():
                loop.call_soon_threadsafe(task.cancel)  # another thread's loop: it ends there
        for task in mine:
            task.cancel()
        if mine:
            await asyncio.wait(mine)  # not gather: our caller's own cancellation must not be swallowed
