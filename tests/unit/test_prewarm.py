"""tests/_prewarm.py: background jobs hand their result, or their error, to the fixture that waits."""

from __future__ import annotations

import threading

import pytest

from tests import _prewarm


def test_a_job_result_reaches_the_waiter() -> None:
    jobs = _prewarm.Jobs()
    gate = threading.Event()
    jobs.submit("slow", lambda: gate.wait(5) and 42)
    assert jobs.started("slow") and not jobs.futures["slow"].done()
    gate.set()
    assert jobs.wait("slow", 5) == 42
    assert "slow" in jobs.timings


def test_a_failed_job_raises_in_the_waiter() -> None:
    jobs = _prewarm.Jobs()

    def broken() -> None:
        raise RuntimeError("pip install failed")

    jobs.submit("broken", broken)
    with pytest.raises(RuntimeError, match="pip install failed"):
        jobs.wait("broken", 5)


def test_a_job_never_started_gives_none() -> None:
    assert _prewarm.Jobs().wait("vllm", 1) is None


def test_turned_off_starts_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTKIT_TEST_PREWARM", "0")
    monkeypatch.setattr(_prewarm, "JOBS", _prewarm.Jobs())
    _prewarm.start_for({"vllm", "e2e"}, vllm_server=True)
    assert _prewarm.JOBS.futures == {}


def test_a_failing_child_names_the_command_and_its_error() -> None:
    with pytest.raises(RuntimeError, match=r"background `nope` failed \(exit 1\)[\s\S]*KeyError"):
        _prewarm._child("nope")
