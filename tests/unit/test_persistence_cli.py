"""``agentkit run --checkpoint --thread`` and ``agentkit threads list|delete`` on replayed SmolLM2 (MC-CoT)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentkit.backends import register_backend, unregister_backend
from agentkit.backends.replay import ReplayBackend
from agentkit.cli import app
from tests.conftest import CASSETTES
from tests.helpers import Recording

QUESTION = "What is 6 times 7?"
runner = CliRunner()


@pytest.fixture
def backend():
    made: list[Recording] = []

    def factory(model=None, base_url=None):
        made.append(Recording(ReplayBackend(CASSETTES / "mccot_k5.jsonl")))
        return made[-1]

    register_backend("replay-durable", factory, help="test: replayed MC-CoT")
    yield made
    unregister_backend("replay-durable")


def run(db: Path, *extra: str):
    return runner.invoke(app, ["run", "mccot", "--question", QUESTION, "--samples", "5", "--seed", "11",
                               "--backend", "replay-durable", "--checkpoint", str(db), *extra])


def test_run_with_a_thread_is_stored_rerun_reads_it_and_other_knobs_are_refused(tmp_path: Path, backend) -> None:
    db = tmp_path / "runs.db"
    first = run(db, "--thread", "six")
    assert first.exit_code == 0, first.output
    answer = json.loads(first.stdout)
    assert answer["answer"] and len(backend[-1].requests) == 1
    again = run(db, "--thread", "six")
    assert again.exit_code == 0 and json.loads(again.stdout) == answer
    assert backend[-1].requests == [], "a finished thread made model calls again"
    other = runner.invoke(app, ["run", "mccot", "--question", QUESTION, "--samples", "3", "--seed", "11",
                                "--backend", "replay-durable", "--checkpoint", str(db), "--thread", "six"])
    assert other.exit_code == 2 and "knob k=5, this run has 3" in other.stderr

    listed = runner.invoke(app, ["threads", "list", "--checkpoint", str(db), "--json"])
    assert listed.exit_code == 0, listed.output
    (info,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert info["thread_id"] == "six" and info["status"] == "finished"
    assert info["settings"]["pattern"] == "mccot" and info["settings"]["knobs"]["k"] == 5
    assert info["settings"]["backend"] == "replay-durable"
    table = runner.invoke(app, ["threads", "list", "--checkpoint", str(db)])
    assert "six\tfinished\tmccot" in table.stdout

    gone = runner.invoke(app, ["threads", "delete", "--checkpoint", str(db), "--thread", "six"])
    assert gone.exit_code == 0 and json.loads(gone.stdout) == {"deleted": "six"}
    missing = runner.invoke(app, ["threads", "delete", "--checkpoint", str(db), "--thread", "six"])
    assert missing.exit_code == 2 and "'six' is not in" in missing.stderr


def test_checkpoint_and_thread_go_together(tmp_path: Path, backend) -> None:
    res = run(tmp_path / "runs.db")
    assert res.exit_code == 2 and "--checkpoint and --thread go together" in res.stderr


@pytest.mark.parametrize(("option", "expected", "timeout"), [
    ([], 3, 60.0), (["--max-in-flight", "5"], 5, 60.0), (["--request-timeout", "9"], 3, 9.0)])
def test_resume_rebuilds_the_backend_with_the_runs_in_flight_limit(monkeypatch: pytest.MonkeyPatch, option: list[str],
                                                                   expected: int, timeout: float) -> None:
    """The thread records `agentkit run --max-in-flight` and `--request-timeout`, and `agentkit resume`
    uses them (or its own)."""
    import agentkit.backends
    from agentkit import persistence
    from agentkit.errors import ConfigError
    from agentkit.persistence import RunSettings

    settings = RunSettings(pattern="mccot", backend="vllm", base_url="http://127.0.0.1:9/v1", max_in_flight=3,
                           timeout_s=60)

    async def read_thread(store: object, thread: str) -> object:
        return type("Info", (), {"settings": settings, "status": "paused"})()

    built: dict[str, object] = {}

    def make_backend(kind: str, **kwargs: object) -> object:
        built.update(kwargs, kind=kind)
        raise ConfigError("stop here: the backend is all this test looks at")

    monkeypatch.setattr(persistence, "read_thread", read_thread)
    monkeypatch.setattr(persistence, "from_target", lambda target: object())
    monkeypatch.setattr(agentkit.backends, "make_backend", make_backend)
    result = runner.invoke(app, ["resume", "--thread", "t", "--checkpoint", "x.db", "--decision", "approve", *option])
    assert "stop here" in result.output
    assert built == {"kind": "vllm", "model": None, "base_url": "http://127.0.0.1:9/v1", "max_in_flight": expected,
                     "timeout_s": timeout}
