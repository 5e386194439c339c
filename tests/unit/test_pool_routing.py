"""PoolBackend's routing under load, against real local HTTP servers: requests queued in the client
for an in-flight slot count towards an endpoint's load (so queues spread over the pool), and a run
stays on its endpoint when every endpoint is full (moving would lose its prefix cache for nothing)."""

from __future__ import annotations

import asyncio

from agentkit import Sampling, stats
from agentkit.backends._chat_client import RetryPolicy
from agentkit.backends.base import GenerationRequest, Message
from agentkit.backends.pool import PoolBackend
from agentkit.backends.vllm_server import VLLMServerBackend
from tests.unit.fake_openai_server import FakeOpenAI, Reply

FAST = RetryPolicy(attempts=2, backoff_initial_s=0.05, backoff_max_s=0.1, jitter_s=0.0)


def ask(text: str) -> GenerationRequest:
    return GenerationRequest(messages=(Message(role="system", content="Be brief."), Message(role="user", content=text)),
                             sampling=Sampling(max_tokens=20))  # fmt: skip


def pool(*urls: str, max_in_flight: int) -> PoolBackend:
    endpoints = [VLLMServerBackend(u, model="fake-model", timeout_s=5.0, max_in_flight=max_in_flight) for u in urls]
    return PoolBackend(endpoints, affinity="prompt", retry=FAST, probe_every_s=None)


def test_requests_queued_in_the_client_spread_over_the_pool() -> None:
    """Eight new prompts at once, one slot per endpoint: four queue behind each, not six behind one."""
    with FakeOpenAI(default=Reply(delay_s=0.15)) as a, FakeOpenAI(default=Reply(delay_s=0.15)) as b:
        backend = pool(a.url, b.url, max_in_flight=1)

        async def burst() -> None:
            await asyncio.gather(*(backend.generate(ask(f"q{i}")) for i in range(8)))
            await backend.aclose()

        asyncio.run(burst())
    assert (len(a.posts()), len(b.posts())) == (4, 4)
    assert a.max_in_flight == 1 and b.max_in_flight == 1


def test_a_run_stays_on_its_endpoint_when_every_endpoint_is_full() -> None:
    with FakeOpenAI(default=Reply(delay_s=0.6)) as a, FakeOpenAI(default=Reply(delay_s=0.6)) as b:
        backend = VLLMServerBackend(a.url, model="fake-model", max_in_flight=1)
        backend_b = VLLMServerBackend(b.url, model="fake-model", max_in_flight=1)
        p = PoolBackend([backend, backend_b], retry=FAST, probe_every_s=None)

        async def scenario() -> dict[str, int]:
            with stats.collect() as run:
                await p.generate(ask("run step 1"))  # an idle pool: the first endpoint
                first = run.by_server.copy()
            with stats.collect():  # other runs fill both endpoints
                others = [asyncio.create_task(p.generate(ask(f"other {i}"))) for i in range(2)]
                await asyncio.sleep(0.1)
            with stats.collect() as again:
                again.run_id = run.run_id  # the same graph run, its second call
                await p.generate(ask("run step 2"))
            await asyncio.gather(*others)
            await p.aclose()
            return {**first, **{k: first.get(k, 0) + v for k, v in again.by_server.items()}}

        servers = asyncio.run(scenario())
    assert len(servers) == 1 and sum(servers.values()) == 2, servers
