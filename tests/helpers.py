"""Backend wrappers for testing runtime mechanics around real (replayed) generations, and a loader
for the bench/ scripts (not a package) under test."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import time
from pathlib import Path
from types import ModuleType

from agentkit.backends.base import Backend, Generation, GenerationRequest
from agentkit.errors import TransientBackendError


class Recording:
    """Passes requests through and records them and their generations, with an optional delay to make
    overlap visible."""

    def __init__(self, inner: Backend, delay_s: float = 0.0) -> None:
        self.inner = inner
        self.provider = inner.provider
        self.model = inner.model
        self.delay_s = delay_s
        self.requests: list[GenerationRequest] = []
        self.generations: dict[int, Generation] = {}  # by the request's index in ``requests``
        self.spans: list[tuple[float, float]] = []
        self.in_flight = 0
        self.max_in_flight = 0

    async def generate(self, request: GenerationRequest) -> Generation:
        self.requests.append(request)
        index = len(self.requests) - 1
        start = time.perf_counter()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay_s)
            self.generations[index] = await self.inner.generate(request)
            return self.generations[index]
        finally:
            self.in_flight -= 1
            self.spans.append((start, time.perf_counter()))


class Flaky(Recording):
    """Fails the first ``failures`` calls with a transient error, then behaves."""

    def __init__(self, inner: Backend, failures: int, error: type[Exception] = TransientBackendError) -> None:
        super().__init__(inner)
        self.failures = failures
        self.error = error

    async def generate(self, request: GenerationRequest) -> Generation:
        if self.failures > 0:
            self.failures -= 1
            self.requests.append(request)
            raise self.error("simulated connection reset")
        return await super().generate(request)


def bench_module(name: str) -> ModuleType:
    """bench/<name>.py, imported under a private name (bench/ is a folder of scripts, not a package)."""
    path = Path(__file__).resolve().parents[1] / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses (and pickling) look a class's module up there
    spec.loader.exec_module(module)
    return module
