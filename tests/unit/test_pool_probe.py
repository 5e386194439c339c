"""PoolBackend's background health probe against real local HTTP servers: an endpoint that dies while
idle is out before a request finds it, one that comes back is in again without a request, a probe
is not queued behind the generations it checks on, and aclose() leaves no task behind."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import ThreadingHTTPServer

import pytest

from agentkit import Sampling
from agentkit.backends._chat_client import RetryPolicy
from agentkit.backends.base import GenerationRequest, Message
from agentkit.backends.pool import PoolBackend
from agentkit.backends.vllm_server import VLLMServerBackend
from agentkit.errors import ConfigError
from tests.unit.fake_openai_server import FakeOpenAI, Reply

FAST = RetryPolicy(attempts=2, backoff_initial_s=0.05, backoff_max_s=0.1, jitter_s=0.0)
PROBE_TASK = "agentkit pool health probe"


@dataclass
class _FakeAt(FakeOpenAI):
    """A fake on a given port, to restart a server where the pool expects it."""

    port: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.port:
            self._server.server_close()
            self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
            self._server.daemon_threads = True
            self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)


def ask(text: str = "2+2?") -> GenerationRequest:
    return GenerationRequest(messages=(Message(role="system", content="Be brief."), Message(role="user", content=text)),
                             sampling=Sampling(max_tokens=20))  # fmt: skip


def pool(*urls: str, max_in_flight: int | None = None, **kw: object) -> PoolBackend:
    endpoints = [VLLMServerBackend(u, model="fake-model", timeout_s=5.0, max_in_flight=max_in_flight) for u in urls]
    return PoolBackend(endpoints, retry=FAST, **kw)  # type: ignore[arg-type]


async def until(condition: Callable[[], bool], within_s: float = 5.0) -> bool:
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def gets(fake: FakeOpenAI) -> int:
    return sum(1 for s in fake.seen if s.method == "GET")


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


def test_an_endpoint_killed_while_idle_is_marked_down_by_the_probe_before_any_request() -> None:
    with FakeOpenAI() as a, FakeOpenAI() as b:
        backend = pool(a.url, b.url, probe_every_s=0.05, cooldown_s=0.05)
        a_url = backend.base_urls[0]

        async def scenario() -> tuple[bool, int]:
            await backend.generate(ask())  # the probe starts with the first request
            probed = await until(lambda: gets(a) >= 1 and gets(b) >= 1)
            a.close()  # dies while idle: nothing is sent to it from here on
            marked = await until(lambda: backend.down_endpoints == [a_url])
            posts_then = len(a.posts()) + len(b.posts())
            await backend.aclose()
            return probed and marked, posts_then

        ok, posts = asyncio.run(scenario())
    assert ok, f"not marked down by the probe; down: {backend.down_endpoints}"
    assert posts == 1  # only the request that started the probe: the probe found it, not a request


def test_a_restarted_endpoint_comes_back_without_a_request() -> None:
    with FakeOpenAI() as a, FakeOpenAI() as b:
        backend = pool(a.url, b.url, probe_every_s=0.05, cooldown_s=0.05)
        a_url = backend.base_urls[0]

        async def scenario() -> tuple[bool, bool, int]:
            await backend.generate(ask())
            a.close()
            went_down = await until(lambda: backend.down_endpoints == [a_url])
            with _FakeAt(port=port_of(a.url)) as again:
                came_back = await until(lambda: backend.down_endpoints == [])
                probes = gets(again)
                await backend.aclose()
            return went_down, came_back, probes

        went_down, came_back, probes = asyncio.run(scenario())
    assert went_down and came_back, backend.down_endpoints
    assert probes >= 1  # brought back by its answer to GET /models, with no POST in between


def test_an_answer_to_the_probe_does_not_cut_a_failed_endpoints_cool_down_short() -> None:
    with FakeOpenAI(script=[Reply(status=503)]) as flaky, FakeOpenAI() as steady:
        backend = pool(flaky.url, steady.url, probe_every_s=0.05, cooldown_s=30.0)

        async def scenario() -> list[str]:
            await backend.generate(ask())  # 503 on flaky, answered by steady
            await until(lambda: gets(flaky) >= 2, within_s=2.0)  # it answers /models meanwhile
            down = backend.down_endpoints
            await backend.aclose()
            return down

        down = asyncio.run(scenario())
    assert gets(flaky) >= 2 and down == [backend.base_urls[0]]


def test_a_probe_is_not_queued_behind_the_generations_it_checks_on() -> None:
    """The endpoint's one slot is held by a 1 s generation; the probe's GETs still go out meanwhile."""
    with FakeOpenAI(default=Reply(delay_s=1.0)) as slow:
        backend = pool(slow.url, max_in_flight=1, probe_every_s=0.05)

        async def scenario() -> int:
            await backend.generate(ask("first"))  # starts the probe
            before = gets(slow)
            busy = asyncio.create_task(backend.generate(ask("second")))
            await asyncio.sleep(0.6)
            during = gets(slow) - before
            await busy
            await backend.aclose()
            return during

        during = asyncio.run(scenario())
    assert during >= 3, during
    assert backend.down_endpoints == []


def test_aclose_leaves_no_pending_task(caplog: pytest.LogCaptureFixture) -> None:
    """On a loop that is closed without asyncio.run's sweep of leftover tasks."""
    with FakeOpenAI() as a, FakeOpenAI() as b:
        backend = pool(a.url, b.url, probe_every_s=0.05)
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(backend.generate(ask()))
            # the probe, and on a slow machine the checks its round is gathering at that moment
            running = {t.get_name() if t.get_name() == PROBE_TASK else t.get_coro().__qualname__
                       for t in asyncio.all_tasks(loop)}
            loop.run_until_complete(backend.aclose())
            left = asyncio.all_tasks(loop)
        finally:
            loop.close()
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        gc.collect()
    assert running in ({PROBE_TASK}, {PROBE_TASK, "PoolBackend._check"})
    assert not left
    assert "Task was destroyed" not in caplog.text


def test_the_probe_restarts_on_each_event_loop_and_can_be_switched_off() -> None:
    with FakeOpenAI() as a:
        on = pool(a.url, probe_every_s=0.05)
        off = pool(a.url, probe_every_s=None)

        async def probes_seen(backend: PoolBackend) -> list[str]:
            await backend.generate(ask())
            names = [t.get_name() for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            await backend.aclose()
            return names

        first, second = asyncio.run(probes_seen(on)), asyncio.run(probes_seen(on))
        none = asyncio.run(probes_seen(off))
    assert first == [PROBE_TASK] and second == [PROBE_TASK] and none == []


@pytest.mark.parametrize("knobs", [{"probe_every_s": 0.0}, {"probe_timeout_s": -1.0}])
def test_probe_knobs_are_checked(knobs: dict[str, float]) -> None:
    with FakeOpenAI() as a:
        with pytest.raises(ConfigError, match=next(iter(knobs))):
            pool(a.url, **knobs)
