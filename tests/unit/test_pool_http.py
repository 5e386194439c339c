"""The chat client's connections: spread over small httpx clients (httpcore's pool costs CPU quadratic
in its connections), never more than max_connections in all, without capping concurrency below it."""

from __future__ import annotations

import asyncio
from http.server import ThreadingHTTPServer

import pytest

from agentkit import Sampling
from agentkit.backends._http_shards import SHARD_CONNECTIONS, HTTPShards
from agentkit.backends.base import GenerationRequest, Message
from agentkit.backends.vllm_server import VLLMServerBackend
from tests.unit.fake_openai_server import FakeOpenAI, Reply


class _Client:
    def __init__(self, connections: int) -> None:
        self.connections = connections
        self.is_closed = False

    async def aclose(self) -> None:
        self.is_closed = True


def ask(text: str) -> GenerationRequest:
    return GenerationRequest(messages=(Message(role="user", content=text),), sampling=Sampling(max_tokens=5))


def test_a_new_client_only_when_every_connection_is_busy_and_never_past_the_limit() -> None:
    made: list[_Client] = []

    def make(connections: int) -> _Client:
        made.append(_Client(connections))
        return made[-1]

    shards = HTTPShards(make, max_connections=40)  # type: ignore[arg-type]
    taken = [shards.take() for _ in range(SHARD_CONNECTIONS)]
    assert set(taken) == {0} and len(made) == 1
    taken += [shards.take() for _ in range(40 - SHARD_CONNECTIONS)]
    assert [c.connections for c in made] == [SHARD_CONNECTIONS, SHARD_CONNECTIONS, 40 - 2 * SHARD_CONNECTIONS]
    assert all(taken.count(i) == c.connections for i, c in enumerate(made))
    shards.take()  # past the limit: queued in an existing client, no new one
    assert len(made) == 3
    for index in taken[:SHARD_CONNECTIONS]:
        shards.give(index)
    assert shards.take() == 0  # the one with free connections


def test_aclose_closes_every_client_and_late_answers_are_harmless() -> None:
    made: list[_Client] = []

    def make(connections: int) -> _Client:
        made.append(_Client(connections))
        return made[-1]

    shards = HTTPShards(make, max_connections=64)  # type: ignore[arg-type]
    indices = [shards.take() for _ in range(40)]
    asyncio.run(shards.aclose())
    assert len(made) == 3 and all(c.is_closed for c in made) and shards.closed
    for index in indices:  # requests that were under way finish after the close
        shards.give(index)


def test_concurrency_is_not_capped_below_max_connections_and_is_capped_at_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ThreadingHTTPServer, "request_queue_size", 128)  # a listen backlog of 5 resets bursts
    with FakeOpenAI(default=Reply(delay_s=0.3)) as fake:
        wide = VLLMServerBackend(fake.url, model="m", max_connections=256, max_in_flight=None)

        async def burst(backend: VLLMServerBackend, count: int) -> None:
            await asyncio.gather(*(backend.generate(ask(f"q{i}")) for i in range(count)))
            await backend.aclose()

        asyncio.run(burst(wide, 40))
        assert fake.max_in_flight == 40 and len(fake.posts()) == 40
        fake.max_in_flight = 0
        narrow = VLLMServerBackend(fake.url, model="m", max_connections=20, max_in_flight=None)
        asyncio.run(burst(narrow, 40))
    assert fake.max_in_flight == 20 and len(fake.posts()) == 80
