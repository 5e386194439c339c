"""Transport for OpenAI-compatible servers: async HTTP with timeouts, retries and trace propagation.

Formatting lives in ``_openai_format``; this module only moves JSON. Why each piece is here:
- httpx clients per event loop: a client is bound to the loop that created it, and agentkit is
  driven from several (``asyncio.run`` per CLI call, per test, per sync ``invoke``); each loop's
  connections are spread over small clients (``_http_shards``: httpcore's pool costs CPU quadratic
  in its connections); all share one TLS context, whose CA bundle costs ~50 ms of CPU to load;
- tenacity retries connection errors, timeouts and 5xx/429 with exponential backoff, then raises
  ``BackendUnavailable`` naming the URL, so a dead server ends a run in bounded time (a policy of
  one attempt, as a pool's endpoints have, skips tenacity altogether);
- the W3C ``traceparent`` header of the current span goes with every request, so the server's
  own spans (vLLM can export OTLP) join the agent's trace;
- backpressure: at most ``max_in_flight`` requests are at the server at once and the rest queue
  here, so the server's own queue stays short and ``timeout_s`` (which starts once a request is
  sent, not while it queues here) measures a stalled server rather than a long queue. A POST
  whose answer does not come in time is never sent again to this server: the first copy may
  still be running there (``GenerationTimeout``; a pool tries another endpoint).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
import time
from collections.abc import Callable
from typing import Any

import httpx
from opentelemetry import propagate
from pydantic import BaseModel, ConfigDict, Field
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from agentkit.backends._capacity import Capacity
from agentkit.backends._http_shards import HTTPShards
from agentkit.errors import (
    AgentkitError,
    BackendError,
    BackendUnavailable,
    ConfigError,
    GenerationTimeout,
    TransientBackendError,
)

_log = logging.getLogger(__name__)

ErrorMapper = Callable[[int, str], AgentkitError]


class RetryPolicy(BaseModel):
    """Retries inside a backend. Worst-case time to BackendUnavailable is about
    attempts x timeout + the backoff sleeps (initial x 2^i, capped at backoff_max_s, plus jitter)."""

    model_config = ConfigDict(frozen=True)
    attempts: int = Field(4, ge=1)
    backoff_initial_s: float = Field(0.5, ge=0)
    backoff_max_s: float = Field(8.0, ge=0)
    jitter_s: float = Field(0.25, ge=0)


def normalize_base_url(base_url: str) -> str:
    """Accept ``http://host:8000`` or ``http://host:8000/v1``; return the API root ending in /vN."""
    url = base_url.strip().rstrip("/")
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigError(f"--base-url {base_url!r} is not an http(s) URL; pass e.g. http://127.0.0.1:8000/v1")
    last = parsed.path.rsplit("/", 1)[-1]
    if not (len(last) >= 2 and last[0] == "v" and last[1:].isdigit()):
        url += "/v1"
    return url


