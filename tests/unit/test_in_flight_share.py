"""Ray actors share each endpoint's in-flight limit: the limit is the server's capacity, not each client's."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentkit.backends.openai_compat import OpenAICompatibleBackend
from agentkit.backends.pool import PoolBackend
from agentkit.backends.replay import ReplayBackend
from agentkit.errors import ConfigError
from agentkit.eval._ray_worker import share_in_flight
from tests.conftest import CASSETTES


def _endpoint(url: str, limit: int | None) -> OpenAICompatibleBackend:
    return OpenAICompatibleBackend(url, model="m", max_in_flight=limit)


@pytest.mark.parametrize(("limit", "actors", "share"), [(8, 2, 4), (7, 2, 3), (2, 3, 1), (8, 1, 8), (None, 4, None)])
def test_each_actor_takes_its_floor_share_and_at_least_one(limit: int | None, actors: int, share: int | None) -> None:
    backend = _endpoint("http://127.0.0.1:9/v1", limit)
    share_in_flight(backend, actors)
    assert backend.max_in_flight == share


def test_every_endpoint_of_a_pool_is_shared_out() -> None:
    pool = PoolBackend([_endpoint("http://127.0.0.1:9/v1", 6), _endpoint("http://127.0.0.1:10/v1", 4)])
    share_in_flight(pool, 2)
    assert [e.max_in_flight for e in pool.endpoints] == [3, 2]


def test_a_backend_without_an_http_limit_is_left_alone() -> None:
    replay = ReplayBackend(next(CASSETTES.glob("*.jsonl")))
    share_in_flight(replay, 4)  # nothing to share: no error, no attribute grown
    assert not hasattr(replay, "max_in_flight")


def test_a_limit_below_one_is_refused_naming_the_knob() -> None:
    with pytest.raises(ConfigError, match="max_in_flight must be >= 1"):
        _endpoint("http://127.0.0.1:9/v1", 4).max_in_flight = 0


def test_make_backend_sets_every_servers_limit_and_refuses_it_for_llamacpp() -> None:
    from agentkit.backends import make_backend

    pool = make_backend("vllm", model="m", base_url=["http://127.0.0.1:9/v1", "http://127.0.0.1:10/v1"],
                        max_in_flight=3)
    assert [e.max_in_flight for e in pool.endpoints] == [3, 3]  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="--max-in-flight .* backend 'llamacpp' is not one"):
        make_backend("llamacpp", max_in_flight=3)


def test_cli_max_in_flight_caps_what_the_server_sees(tmp_path: Path) -> None:
    """--concurrency 4 with --max-in-flight 1: the fake server never serves two at once."""
    from typer.testing import CliRunner

    from agentkit.cli import app
    from tests.unit._eval_pool_fakes import SchemaFake
    from tests.unit.fake_openai_server import Reply

    with SchemaFake(default=Reply(delay_s=0.1)) as fake:
        result = CliRunner().invoke(app, ["eval", "direct", "--dataset", "gsm8k", "--limit", "6", "--backend", "vllm",
                                          "--base-url", fake.url, "--max-in-flight", "1", "--concurrency", "4",
                                          "--out", str(tmp_path / "run"), "--no-progress"])
        peak = fake.max_in_flight
    assert result.exit_code == 0, result.output
    assert len(fake.posts()) == 6 and peak == 1
