"""PoolBackend and the client's backpressure against real local HTTP servers (tests/unit/fake_openai_server):
affinity per graph run, immediate failover on connection errors, 5xx and timeouts, no failover on
4xx, probing back in, mixed models refused, the in-flight limit, and timeouts that neither count
the client's queue nor re-send a generation to the server that may still be running it."""

from __future__ import annotations

import asyncio
import time

import pytest

from agentkit import Sampling, stats
from agentkit.backends import make_backend
from agentkit.backends._chat_client import RetryPolicy
from agentkit.backends.base import GenerationRequest, Message
from agentkit.backends.pool import PoolBackend, prompt_key
from agentkit.backends.vllm_server import VLLMServerBackend
from agentkit.errors import BackendUnavailable, ConfigError, GenerationTimeout, ModelNotFound
from tests.unit.fake_openai_server import FakeOpenAI, Reply, closed_port_url

FAST = RetryPolicy(attempts=2, backoff_initial_s=0.05, backoff_max_s=0.1, jitter_s=0.0)


def ask(text: str = "2+2?", n: int = 1) -> GenerationRequest:
    return GenerationRequest(messages=(Message(role="system", content="Be brief."), Message(role="user", content=text)),
                             n=n, sampling=Sampling(max_tokens=20))  # fmt: skip


def pool(*urls: str, timeout_s: float = 5.0, **kw: object) -> PoolBackend:
    endpoints = [VLLMServerBackend(url, model="fake-model", timeout_s=timeout_s) for url in urls]
    return PoolBackend(endpoints, retry=FAST, **kw)  # type: ignore[arg-type]


def test_every_call_of_a_run_lands_on_one_endpoint_and_runs_spread() -> None:
    """Six concurrent runs of four calls each: each run stays on one endpoint, and both are used."""
    with FakeOpenAI(default=Reply(delay_s=0.05)) as a, FakeOpenAI(default=Reply(delay_s=0.05)) as b:
        backend = pool(a.url, b.url)

        async def one_run(i: int) -> dict[str, int]:
            with stats.collect() as run:
                for step in range(4):  # sequential calls, as DaSLaM makes them
                    await backend.generate(ask(f"run {i} step {step}"))
            return run.by_server

        per_run = asyncio.run(_gather(*(one_run(i) for i in range(6))))
    assert all(len(servers) == 1 and sum(servers.values()) == 4 for servers in per_run), per_run
    assert {url for servers in per_run for url in servers} == {backend.base_urls[0], backend.base_urls[1]}
    assert len(a.posts()) + len(b.posts()) == 24


def test_without_affinity_a_runs_sequential_calls_alternate_between_endpoints() -> None:
    """affinity=None is the round-robin baseline the affinity bench compares against."""
    with FakeOpenAI() as a, FakeOpenAI() as b:
        backend = pool(a.url, b.url, affinity=None)

        async def one_run() -> dict[str, int]:
            with stats.collect() as run:
                for step in range(4):
                    await backend.generate(ask(f"step {step}"))
            return run.by_server

        servers = asyncio.run(one_run())
    assert sorted(servers.values()) == [2, 2], servers


def test_an_unknown_affinity_name_is_refused_listing_the_choices() -> None:
    with pytest.raises(ConfigError, match="unknown affinity 'sticky'; use one of run, prompt"):
        pool("http://127.0.0.1:9/v1", affinity="sticky")


def test_prompt_affinity_keys_on_the_leading_messages() -> None:
    assert prompt_key(ask("one")) != prompt_key(ask("two"))
    same_head = GenerationRequest(messages=(*ask("one").messages, Message(role="assistant", content="x")))
    assert prompt_key(same_head) == prompt_key(ask("one"))


def test_a_refused_connection_fails_over_at_once_and_the_answer_names_its_server() -> None:
    dead = closed_port_url()
    with FakeOpenAI() as live:
        backend = pool(dead, live.url)
        start = time.monotonic()
        generation = asyncio.run(backend.generate(ask()))
        assert time.monotonic() - start < 1.0  # no backoff on the dead endpoint first
    assert generation.server == backend.base_urls[1] and len(live.posts()) == 1
    assert backend.requests_by_endpoint == {backend.base_urls[0]: 0, backend.base_urls[1]: 1}