class ChatClient:
    """JSON over HTTP to one API root, safe to share between coroutines and event loops."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 300.0,
        connect_timeout_s: float = 5.0,
        retry: RetryPolicy | None = None,
        max_connections: int = 256,
        max_in_flight: int | None = None,
    ) -> None:
        """``max_in_flight``: sequences at the server at once, a request for n samples counting n
        (vLLM's ``--max-num-seqs``); None sets no limit beyond ``max_connections``."""
        if max_in_flight is not None and max_in_flight < 1:
            raise ConfigError(f"max_in_flight must be >= 1 (or None for no limit), got {max_in_flight}")
        self.base_url = normalize_base_url(base_url)
        self.timeout_s = timeout_s
        self.max_in_flight = max_in_flight
        self.retry = retry or RetryPolicy()
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = httpx.Timeout(timeout_s, connect=connect_timeout_s)
        self._max_connections = max_connections
        self._clients: dict[asyncio.AbstractEventLoop, HTTPShards] = {}
        self._slots: dict[asyncio.AbstractEventLoop, Capacity] = {}
        self.in_flight = 0  #: sequences sent and not yet answered (all loops)

    def set_max_in_flight(self, limit: int | None) -> None:
        if limit is not None and limit < 1:
            raise ConfigError(f"max_in_flight must be >= 1 (or None for no limit), got {limit}")
        if any(slots.used or slots.queued for slots in self._slots.values()):
            raise ConfigError("max_in_flight cannot change while requests are in flight; set it before the first")
        self.max_in_flight = limit
        self._slots.clear()

    def set_timeout(self, timeout_s: float) -> None:
        if timeout_s <= 0:
            raise ConfigError(f"timeout_s must be > 0 seconds, got {timeout_s:g}")
        if self._clients:
            raise ConfigError("timeout_s cannot change once requests were sent; set it before the first")
        self.timeout_s = timeout_s
        self._timeout = httpx.Timeout(timeout_s, connect=self._timeout.connect)

    def _connections(self) -> HTTPShards:
        loop = asyncio.get_running_loop()
        for old in [lp for lp in self._clients if lp.is_closed()]:  # pools of finished loops are dead
            del self._clients[old]
        shards = self._clients.get(loop)
        if shards is None or shards.closed:
            shards = self._clients[loop] = HTTPShards(self._new_client, self._max_connections)
        return shards

    def _new_client(self, connections: int) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        return httpx.AsyncClient(headers=self._headers, timeout=self._timeout, limits=limits, verify=_tls_context())

    async def aclose(self) -> None:
        """Close the connection pool of the running loop (pools of finished loops are dropped)."""
        shards = self._clients.pop(asyncio.get_running_loop(), None)
        if shards is not None:
            await shards.aclose()

    async def post_json(self, path: str, body: dict[str, Any], errors: ErrorMapper) -> Any:
        return await self._with_retries("POST", path, body, errors)

    def _slot(self) -> Capacity | None:
        """This loop's in-flight limit (its waiters are futures of the loop that made them)."""
        if self.max_in_flight is None:
            return None
        loop = asyncio.get_running_loop()
        for old in [lp for lp in self._slots if lp.is_closed()]:
            del self._slots[old]
        return self._slots.setdefault(loop, Capacity(self.max_in_flight))
    async def get_json(self, path: str, errors: ErrorMapper) -> Any:
        return await self._with_retries("GET", path, None, errors)

    async def get_once(self, path: str, errors: ErrorMapper, *, timeout_s: float | None = None) -> Any:
        """One GET, no retries (a health probe wants the answer now, not after backoff); ``timeout_s``
        bounds the whole call (a probe must not wait the generation timeout)."""
        return await self._once("GET", f"{self.base_url}{path}", None, errors, timeout_s=timeout_s)

    def get_json_sync(self, path: str, errors: ErrorMapper) -> Any:
        """For constructors (model discovery) that run outside any event loop."""

        async def once() -> Any:
            try:
                return await self.get_json(path, errors)
            finally:
                await self.aclose()

        if not _loop_running():
            return asyncio.run(once())
        import concurrent.futures

        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, once()).result()

    async def _with_retries(self, method: str, path: str, body: dict[str, Any] | None, errors: ErrorMapper) -> Any:
        url = f"{self.base_url}{path}"
        policy = self.retry
        if policy.attempts == 1:  # a pool's endpoints: nothing to retry, so no retry machinery per call
            start = time.monotonic()
            try:
                return await self._once(method, url, body, errors)
            except TransientBackendError as exc:
                raise _unavailable(url, 1, start, exc) from exc
        retrying = AsyncRetrying(
            stop=stop_after_attempt(policy.attempts),
            wait=wait_exponential_jitter(
                multiplier=policy.backoff_initial_s, max=policy.backoff_max_s, jitter=policy.jitter_s
            ),
            retry=retry_if_exception_type(TransientBackendError),
            before_sleep=lambda state: _log.warning(
                "%s %s failed (attempt %d/%d): %s; retrying",
                method,
                url,
                state.attempt_number,
                policy.attempts,
                state.outcome.exception() if state.outcome else "?",
            ),
        )
        start = time.monotonic()
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._once(method, url, body, errors)
        except RetryError as exc:
            last = exc.last_attempt.exception()
            raise _unavailable(url, policy.attempts, start, last) from last
        raise AssertionError("unreachable")  # pragma: no cover

    async def _once(self, method: str, url: str, body: dict[str, Any] | None, errors: ErrorMapper, *,
                    timeout_s: float | None = None) -> Any:
        headers: dict[str, str] = {}
        propagate.inject(headers)  # traceparent (and baggage) of the current span, if any
        # only a generation holds sequences at the server (n samples hold n); a GET /models takes no
        # slot, so a health probe is not queued behind the generations it is checking on
        slot = self._slot() if body is not None else None
        weight = int(body.get("n", 1)) if body is not None else 0
        if slot is not None:
            weight = await slot.acquire(weight)  # queued here, not at the server; no timeout runs yet
        self.in_flight += weight
        timeout = httpx.Timeout(timeout_s) if timeout_s is not None else httpx.USE_CLIENT_DEFAULT
        connections = self._connections()
        shard = connections.take()
        try:
            client = connections.client(shard)
            try:
                response = await client.request(method, url, json=body, headers=headers, timeout=timeout)
            except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
                # the connection closed with no answer: most often a kept-alive connection the server
                # closed as the request went out. Once, at once, on another connection, before this
                # counts as the server failing (a pool's cool-down, the retry policy's backoff); a
                # server that is really gone refuses the second try too.
                _log.info("%s %s: connection closed with no answer (%s); sending it once more", method, url,
                          type(exc).__name__)
                response = await client.request(method, url, json=body, headers=headers, timeout=timeout)
        except httpx.ReadTimeout as exc:
            if method != "POST":
                raise TransientBackendError(f"{method} {url} timed out ({type(exc).__name__})") from exc
            raise GenerationTimeout(
                f"{method} {url} sent no answer within {self.timeout_s:g}s; it may still be generating, so it is "
                "not sent to this server again. Lower the concurrency (max_in_flight) or raise timeout_s "
                "(agentkit eval --request-timeout)"
            ) from exc
        except httpx.TimeoutException as exc:  # connect, write or pool timeouts: the server never took it
            raise TransientBackendError(f"{method} {url} timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:  # refused, reset, DNS, protocol errors
            raise TransientBackendError(f"{method} {url} failed: {type(exc).__name__}: {exc}") from exc
        finally:
            connections.give(shard)
            self.in_flight -= weight
            if slot is not None:
                slot.release(weight)
        if response.status_code >= 400:
            raise errors(response.status_code, response.text)
        try:
            return response.json()
        except ValueError:
            raise BackendError(f"{url} answered HTTP {response.status_code} with a body that is not JSON") from None


def _unavailable(url: str, attempts: int, start: float, last: BaseException | None) -> BackendUnavailable:
    return BackendUnavailable(f"{url} unavailable after {attempts} attempts in {time.monotonic() - start:.1f}s: "
                              f"{last}; is the server running (e.g. `agentkit serve vllm`)?")


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context for the process (httpx's default verification, trust_env included): building
    one loads the CA bundle, ~50 ms of CPU, and a client is made per endpoint and per event loop,
    so every sync call or CLI run would otherwise pay it again. An SSLContext is safe to share."""
    return httpx.create_ssl_context()


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
