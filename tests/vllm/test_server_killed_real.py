"""The real vLLM server killed mid-run: completed results are kept, in-flight and later calls are
retried and then fail with BackendUnavailable naming the URL, within a bounded time; nothing hangs.

Runs last in the session (``kills_server``): it SIGKILLs the shared server's whole process group.
"""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from agentkit.errors import BackendUnavailable
from agentkit.graphs import mccot
from tests.vllm.conftest import SETUP_TIMEOUT_S, Server

pytestmark = [pytest.mark.vllm, pytest.mark.kills_server, pytest.mark.timeout(SETUP_TIMEOUT_S)]

PAIRS = [(3, 4), (5, 2), (10, 7), (8, 8), (12, 1), (6, 9), (4, 4), (20, 5), (2, 13), (7, 7), (9, 3), (15, 6)]
QUESTIONS = [f"Sam has {a} apples and buys {b} more. How many apples does Sam have?" for a, b in PAIRS]


def test_server_killed_mid_run(vllm_server: Server) -> None:
    backend = vllm_server.backend(timeout_s=60.0)
    url = backend.base_url
    graph = mccot.build(backend, k=4, answer_kind="number", seed=1, max_tokens=160).compile()
    finished: list[tuple[int, object]] = []
    failed: list[tuple[int, BaseException, float]] = []
    killed_at: list[float] = []

    async def one(i: int, gate: asyncio.Semaphore) -> None:
        async with gate:
            try:
                finished.append((i, await graph.ainvoke({"question": QUESTIONS[i]})))
            except Exception as exc:
                failed.append((i, exc, time.monotonic()))

    async def killer() -> None:
        while len(finished) < 3:  # let some runs complete first
            await asyncio.sleep(0.05)
        vllm_server.proc.kill()
        killed_at.append(time.monotonic())

    async def run() -> None:
        gate = asyncio.Semaphore(2)
        await asyncio.wait_for(asyncio.gather(killer(), *(one(i, gate) for i in range(len(QUESTIONS)))), 600)

    asyncio.run(run())

    assert not vllm_server.proc.alive()
    assert len(finished) >= 3
    assert len(finished) + len(failed) == len(QUESTIONS)  # every run ended, none hangs
    for _, out in finished:  # completed results are intact
        assert out.k == 4 and len(out.samples) == 4  # type: ignore[attr-defined]
    assert failed, "the kill came too late to interrupt anything"
    for _, exc, ended in failed:
        assert isinstance(exc, BackendUnavailable), repr(exc)
        assert f"{url}/chat/completions unavailable after 3 attempts" in str(exc)
        assert ended - killed_at[0] < 20  # 3 attempts with 0.2-1 s backoff, not a 60 s timeout
    latest = max(ended for _, _, ended in failed) - killed_at[0]
    logging.getLogger("tests.vllm").warning(
        "server killed after %d runs finished; %d runs ended in BackendUnavailable, the last %.1fs after the kill",
        len(finished), len(failed), latest,
    )  # fmt: skip