def test_a_5xx_fails_over_and_the_endpoint_is_probed_back_in_after_its_cool_down() -> None:
    with FakeOpenAI(script=[Reply(status=503)]) as flaky, FakeOpenAI() as steady:
        backend = pool(flaky.url, steady.url, cooldown_s=0.05)
        first = asyncio.run(backend.generate(ask("first")))
        assert first.server == backend.base_urls[1]
        time.sleep(0.1)
        second = asyncio.run(backend.generate(ask("second")))  # a new run: the least used endpoint
    assert second.server == backend.base_urls[0]
    assert [s.path for s in flaky.seen if s.method == "GET"] == ["/v1/models"]  # probed before use
    assert len(flaky.posts()) == 2 and len(steady.posts()) == 1


def test_a_4xx_is_the_callers_error_and_is_not_sent_to_another_endpoint() -> None:
    body = {"error": {"message": "The model `x` does not exist."}}
    with FakeOpenAI(default=Reply(status=404, body=body)) as a, FakeOpenAI() as b:
        backend = pool(a.url, b.url)
        with pytest.raises(ModelNotFound, match="does not exist"):
            asyncio.run(backend.generate(ask()))
    assert len(a.posts()) == 1 and b.posts() == []


def test_a_timed_out_generation_goes_to_another_endpoint_never_again_to_the_first() -> None:
    with FakeOpenAI(default=Reply(delay_s=1.5)) as slow, FakeOpenAI() as fast:
        backend = pool(slow.url, fast.url, timeout_s=0.3)
        generation = asyncio.run(backend.generate(ask()))
        time.sleep(1.3)  # let the first copy finish on the slow server before counting
    assert generation.server == backend.base_urls[1]
    assert len(slow.posts()) == 1 and slow.duplicates() == 0 and len(fast.posts()) == 1


def test_a_connection_closed_with_no_answer_is_sent_once_more_to_the_same_endpoint_at_once() -> None:
    """The server closing a kept-alive connection as a request goes out is not the server failing:
    no failover, no cool-down, no backoff."""
    with FakeOpenAI(script=[Reply(drop=True)]) as first, FakeOpenAI() as second:
        backend = pool(first.url, second.url)
        start = time.monotonic()
        generation = asyncio.run(backend.generate(ask()))
        assert time.monotonic() - start < 1.0
    assert generation.server == backend.base_urls[0] and backend.down_endpoints == []
    assert len(first.posts()) == 2 and second.posts() == []  # the dropped copy, then the answered one


def test_a_second_close_with_no_answer_fails_the_endpoint_over() -> None:
    with FakeOpenAI(script=[Reply(drop=True), Reply(drop=True)]) as first, FakeOpenAI() as second:
        backend = pool(first.url, second.url)
        generation = asyncio.run(backend.generate(ask()))
    assert generation.server == backend.base_urls[1] and backend.down_endpoints == [backend.base_urls[0]]
    assert len(first.posts()) == 2 and len(second.posts()) == 1


def test_one_server_that_closes_a_connection_with_no_answer_still_answers_without_a_backoff() -> None:
    with FakeOpenAI(script=[Reply(drop=True)]) as server:
        backend = VLLMServerBackend(server.url, model="fake-model", retry=RetryPolicy(attempts=3, backoff_initial_s=2.0))
        start = time.monotonic()
        asyncio.run(backend.generate(ask()))
        assert time.monotonic() - start < 1.0  # not the retry policy's 2 s backoff
    assert len(server.posts()) == 2


def test_a_pool_whose_endpoints_all_fail_is_unavailable_naming_them() -> None:
    dead = [closed_port_url(), closed_port_url()]
    backend = pool(*dead, cooldown_s=0.01)
    with pytest.raises(BackendUnavailable, match="every endpoint of the pool failed") as info:
        asyncio.run(backend.generate(ask()))
    assert all(url in str(info.value) for url in backend.base_urls)


def test_a_pool_of_different_models_is_refused_naming_each() -> None:
    with FakeOpenAI(model="small") as a, FakeOpenAI(model="large") as b:
        with pytest.raises(ConfigError, match=r"serves 'small'.*serves 'large'.*one model"):
            PoolBackend([VLLMServerBackend(a.url), VLLMServerBackend(b.url)])


