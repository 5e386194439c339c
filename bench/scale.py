"""Eval throughput over a pool of 1, 2 and 4 endpoints that model capacity, and agentkit's client CPU per request.

Each endpoint is a local HTTP server (tests/unit/fake_openai_server.py, in a child process so its
CPU is not the client's; HTTP/1.1 keep-alive, as vLLM's server) that generates at most C requests
at once, each taking L seconds, and queues the rest: the shape of a vLLM replica at its
max-num-seqs. `agentkit eval direct` runs N GSM8K rows through a PoolBackend over E endpoints with
enough concurrency to fill them all (2 x E x C). With perfect scaling, E endpoints give E times
one endpoint's throughput.

Figures, per run:
- throughput: examples over the serving window (the first request reaching a fake to the last
  answer leaving one, read from the fakes' clocks), so start-up (imports, graph build, Ray actors)
  and the report at the end do not count; the whole call's rate is kept too;
- client CPU per request: CPU of the client's processes over that same window, per request the
  fakes answered. Without --ray that is this process (its sampler thread excluded); with --ray,
  this process (the driver) plus Ray's workers (the actors), from /proc. Ray's own daemons
  (raylet, GCS: a cost per second, not per request) are reported apart. The whole call's CPU per
  request (this process only, start-up and report included) is kept in the JSON.

    .venv/bin/python bench/scale.py [--endpoints 1,2,4] [--capacity 4] [--latency 0.5] [--in-flight N]
                                    [--examples 400] [--rounds 3] [--ray] [--actors A] [--progress] [--json F]
    .venv/bin/python bench/scale.py --transport 8,32,96 [--one-client]   # the HTTP client's own cost
    .venv/bin/python bench/scale.py --vs-raw [--endpoints 1] ...   # what agentkit adds over raw LangGraph

With --vs-raw each round also runs the same examples, at the same concurrency, to the same kind of
endpoints, through the stack agentkit is built on and nothing else: a raw LangGraph graph of the
same two nodes as ``direct`` (answer, record), whose first node posts the chat completion with one
shared httpx client and reads the JSON answer. Its client CPU per request, measured over the same
window, is the floor; agentkit's own cost is the difference (the eval's bookkeeping: agents,
validation, the pool, tracing hooks, grading, the fsync'd result log).
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_SERVE = """
import http.server, json, os, sys, time
from tests.unit.fake_openai_server import FakeOpenAI, Reply
# keep-alive, as vLLM's server does: the fake's HTTP/1.0 default makes the client reconnect per request
http.server.BaseHTTPRequestHandler.protocol_version = "HTTP/1.1"
http.server.ThreadingHTTPServer.request_queue_size = 1024  # listen backlog: 5 resets bursts of connects
# the handler writes headers and body in two sends: with Nagle on, a kept-alive connection waits for
# the client's delayed ACK (~40 ms) before the body goes out
http.server.BaseHTTPRequestHandler.disable_nagle_algorithm = True
arrived, answered = [], []
_next, _completion = FakeOpenAI._next, FakeOpenAI.completion
FakeOpenAI._next = lambda self: (arrived.append(time.monotonic()), _next(self))[1]
FakeOpenAI.completion = lambda self, *a: (answered.append(time.monotonic()), _completion(self, *a))[1]
count, capacity, latency = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
fakes = [FakeOpenAI(default=Reply(delay_s=latency, texts=['{"answer":"4"}']), capacity=capacity).__enter__()
         for _ in range(count)]
print(" ".join(f.url for f in fakes), flush=True)
sys.stdin.read()  # until the bench closes our stdin
times = os.times()
print(json.dumps({"posts": [len(f.posts()) for f in fakes], "first": min(arrived, default=0.0),
                  "last": max(answered, default=0.0), "cpu_s": times.user + times.system}), flush=True)
