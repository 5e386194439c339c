"""Shared fixtures.

``replay(name)`` gives a ReplayBackend over tests/cassettes/<name>.jsonl, recorded from the real
SmolLM2. Set AGENTKIT_RECORD=1 to re-record every cassette a test run touches from the real model.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from agentkit.backends.replay import ReplayBackend

CASSETTES = Path(__file__).parent / "cassettes"
RECORD = os.environ.get("AGENTKIT_RECORD") == "1"
_rerecorded: set[Path] = set()  # cassettes already cleared in this recording session


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
            if path not in _rerecorded:
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
