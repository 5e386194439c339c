"""Eval throughput over a pool of 1, 2 and 4 endpoints that model capacity, and agentkit's client CPU per request.

Each endpoint is a local HTTP server (tests/unit/fake_openai_server.py, in a child process so its
CPU is not the client's) that generates at most C requests at once, each taking L seconds, and
queues the rest: the shape of a vLLM replica at its max-num-seqs. `agentkit eval direct` runs N
GSM8K rows through a PoolBackend over E endpoints with enough concurrency to fill them all. With
perfect scaling, E endpoints give E times one endpoint's throughput; the client's CPU time per
request is the process CPU of the eval (graph, validation, routing, HTTP) over its requests.

    .venv/bin/python bench/scale.py [--endpoints 1,2,4] [--capacity 4] [--latency 0.2] [--examples 160] [--json F]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_SERVE = """
import sys, time
from tests.unit.fake_openai_server import FakeOpenAI, Reply
count, capacity, latency = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
fakes = [FakeOpenAI(default=Reply(delay_s=latency, texts=['{"answer":"4"}']), capacity=capacity).__enter__()
         for _ in range(count)]
print(" ".join(f.url for f in fakes), flush=True)
sys.stdin.read()  # until the bench closes our stdin
"""


def _endpoints(count: int, capacity: int, latency: float) -> tuple[subprocess.Popen[str], list[str]]:
    proc = subprocess.Popen([sys.executable, "-c", _SERVE, str(count), str(capacity), str(latency)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)  # fmt: skip
    assert proc.stdout is not None
    return proc, proc.stdout.readline().split()


def run_once(count: int, args: argparse.Namespace) -> dict[str, Any]:
    from agentkit.backends.pool import PoolBackend
    from agentkit.backends.vllm_server import VLLMServerBackend
    from agentkit.eval.runner import evaluate, select_dataset

    proc, urls = _endpoints(count, args.capacity, args.latency)
    try:
        backend = PoolBackend([VLLMServerBackend(u, model="fake-model", max_in_flight=args.capacity) for u in urls])
        data = select_dataset("gsm8k")
        data = data.model_copy(update={"examples": data.examples[: args.examples]})
        with tempfile.TemporaryDirectory() as out:
            wall, cpu = time.perf_counter(), time.process_time()
            outcome = evaluate("direct", data, backend, Path(out) / "run", concurrency=2 * count * args.capacity)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        assert outcome.complete and outcome.summary.n == args.examples
        requests = sum(backend.requests_by_endpoint.values())
        return {"endpoints": count, "wall_s": wall, "examples_per_s": args.examples / wall,
                "client_cpu_ms_per_request": 1000 * cpu / requests, "requests": requests,
                "by_endpoint": list(backend.requests_by_endpoint.values())}
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", default="1,2,4")
    parser.add_argument("--capacity", type=int, default=4, help="requests each endpoint generates at once")
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per request")
    parser.add_argument("--examples", type=int, default=160)
    parser.add_argument("--rounds", type=int, default=3, help="runs per endpoint count (the median is reported)")
    parser.add_argument("--json", help="write the raw runs here")
    args = parser.parse_args()
    counts = [int(c) for c in args.endpoints.split(",")]
    runs: dict[int, list[dict[str, Any]]] = {c: [] for c in counts}
    for _ in range(args.rounds):  # interleaved, so machine noise hits every count alike
        for count in counts:
            runs[count].append(run_once(count, args))

    def median(values: list[float]) -> float:
        ordered = sorted(values)
        return ordered[len(ordered) // 2]

    base = median([r["examples_per_s"] for r in runs[counts[0]]]) / counts[0]
    print(f"capacity {args.capacity} x {args.latency}s per endpoint, {args.examples} examples, {args.rounds} rounds")
    print("endpoints  examples/s  x linear  client CPU ms/request  requests per endpoint (last run)")
    for count in counts:
        rate = median([r["examples_per_s"] for r in runs[count]])
        cpu = median([r["client_cpu_ms_per_request"] for r in runs[count]])
        print(f"{count:>9}  {rate:>10.2f}  {rate / (base * count):>8.2f}  {cpu:>21.2f}  {runs[count][-1]['by_endpoint']}")
    print(f"ideal: {args.capacity / args.latency:.1f} examples/s per endpoint")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "runs": runs}, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