def test_make_backend_pools_repeated_urls_and_refuses_pooling_llamacpp() -> None:
    with FakeOpenAI() as a, FakeOpenAI() as b:
        backend = make_backend("vllm", base_url=[a.url, b.url])
        assert isinstance(backend, PoolBackend) and backend.model == "fake-model"
        assert len(backend.base_urls) == 2
    with pytest.raises(ConfigError, match="--base-url is for the vllm and openai backends"):
        make_backend("llamacpp", base_url=["http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1"])


def test_chat_spans_name_the_endpoint_that_answered(spans) -> None:
    from pydantic import BaseModel

    from agentkit import Agent
    from agentkit.vocab import Question

    class Answer(BaseModel):
        answer: str

    with FakeOpenAI(default=Reply(texts=['{"answer":"4"}'])) as live:
        backend = pool(closed_port_url(), live.url)
        agent = Agent("solver", instructions="Answer.", input_type=Question, output_type=Answer, backend=backend)
        asyncio.run(agent.arun(Question(question="2+2?")))
    (chat,) = [s for s in spans.get_finished_spans() if s.name.startswith("chat ")]
    port = int(backend.base_urls[1].rsplit(":", 1)[1].split("/")[0])
    assert chat.attributes["server.address"] == "127.0.0.1" and chat.attributes["server.port"] == port


# -- one endpoint: backpressure ---------------------------------------------------------------------


def test_the_in_flight_limit_queues_in_the_client_and_counts_samples() -> None:
    with FakeOpenAI(default=Reply(delay_s=0.1)) as fake:
        backend = VLLMServerBackend(fake.url, model="m", max_in_flight=4)
        asyncio.run(_gather(*(backend.generate(ask(f"q{i}")) for i in range(8))))
        assert len(fake.posts()) == 8 and fake.max_in_flight <= 4
        asyncio.run(_gather(*(backend.generate(ask(f"n{i}", n=2)) for i in range(6))))  # 2 sequences each
        assert fake.max_in_flight <= 4 and backend.in_flight == 0


def test_the_timeout_measures_the_server_not_the_clients_queue() -> None:
    """Six requests of 0.25 s, one at a time, take 1.5 s against a 0.6 s timeout: none times out."""
    with FakeOpenAI(default=Reply(delay_s=0.25)) as fake:
        backend = VLLMServerBackend(fake.url, model="m", max_in_flight=1, timeout_s=0.6)
        generations = asyncio.run(_gather(*(backend.generate(ask(f"q{i}")) for i in range(6))))
    assert len(generations) == 6 and fake.max_in_flight == 1 and fake.duplicates() == 0


def test_twice_the_servers_capacity_finishes_everything_without_a_duplicate() -> None:
    """A server that generates 2 at a time, 8 concurrent requests, a client limit matching it."""
    with FakeOpenAI(default=Reply(delay_s=0.1), capacity=2) as fake:
        backend = VLLMServerBackend(fake.url, model="m", max_in_flight=2, timeout_s=1.0)
        generations = asyncio.run(_gather(*(backend.generate(ask(f"q{i}")) for i in range(8))))
    assert len(generations) == 8 and len(fake.posts()) == 8 and fake.duplicates() == 0


def test_a_timed_out_generation_is_not_sent_again_to_the_same_server() -> None:
    with FakeOpenAI(default=Reply(delay_s=1.0)) as fake:
        backend = VLLMServerBackend(fake.url, model="m", timeout_s=0.2, retry=FAST)
        with pytest.raises(GenerationTimeout, match="may still be generating"):
            asyncio.run(backend.generate(ask()))
        time.sleep(0.9)
    assert len(fake.posts()) == 1


async def _gather(*coros):  # type: ignore[no-untyped-def]
    return await asyncio.gather(*coros)


def test_the_cli_pools_a_repeated_base_url(tmp_path) -> None:
    from typer.testing import CliRunner

    from agentkit.cli import app

    reply = Reply(delay_s=0.2, texts=['{"answer":"4"}'])
    with FakeOpenAI(default=reply) as a, FakeOpenAI(default=reply) as b:
        r = CliRunner().invoke(app, ["eval", "direct", "--dataset", "gsm8k", "--limit", "4", "--concurrency", "4",
                                     "--backend", "vllm", "--base-url", a.url, "--base-url", b.url,
                                     "--out", str(tmp_path / "run")])  # fmt: skip
        assert r.exit_code == 0, r.output
    assert len(a.posts()) + len(b.posts()) == 4 and a.posts() and b.posts()
