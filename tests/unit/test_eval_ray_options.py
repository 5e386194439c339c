"""--ray's caller mistakes, without Ray running: no ray installed is one line naming the extra (exit 2,
before any model loads); a built backend cannot go to Ray; a BackendSpec also runs locally."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentkit.backends.replay import ReplayBackend
from agentkit.errors import ConfigError
from agentkit.eval.runner import BackendSpec, RayOptions, evaluate, select_dataset
from tests.conftest import CASSETTES
from tests.unit.test_eval_runner import CASSETTE

runner = CliRunner()


def _cli(*args: str):
    from agentkit.cli import app

    return runner.invoke(app, list(args))


@pytest.fixture
def no_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    for name in ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "RAY_USAGE_STATS_ENABLED"):
        monkeypatch.setenv(name, "0")  # restored after the test, whatever the CLI sets


@pytest.mark.parametrize("flag", [["--ray"], ["--ray-address", "127.0.0.1:6379"]])
def test_ray_flags_without_ray_exit_2_with_one_line_naming_the_extra(no_ray: None, tmp_path: Path, monkeypatch,
                                                                     flag: list[str]) -> None:
    def no_model(*args, **kwargs):
        raise AssertionError("a backend was built before the ray check")

    monkeypatch.setattr("agentkit.backends.make_backend", no_model)
    result = _cli("eval", "direct", "--dataset", "gsm8k", "--limit", "2", "--out", str(tmp_path / "o"), *flag)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "pip install 'agentkit[ray]'" in lines[0], result.output
    assert not (tmp_path / "o" / "results.jsonl").exists()


def test_ray_actors_alone_is_refused(tmp_path: Path) -> None:
    result = _cli("eval", "direct", "--dataset", "gsm8k", "--out", str(tmp_path / "o"), "--ray-actors", "2")
    assert result.exit_code == 2 and "--ray-actors sizes a Ray run" in result.output


def test_a_built_backend_cannot_go_to_ray(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="pass a BackendSpec"):
        evaluate("direct", select_dataset("gsm8k", limit=1), ReplayBackend(CASSETTES / f"{CASSETTE}.jsonl"),
                 tmp_path / "o", ray=RayOptions())
    assert not (tmp_path / "o").exists()


def test_a_backend_spec_runs_locally_too(tmp_path: Path) -> None:
    spec = BackendSpec(factory=functools.partial(ReplayBackend, CASSETTES / f"{CASSETTE}.jsonl"))
    outcome = evaluate("direct", select_dataset("gsm8k", limit=2), spec, tmp_path / "o")
    assert outcome.complete and outcome.finished == 2
    with pytest.raises(ConfigError, match="not a Backend"):
        evaluate("direct", select_dataset("gsm8k", limit=1), BackendSpec(factory=dict), tmp_path / "p")


def test_llamacpp_threads_come_from_the_spec_or_the_actor_share(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[tuple] = []

    class FakeLlama:
        provider, model = "llama.cpp", "fake"

        def __init__(self, model_path=None, *, n_threads=None) -> None:
            made.append((model_path, n_threads))

        async def generate(self, request):  # pragma: no cover - never called
            raise AssertionError

    monkeypatch.setattr("agentkit.backends.llamacpp.LlamaCppBackend", FakeLlama)
    assert BackendSpec().runs_llamacpp and not BackendSpec(kind="vllm").runs_llamacpp
    BackendSpec(model="m.gguf").build(n_threads=3)
    BackendSpec(n_threads=2).build(n_threads=3)
    assert made == [("m.gguf", 3), (None, 2)]
    with pytest.raises(ConfigError, match="--base-url is for the vllm and openai backends"):
        BackendSpec(base_url="http://127.0.0.1:1/v1").build(n_threads=1)
    # a server's limits are refused, not dropped, as make_backend("llamacpp", ...) refuses them
    with pytest.raises(ConfigError, match=r"in-process, so --request-timeout \(settings of a server\) cannot apply"):
        BackendSpec(timeout_s=30).build(n_threads=1)
    with pytest.raises(ConfigError, match="so --max-in-flight and --request-timeout"):
        BackendSpec(max_in_flight=4, timeout_s=30).build(n_threads=1)
    assert len(made) == 2
