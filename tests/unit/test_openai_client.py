"""Client mechanics of the vLLM-server and OpenAI backends against a real local HTTP server:
one request per n, retries with backoff, BackendUnavailable naming the URL in bounded time,
traceparent propagation, typed errors when the endpoint rejects a constraint."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

from agentkit import Agent, Sampling
from agentkit.backends import make_backend
from agentkit.backends._chat_client import RetryPolicy, normalize_base_url
from agentkit.backends.base import GenerationRequest, Message, OutputConstraint
from agentkit.backends.openai_compat import OpenAIBackend, OpenAICompatibleBackend
from agentkit.backends.vllm_server import VLLMServerBackend
from agentkit.cli import app
from agentkit.errors import BackendError, BackendUnavailable, ConfigError, GenerationTimeout, UnsupportedConstraint
from tests.unit.fake_openai_server import FakeOpenAI, Reply, closed_port_url

FAST = RetryPolicy(attempts=3, backoff_initial_s=0.05, backoff_max_s=0.2, jitter_s=0.0)


class Answer(BaseModel):
    answer: str


def ask(n: int = 1, seed: int | None = None) -> GenerationRequest:
    return GenerationRequest(
        messages=(Message(role="user", content="2+2?"),), n=n, sampling=Sampling(max_tokens=20, seed=seed)
    )


def test_base_url_is_normalised_to_the_api_root() -> None:
    assert normalize_base_url("http://h:8000") == "http://h:8000/v1"
    assert normalize_base_url("http://h:8000/v1/") == "http://h:8000/v1"
    assert normalize_base_url("https://api.example.com/openai/v2") == "https://api.example.com/openai/v2"
    with pytest.raises(ConfigError, match="not an http"):
        normalize_base_url("localhost:8000")


def test_model_is_discovered_from_the_server() -> None:
    with FakeOpenAI(model="smollm2") as fake:
        backend = VLLMServerBackend(fake.url)
        assert backend.model == "smollm2"
        assert [s.path for s in fake.seen] == ["/v1/models"]


def test_agent_samples_arrive_as_one_request_with_n() -> None:
    with FakeOpenAI() as fake:
        backend = VLLMServerBackend(fake.url, model="m", retry=FAST)
        agent = Agent(
            "solve", instructions="Answer.", output_type=Answer, n=5, sampling=Sampling(temperature=0.7, seed=3)
        )
        result = agent.run(Answer(answer="q"), backend=backend)
        assert len(result.outputs) == 5
        posts = fake.posts()
        assert len(posts) == 1
        assert posts[0].path == "/v1/chat/completions"
        assert posts[0].body["n"] == 5 and posts[0].body["seed"] == 3
        assert posts[0].body["response_format"]["json_schema"]["schema"]["x-guidance"]["whitespace_flexible"] is False
        assert (result.usage.input_tokens, result.usage.cached_tokens) == (8, 32)


def test_greedy_samples_are_decoded_once_and_repeated() -> None:
    # vLLM rejects n > 1 at temperature 0; n greedy samples are one decode, repeated
    with FakeOpenAI(default=Reply(texts=['{"answer":"4"}'])) as fake:
        backend = VLLMServerBackend(fake.url, model="m")
        gen = asyncio.run(backend.generate(ask(n=3)))
        assert [c.text for c in gen.choices] == ['{"answer":"4"}'] * 3
        assert [p.body["n"] for p in fake.posts()] == [1]
        assert gen.usage.output_tokens == 7  # one decode's tokens, not three


def test_transient_failures_are_retried_then_succeed() -> None:
    script = [Reply(status=503), Reply(status=500, body={"error": {"message": "EngineCore encountered an issue"}})]
    with FakeOpenAI(script=script) as fake:
        backend = VLLMServerBackend(fake.url, model="m", retry=FAST)
        gen = asyncio.run(backend.generate(ask(n=2)))
        assert len(gen.choices) == 2
        assert len(fake.posts()) == 3


def test_persistent_5xx_ends_in_backend_unavailable_naming_the_url() -> None:
    with FakeOpenAI(default=Reply(status=502)) as fake:
        backend = VLLMServerBackend(fake.url, model="m", retry=FAST)
        with pytest.raises(BackendUnavailable) as info:
            asyncio.run(backend.generate(ask()))
        assert f"{fake.url}/chat/completions unavailable after 3 attempts" in str(info.value)
        assert "HTTP 502" in str(info.value)
        assert len(fake.posts()) == 3


def test_connection_refused_fails_fast_and_typed() -> None:
    url = closed_port_url()
    backend = VLLMServerBackend(url, model="m", retry=FAST)
    start = time.monotonic()
    with pytest.raises(BackendUnavailable, match=rf"{url}/chat/completions unavailable after 3 attempts.*ConnectError"):
        asyncio.run(backend.generate(ask()))
    assert time.monotonic() - start < 5


def test_constructor_fails_fast_when_nothing_listens() -> None:
    url = closed_port_url()
    with pytest.raises(BackendUnavailable, match=rf"{url}/models unavailable"):
        VLLMServerBackend(url, retry=FAST)


def test_a_read_timeout_is_not_resent_while_the_first_copy_may_still_run() -> None:
    """Retrying a generation the server is still running would double its load (tests/unit/test_pool.py
    has the failover to another endpoint)."""
    with FakeOpenAI(default=Reply(delay_s=1.0)) as fake:
        backend = VLLMServerBackend(fake.url, model="m", timeout_s=0.2, retry=FAST)
        start = time.monotonic()
        with pytest.raises(GenerationTimeout, match="timeout_s"):
            asyncio.run(backend.generate(ask()))
        assert time.monotonic() - start < 1  # one 0.2 s wait, no backoff
        assert len(fake.posts()) == 1


def test_client_errors_are_not_retried() -> None:
    body = {"error": {"message": "Invalid schema for response_format 'Answer': 'required' is required"}}
    with FakeOpenAI(default=Reply(status=400, body=body)) as fake:
        backend = OpenAIBackend(fake.url, model="gpt", api_key="k", retry=FAST)
        agent = Agent("solve", instructions="Answer.", output_type=Answer)
        with pytest.raises(UnsupportedConstraint, match="rejected the json_schema output constraint: Invalid schema"):
            agent.run(Answer(answer="q"), backend=backend)
        assert len(fake.posts()) == 1
        assert fake.posts()[0].headers["Authorization"] == "Bearer k"


def test_traceparent_of_the_chat_span_reaches_the_server(spans) -> None:
    with FakeOpenAI() as fake:
        backend = VLLMServerBackend(fake.url, model="m", retry=FAST)
        Agent("solve", instructions="Answer.", output_type=Answer, n=2).run(Answer(answer="q"), backend=backend)
        header = fake.posts()[0].headers.get("traceparent")
    chat = next(s for s in spans.get_finished_spans() if s.name.startswith("chat "))
    ctx = chat.get_span_context()
    assert header is not None
    version, trace_id, parent_id, flags = header.split("-")
    assert (version, trace_id, parent_id) == ("00", f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}")
    assert int(flags, 16) & 1  # sampled


def test_no_traceparent_without_an_active_trace() -> None:
    with FakeOpenAI() as fake:
        asyncio.run(VLLMServerBackend(fake.url, model="m").generate(ask()))
        assert "traceparent" not in {k.lower() for k in fake.posts()[0].headers}


def test_one_backend_serves_several_event_loops() -> None:
    with FakeOpenAI() as fake:
        backend = VLLMServerBackend(fake.url, model="m")
        for _ in range(3):  # each asyncio.run is a new loop; the client pool must follow it
            assert len(asyncio.run(backend.generate(ask())).choices) == 1


def test_concurrent_requests_overlap() -> None:
    """Concurrent generate calls are in flight at the server together, not one after another
    (counted server-side: wall time on a loaded 2-core machine says little)."""
    with FakeOpenAI(default=Reply(delay_s=0.5)) as fake:
        backend = VLLMServerBackend(fake.url, model="m")

        async def many() -> None:
            await asyncio.gather(*(backend.generate(ask()) for _ in range(8)))

        asyncio.run(many())
        assert len(fake.posts()) == 8
        assert fake.max_in_flight >= 4  # sequential calls would never exceed 1


def test_openai_backend_splits_n_for_endpoints_without_n() -> None:
    with FakeOpenAI(default=Reply(texts=['{"answer":"4"}'])) as fake:
        backend = OpenAIBackend(fake.url, model="llama", supports_n=False)
        gen = asyncio.run(backend.generate(ask(n=3, seed=10)))
        assert [c.text for c in gen.choices] == ['{"answer":"4"}'] * 3
        assert sorted(p.body["seed"] for p in fake.posts()) == [10, 11, 12]
        assert all(p.body["n"] == 1 for p in fake.posts())
        assert gen.usage.output_tokens == 21


def test_openai_backend_reports_an_endpoint_that_ignores_n() -> None:
    with FakeOpenAI(default=Reply(texts=['{"answer":"4"}'])) as fake:
        backend = OpenAIBackend(fake.url, model="llama")
        with pytest.raises(BackendError, match="returned 1 choices for n=3"):
            asyncio.run(backend.generate(ask(n=3)))


def test_openai_backend_refuses_grammar_before_sending() -> None:
    with FakeOpenAI() as fake:
        backend = OpenAIBackend(fake.url, model="gpt")
        request = ask().model_copy(update={"constraint": OutputConstraint(kind="grammar", value='start: "a"')})
        with pytest.raises(UnsupportedConstraint):
            asyncio.run(backend.generate(request))
        assert fake.posts() == []


def test_make_backend_kinds() -> None:
    with FakeOpenAI(model="served") as fake:
        vllm = make_backend("vllm", base_url=fake.url)
        assert isinstance(vllm, VLLMServerBackend) and vllm.model == "served" and vllm.provider == "vllm"
        openai = make_backend("openai", base_url=fake.url, model="gpt")
        assert isinstance(openai, OpenAIBackend) and openai.model == "gpt"
    with pytest.raises(ConfigError, match="--backend openai needs --base-url"):
        make_backend("openai")
    with pytest.raises(ConfigError, match="--base-url is for the vllm and openai backends"):
        make_backend("llamacpp", base_url="http://x")


def test_both_providers_share_one_compatible_backend_but_keep_their_own_messages() -> None:
    assert issubclass(VLLMServerBackend, OpenAICompatibleBackend) and issubclass(OpenAIBackend, OpenAICompatibleBackend)
    assert not issubclass(VLLMServerBackend, OpenAIBackend)  # no OPENAI_API_KEY, supports_n or strict on vLLM
    with pytest.raises(ConfigError, match="^--model is empty; pass the server's served model name or leave it out$"):
        VLLMServerBackend("http://127.0.0.1:9/v1", model=" ")
    with pytest.raises(ConfigError, match="^--model is empty; pass the endpoint's model name$"):
        OpenAIBackend("http://127.0.0.1:9/v1", model="")


def test_only_the_openai_provider_reads_openai_api_key(monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "from-env")
    with FakeOpenAI() as fake:
        asyncio.run(OpenAIBackend(fake.url, model="gpt").generate(ask()))
        asyncio.run(VLLMServerBackend(fake.url, model="m").generate(ask()))
        openai_post, vllm_post = fake.posts()
    assert openai_post.headers.get("Authorization") == "Bearer from-env"
    assert "authorization" not in {k.lower() for k in vllm_post.headers}


def test_each_provider_sends_its_own_dialect_and_fills_in_latency_and_model() -> None:
    grammar = OutputConstraint(kind="grammar", value='start: "a"')
    with FakeOpenAI(model="", default=Reply(texts=["a"])) as fake:
        gen = asyncio.run(VLLMServerBackend(fake.url, model="m").generate(ask().model_copy(update={"constraint": grammar})))
        assert fake.posts()[0].body["structured_outputs"] == {"grammar": 'start: "a"'}
    assert gen.model == "m" and gen.latency_s > 0


def test_cli_run_against_a_dead_server_exits_1_naming_the_url() -> None:
    url = closed_port_url()
    start = time.monotonic()
    r = CliRunner().invoke(app, ["run", "mccot", "--question", "1+1?", "--backend", "vllm", "--base-url", url])
    assert r.exit_code == 1
    assert "BackendUnavailable" in r.output and f"{url}/models" in r.output
    assert time.monotonic() - start < 30


def test_cli_models_prepare_rejects_an_unknown_model(tmp_path) -> None:
    r = CliRunner().invoke(app, ["models", "prepare", "gpt5", "--out", str(tmp_path / "m")])
    assert r.exit_code == 2
    assert "unknown model 'gpt5'" in r.output


def test_reply_json_is_what_the_fake_sent() -> None:
    # guards the fake itself: a completion for n=2 carries two distinct choices
    fake = FakeOpenAI()
    payload = fake.completion({"n": 2}, Reply())
    assert [json.loads(c["message"]["content"]) for c in payload["choices"]] == [{"answer": "0"}, {"answer": "1"}]
    fake.close()