"""


class _Fakes:
    """The endpoints' child process: its URLs now, its request counts and clock readings at the end."""

    def __init__(self, count: int, capacity: int, latency: float) -> None:
        self._proc = subprocess.Popen([sys.executable, "-c", _SERVE, str(count), str(capacity), str(latency)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        assert self._proc.stdout is not None
        self.pid = self._proc.pid
        self.urls = self._proc.stdout.readline().split()

    def stop(self) -> dict[str, Any]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.close()
        report = json.loads(self._proc.stdout.readline() or "{}")
        self._proc.wait(timeout=30)
        return report


class _CPUSampler:
    """Client CPU seconds every ``every_s``: this process without this thread; with ``children``, the
    processes under it other than ``exclude`` (the fakes), read from /proc, split into Ray's workers
    (the actors, whose process name starts "ray::") and the rest (Ray's own daemons: raylet, GCS).

    Without Ray there are no such processes, and ``children=False`` skips the /proc walk: it read
    every process's stat file 20 times a second: 92 ms of CPU a second on this thread with 75
    processes on the machine (4 ms without the walk). That CPU is not counted as the client's, but
    the thread held the GIL the client's event loop waits for."""

    def __init__(self, exclude: int, every_s: float = 0.05, *, children: bool = True) -> None:
        self._exclude, self._every, self._children = exclude, every_s, children
        self._seen: dict[int, tuple[bool, float]] = {}  # pid -> (a Ray worker?, latest CPU s; kept after exit)
        self.samples: list[tuple[float, float, float, float]] = []  # (t, own, workers', daemons' CPU s)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._tick = os.sysconf("SC_CLK_TCK")

    def __enter__(self) -> _CPUSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while True:
            self._sample()
            if self._stop.wait(self._every):
                self._sample()
                return

    def _sample(self) -> None:
        t = time.monotonic()
        own = time.process_time() - time.thread_time()  # this sampler's own work is not the client's
        for pid, (worker, cpu) in (self._descendants() if self._children else {}).items():
            self._seen[pid] = (worker, max(cpu, self._seen.get(pid, (worker, 0.0))[1]))
        workers = sum(cpu for worker, cpu in self._seen.values() if worker)
        daemons = sum(cpu for worker, cpu in self._seen.values() if not worker)
        self.samples.append((t, own, workers, daemons))

    def _descendants(self) -> dict[int, tuple[bool, float]]:
        stats: dict[int, tuple[int, bool, float]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    name, rest = f.read().split(" (", 1)[1].rsplit(")", 1)
            except (OSError, ValueError):
                continue
            fields = rest.split()
            cpu = (int(fields[11]) + int(fields[12])) / self._tick  # utime + stime
            stats[int(entry)] = (int(fields[1]), name.startswith("ray::"), cpu)
        found: dict[int, tuple[bool, float]] = {}
        frontier = [os.getpid()]
        while frontier:
            parent = frontier.pop()
            for pid, (ppid, worker, cpu) in stats.items():
                if ppid == parent and pid != self._exclude and pid not in found:
                    found[pid] = (worker, cpu)
                    frontier.append(pid)
        return found

    def at(self, t: float) -> tuple[float, float, float]:
        """(own, workers', daemons') CPU seconds at time ``t``, interpolated between samples."""
        before = max((s for s in self.samples if s[0] <= t), default=self.samples[0])
        after = min((s for s in self.samples if s[0] >= t), default=self.samples[-1])
        w = 0.0 if after[0] == before[0] else (t - before[0]) / (after[0] - before[0])
        own, workers, daemons = (b + w * (a - b) for b, a in zip(before[1:], after[1:], strict=True))
        return own, workers, daemons

    def ms_per_request(self, served: dict[str, Any]) -> tuple[float, float, float]:
        """(own, workers', daemons') CPU ms per request the fakes answered, over their serving window."""
        requests = sum(served["posts"])
        own, workers, daemons = (1000 * (b - a) / requests
                                 for a, b in zip(self.at(served["first"]), self.at(served["last"]), strict=True))
        return own, workers, daemons


def _pool(urls: tuple[str, ...], in_flight: int) -> Any:
    """The backend under test (module level: a Ray actor gets it by pickle and builds its own)."""
    from agentkit.backends.pool import PoolBackend
    from agentkit.backends.vllm_server import VLLMServerBackend

    return PoolBackend([VLLMServerBackend(u, model="fake-model", max_in_flight=in_flight) for u in urls])


def run_once(count: int, args: argparse.Namespace) -> dict[str, Any]:
    from agentkit.eval.runner import BackendSpec, RayOptions, evaluate, select_dataset

    fakes = _Fakes(count, args.capacity, args.latency)
    in_flight = args.in_flight or args.capacity
    try:
        data = select_dataset("gsm8k")
        data = data.model_copy(update={"examples": data.examples[: args.examples]})
        if args.ray:
            backend: Any = BackendSpec(factory=functools.partial(_pool, tuple(fakes.urls), in_flight))
            extra: dict[str, Any] = {"ray": RayOptions(actors=args.actors)}
        else:
            backend, extra = _pool(tuple(fakes.urls), in_flight), {}
        with tempfile.TemporaryDirectory() as out, _CPUSampler(exclude=fakes.pid, children=args.ray) as cpu:
            wall, own_call = time.perf_counter(), time.process_time()
            outcome = evaluate("direct", data, backend, Path(out) / "run", concurrency=2 * count * in_flight,
                               progress=args.progress, **extra)
            wall, own_call = time.perf_counter() - wall, time.process_time() - own_call
        assert outcome.complete and outcome.summary.n == args.examples, outcome
    finally:
        served = fakes.stop()
    requests = sum(served["posts"])
    window = served["last"] - served["first"]
    own, workers, daemons = cpu.ms_per_request(served)
    return {"endpoints": count, "ray": bool(args.ray), "requests": requests, "by_endpoint": served["posts"],
            "window_s": window, "examples_per_s": args.examples / window, "call_s": wall,
            "call_examples_per_s": args.examples / wall, "client_cpu_ms_per_request": own + workers,
            "driver_cpu_ms_per_request": own, "ray_daemons_cpu_ms_per_request": daemons,
            "call_cpu_ms_per_request": 1000 * own_call / requests, "fakes_cpu_s": served["cpu_s"]}


def run_raw(count: int, args: argparse.Namespace) -> dict[str, Any]:
    """The --vs-raw floor: ``direct``'s two steps as a raw LangGraph graph over raw httpx (module docstring)."""
    import asyncio
    from typing import TypedDict

    import httpx
    from langgraph.graph import END, START, StateGraph

    from agentkit.eval.runner import select_dataset

    class State(TypedDict, total=False):
        question: str
        label: str
        answer: str
        correct: bool

    fakes = _Fakes(count, args.capacity, args.latency)
    in_flight = args.in_flight or args.capacity
    examples = select_dataset("gsm8k").examples[: args.examples]
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    turn = itertools.count()  # round-robin over the endpoints

    async def main() -> None:
        limits = httpx.Limits(max_connections=count * in_flight, max_keepalive_connections=count * in_flight)
        slots = [asyncio.Semaphore(in_flight) for _ in range(count)]
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            async def answer(state: State) -> State:
                body = {"model": "fake-model", "max_tokens": 128, "temperature": 0.0,
                        "messages": [{"role": "user", "content": state["question"]}],
                        "response_format": {"type": "json_schema", "json_schema": {"name": "Answer", "schema": schema}}}
                endpoint = next(turn) % count
                async with slots[endpoint]:  # at most in_flight per endpoint, as the pool's max_in_flight
                    reply = await client.post(f"{fakes.urls[endpoint]}/chat/completions", json=body)
                reply.raise_for_status()
                return {"answer": json.loads(reply.json()["choices"][0]["message"]["content"])["answer"]}

            def record(state: State) -> State:
                return {"correct": state["answer"].strip() == state["label"]}

            graph = StateGraph(State)
            graph.add_node("answer", answer)
            graph.add_node("record", record)
            graph.add_edge(START, "answer")
            graph.add_edge("answer", "record")
            graph.add_edge("record", END)
            app = graph.compile()
            gate = asyncio.Semaphore(2 * count * in_flight)  # the eval's concurrency

            async def one(question: str, label: str) -> None:
                async with gate:
                    await app.ainvoke({"question": question, "label": label})

            await asyncio.gather(*(one(str(e.fields["question"]), e.label) for e in examples))

    try:
        with _CPUSampler(exclude=fakes.pid, children=False) as cpu:
            asyncio.run(main())
    finally:
        served = fakes.stop()
    own, _, _ = cpu.ms_per_request(served)
    return {"endpoints": count, "requests": sum(served["posts"]), "by_endpoint": served["posts"],
            "examples_per_s": len(examples) / (served["last"] - served["first"]), "client_cpu_ms_per_request": own}


def transport(concurrency: int, one_client: bool) -> dict[str, float]:
    """Client CPU per request of the pool alone (no graph, no eval) at ``concurrency`` requests in
    flight to one endpoint that serves them all at once: the HTTP client's own cost as it grows."""
    import asyncio

    from agentkit import Sampling
    from agentkit.backends import _http_shards
    from agentkit.backends.base import GenerationRequest, Message

    if one_client:  # as before the shards: one httpx client holds every connection
        _http_shards.SHARD_CONNECTIONS = 1 << 20
    fakes = _Fakes(1, concurrency, 0.3)
    try:
        backend = _pool(tuple(fakes.urls), concurrency)

        def ask(i: int) -> GenerationRequest:
            return GenerationRequest(messages=(Message(role="system", content="Be brief."),
                                               Message(role="user", content=f"question {i} " * 20)),
                                     sampling=Sampling(max_tokens=20))

        async def burst(count: int) -> tuple[float, float]:
            cpu, wall = time.process_time(), time.perf_counter()
            gate = asyncio.Semaphore(concurrency)

            async def one(i: int) -> None:
                async with gate:
                    await backend.generate(ask(i))

            await asyncio.gather(*(one(i) for i in range(count)))
            return 1000 * (time.process_time() - cpu) / count, count / (time.perf_counter() - wall)

        async def measure() -> tuple[float, float]:
            await burst(2 * concurrency)  # connections opened, code warm
            result = await burst(6 * concurrency)
            await backend.aclose()
            return result

        cpu_ms, rate = asyncio.run(measure())
    finally:
        fakes.stop()
    return {"concurrency": concurrency, "cpu_ms_per_request": cpu_ms, "requests_per_s": rate,
            "ideal_requests_per_s": concurrency / 0.3}


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", default="1,2,4")
    parser.add_argument("--capacity", type=int, default=4, help="requests each endpoint generates at once")
    parser.add_argument("--latency", type=float, default=0.5, help="seconds per request")
    parser.add_argument("--in-flight", type=int, default=None,
                        help="the client's max_in_flight per endpoint (default: the capacity, as the issue asks)")
    parser.add_argument("--examples", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3, help="runs per endpoint count (the median is reported)")
    parser.add_argument("--ray", action="store_true", help="run the eval on a local Ray (agentkit eval --ray)")
    parser.add_argument("--actors", type=int, default=None, help="Ray actors (default: the machine's CPUs)")
    parser.add_argument("--progress", action="store_true", help="show the eval's progress bar on stderr, as "
                        "`agentkit eval` does (its redraws are client CPU too; on a terminal they cost the most)")
    parser.add_argument("--json", help="write the raw runs here")
    parser.add_argument("--transport", help="instead: the pool's own client CPU per request at these in-flight "
                        "counts to one endpoint (e.g. 8,32,96), no graph or eval")
    parser.add_argument("--one-client", action="store_true", help="with --transport: one httpx client per endpoint "
                        "(the layout before the connection shards), for comparison")
    parser.add_argument("--vs-raw", action="store_true", help="each round also runs the raw LangGraph + httpx "
                        "floor (module docstring) and reports what agentkit adds per request")
    args = parser.parse_args()
    if args.transport:
        rows = [transport(int(c), args.one_client) for c in args.transport.split(",")]
        layout = "one httpx client" if args.one_client else "connection shards"
        print(f"pool + HTTP client alone, one endpoint, 0.3 s per request ({layout})")
        print("in flight  client CPU ms/request  requests/s  ideal requests/s")
        for row in rows:
            print(f"{row['concurrency']:>9}  {row['cpu_ms_per_request']:>20.2f}  {row['requests_per_s']:>10.1f}  "
                  f"{row['ideal_requests_per_s']:>16.1f}")
        return
    counts = [int(c) for c in args.endpoints.split(",")]
    load = os.getloadavg()
    if args.ray:  # one local Ray for every run, started before the clocks (as a cluster would be)
        from agentkit.eval._ray_runner import connect
        from agentkit.eval.runner import RayOptions

        connect(RayOptions())
    warm = argparse.Namespace(**{**vars(args), "examples": 8})
    run_once(counts[0], warm)  # imports, the TLS context, pydantic's schema caches: once per process
    if args.vs_raw:
        run_raw(counts[0], warm)
    runs: dict[int, list[dict[str, Any]]] = {c: [] for c in counts}
    raw: dict[int, list[dict[str, Any]]] = {c: [] for c in counts}
    for _ in range(args.rounds):  # interleaved, so machine noise hits every count (and the floor) alike
        for count in counts:
            runs[count].append(run_once(count, args))
            print(json.dumps(runs[count][-1]), file=sys.stderr, flush=True)
            if args.vs_raw:
                raw[count].append(run_raw(count, args))
                print(json.dumps({"raw": raw[count][-1]}), file=sys.stderr, flush=True)
    base = _median([r["examples_per_s"] for r in runs[counts[0]]]) / counts[0]
    mode = "on a local Ray" if args.ray else "in one process"
    print(f"capacity {args.capacity} x {args.latency}s per endpoint, client in-flight limit "
          f"{args.in_flight or args.capacity}, {args.examples} examples, {args.rounds} rounds, "
          f"eval {mode}; load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, after: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("endpoints  examples/s  x linear  client CPU ms/req  driver CPU ms/req  Ray daemons ms/req  "
          "whole-call ex/s  requests per endpoint (last run)")
    for count in counts:
        med = {k: _median([r[k] for r in runs[count]]) for k in
               ("examples_per_s", "client_cpu_ms_per_request", "driver_cpu_ms_per_request",
                "ray_daemons_cpu_ms_per_request", "call_examples_per_s")}
        print(f"{count:>9}  {med['examples_per_s']:>10.2f}  {med['examples_per_s'] / (base * count):>8.2f}  "
              f"{med['client_cpu_ms_per_request']:>17.2f}  {med['driver_cpu_ms_per_request']:>17.2f}  "
              f"{med['ray_daemons_cpu_ms_per_request']:>18.2f}  {med['call_examples_per_s']:>15.2f}  "
              f"{runs[count][-1]['by_endpoint']}")
    print(f"ideal: {args.capacity / args.latency:.1f} examples/s per endpoint")
    if args.vs_raw:
        print("endpoints  raw LangGraph + httpx CPU ms/req  agentkit CPU ms/req  agentkit adds ms/req  "
              "median of per-round differences  raw examples/s")
        for count in counts:
            ours = [r["client_cpu_ms_per_request"] for r in runs[count]]
            floor = [r["client_cpu_ms_per_request"] for r in raw[count]]
            paired = [a - b for a, b in zip(ours, floor, strict=True)]
            print(f"{count:>9}  {_median(floor):>31.2f}  {_median(ours):>19.2f}  "
                  f"{_median(ours) - _median(floor):>20.2f}  {_median(paired):>31.2f}  "
                  f"{_median([r['examples_per_s'] for r in raw[count]]):>14.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "runs": runs, "raw": raw}, indent=2),
                                   encoding="utf-8")


if __name__ == "__main__":
    main()
