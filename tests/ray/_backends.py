"""Backends the Ray tests build inside actors (importable there: workers share the driver's sys.path)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from agentkit.backends.base import Generation, GenerationRequest
from agentkit.backends.openai_compat import OpenAICompatibleBackend
from agentkit.backends.pool import PoolBackend
from agentkit.backends.replay import ReplayBackend


class SlowReplay:
    """The replayed real SmolLM2, ``delay_s`` slower per request, announcing its process in ``pid_dir``
    (one empty file per actor, named by pid) so a test can kill it mid-run."""

    def __init__(self, cassette: str | Path, delay_s: float, pid_dir: str | Path | None = None) -> None:
        self.inner = ReplayBackend(cassette)
        self.provider, self.model = self.inner.provider, self.inner.model
        self.delay_s = delay_s
        if pid_dir is not None:
            (Path(pid_dir) / str(os.getpid())).touch()

    async def generate(self, request: GenerationRequest) -> Generation:
        await asyncio.sleep(self.delay_s)
        return await self.inner.generate(request)


def pool_of(urls: list[str], max_in_flight: int) -> PoolBackend:
    """A pool of OpenAI-compatible endpoints, each with the given in-flight limit (the server's capacity)."""
    return PoolBackend([OpenAICompatibleBackend(url, model="fake-model", max_in_flight=max_in_flight) for url in urls])
