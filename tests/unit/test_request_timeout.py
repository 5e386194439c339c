"""--request-timeout: how long a request sent to a server may take, set on every endpoint before the first."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agentkit.backends import make_backend
from agentkit.backends.base import GenerationRequest, Message, Sampling
from agentkit.errors import ConfigError
from tests.unit.fake_openai_server import FakeOpenAI, Reply


def test_make_backend_sets_every_servers_timeout_and_refuses_it_for_llamacpp() -> None:
    pool = make_backend("vllm", model="m", base_url=["http://127.0.0.1:9/v1", "http://127.0.0.1:10/v1"],
                        timeout_s=1200)
    assert [e.timeout_s for e in pool.endpoints] == [1200, 1200]  # type: ignore[attr-defined]
    assert make_backend("vllm", model="m", base_url="http://127.0.0.1:9/v1").timeout_s == 300  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="--request-timeout .* backend 'llamacpp' is not one"):
        make_backend("llamacpp", timeout_s=10)


def test_the_timeout_is_refused_once_requests_were_sent_or_when_not_positive() -> None:
    with FakeOpenAI() as fake:
        backend = make_backend("vllm", model="m", base_url=fake.url)
        request = GenerationRequest(messages=[Message(role="user", content="hi")], sampling=Sampling(max_tokens=4))
        asyncio.run(backend.generate(request))
    with pytest.raises(ConfigError, match="timeout_s cannot change once requests were sent"):
        backend.timeout_s = 10  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="timeout_s must be > 0 seconds"):
        make_backend("vllm", model="m", base_url="http://127.0.0.1:9/v1", timeout_s=0)


def test_cli_request_timeout_fails_a_request_the_server_answers_too_late(tmp_path: Path,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    from typer.testing import CliRunner

    from agentkit.cli import app

    with FakeOpenAI(default=Reply(delay_s=1.5)) as fake:
        result = CliRunner().invoke(app, ["eval", "direct", "--dataset", "gsm8k", "--limit", "1", "--backend", "vllm",
                                          "--base-url", fake.url, "--request-timeout", "0.3", "--model", "m",
                                          "--out", str(tmp_path / "run"), "--no-progress"])
    assert result.exit_code != 0 and "0 kept" in result.output  # the example is left to --resume
    assert "sent no answer within 0.3s" in caplog.text and "--request-timeout" in caplog.text


def test_agentkit_run_takes_the_timeout_and_keeps_it_for_resume(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from agentkit import persistence
    from agentkit.cli import app

    with FakeOpenAI(default=Reply(delay_s=1.5)) as fake:
        late = CliRunner().invoke(app, ["run", "direct", "--question", "What is 2 + 2?", "--backend", "vllm",
                                        "--base-url", fake.url, "--request-timeout", "0.3", "--model", "m"])
    assert late.exit_code != 0 and "sent no answer within 0.3s" in late.output
    db = tmp_path / "runs.db"
    with FakeOpenAI() as fake:
        done = CliRunner().invoke(app, ["run", "direct", "--question", "What is 2 + 2?", "--backend", "vllm",
                                        "--base-url", fake.url, "--request-timeout", "7", "--model", "m",
                                        "--checkpoint", str(db), "--thread", "t"])
    assert done.exit_code == 0, done.output
    info = asyncio.run(persistence.read_thread(persistence.from_target(str(db)), "t"))
    assert info is not None and info.settings is not None and info.settings.timeout_s == 7  # agentkit resume rebuilds with it
