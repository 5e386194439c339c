"""Shared fixtures.

``replay(name)`` gives a ReplayBackend over tests/cassettes/<name>.jsonl, recorded from the real
SmolLM2. Set AGENTKIT_RECORD=1 to re-record every cassette a test run touches from the real model,
or AGENTKIT_RECORD=missing to add only the requests a cassette lacks (a test that asks something new)
and keep every recording it has.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from agentkit.backends.replay import ReplayBackend
from tests import _prewarm, run_shards

CASSETTES = Path(__file__).parent / "cassettes"
RECORD = os.environ.get("AGENTKIT_RECORD") in ("1", "missing")
_RECORD_ALL = os.environ.get("AGENTKIT_RECORD") == "1"
_rerecorded: set[Path] = set()  # cassettes already cleared in this recording session
TESTS = Path(__file__).parent
#: suites that need slow, shareable setup (tests/_prewarm.py) run last, so that setup can overlap
#: the rest of the session; e2e before vllm, whose setup (venv, model, server start) takes longest
_LAST = {"e2e": 1, "vllm": 2}


def _suite(item: pytest.Item) -> str:
    try:
        return Path(str(item.path)).relative_to(TESTS).parts[0]
    except ValueError:
        return ""


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: _LAST.get(_suite(item), 0))  # stable: each suite keeps its order
    shard = os.environ.get(run_shards.SHARD_ENV)
    if shard:  # one of `make test`'s two sessions (tests/run_shards.py): only this shard's tests
        if shard not in run_shards.SHARDS:
            raise pytest.UsageError(f"{run_shards.SHARD_ENV}={shard!r}: use one of {', '.join(run_shards.SHARDS)}")
        kept: list[pytest.Item] = []
        others: list[pytest.Item] = []
        for item in items:
            (kept if run_shards.shard_of(Path(str(item.path))) == shard else others).append(item)
        if others:
            config.hook.pytest_deselected(items=others)
            items[:] = kept


def _interrupted_by_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt("SIGTERM")


def pytest_configure(config: pytest.Config) -> None:
    """SIGTERM (a CI timeout, `kill`) ends the session as Ctrl-C does: the session's fixtures are torn
    down, so the vLLM and Phoenix servers they started stop too instead of outliving the run."""
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupted_by_sigterm)


def pytest_collection_finish(session: pytest.Session) -> None:
    _prewarm.start_for({_suite(item) for item in session.items},
                       vllm_server=any("vllm_server" in getattr(item, "fixturenames", ()) for item in session.items))


def pytest_sessionfinish(session: pytest.Session) -> None:
    _prewarm.stop_unclaimed_server()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Where a fresh machine's setup time went (also shown with -q)."""
    for name, seconds in _prewarm.JOBS.timings.items():
        terminalreporter.write_line(f"background setup {name}: {seconds:.0f} s")
    for line in _prewarm.REPORT:
        terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def smollm2():
    """The real embedded model, loaded once per test session."""
    from agentkit.backends.llamacpp import LlamaCppBackend

    return LlamaCppBackend()


@pytest.fixture
def replay(request: pytest.FixtureRequest) -> Callable[[str], ReplayBackend]:
    def make(name: str) -> ReplayBackend:
        path = CASSETTES / f"{name}.jsonl"
        if RECORD:
            if _RECORD_ALL and path not in _rerecorded:
                path.unlink(missing_ok=True)
                _rerecorded.add(path)
            return ReplayBackend(path, record_from=request.getfixturevalue("smollm2"))
        return ReplayBackend(path)

    return make


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch):
    """Finished spans of the code under test, from an in-memory exporter (no global provider set)."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    import agentkit.tracing

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(agentkit.tracing, "tracer", lambda: provider.get_tracer("agentkit"))
    monkeypatch.setattr(agentkit.tracing, "enabled", lambda: True)
    yield exporter
    provider.shutdown()
