"""bench/engine.py part (e): llama.cpp's prefix cache under concurrency: one slot vs several
(``--arms slots``), or the admission rule that evicts the prefix a request would reuse whenever cells
run short vs the one that waits for a running request instead (``--arms wait``, one slot each).

An eval at ``--concurrency C`` keeps requests of different problems (and steps) in flight at once.
With one prefix slot the batch keeps only the last prompt started, so the problems evict each
other's prefix; with ``prefix_cache_slots`` of them each keeps its own. Workloads (``--workload``):

- ``linc-sentence``: per-sentence LINC with the grounded grammar on ProntoQA (k=5): ~100 requests
  per problem, each sharing the problem's long prefix, so interleaved problems thrash one slot;
- ``daslam``: DaSLaM on GSM8K, whose steps share one long prefix-first prompt head.

The evicting arm is the scheduler with its wait turned off (``_evicting``); nothing else differs.
Both arms run the same examples with the same knobs on their own LlamaCppBackend, alternating
which goes first each round. Figures per arm: prompt tokens decoded (the usage the eval summed)
and served from the prefix cache (the scheduler's counter; neither moves with load), wall seconds
and this process's CPU seconds (llama.cpp runs in it).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console

console = Console()

#: workload -> (pattern, dataset, knobs)
WORKLOADS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "linc-sentence": ("linc", "prontoqa", {"seed": 1, "k": 5, "translation": "sentence", "grounded": True}),
    "daslam": ("daslam", "gsm8k", {"seed": 1}),
}


def _arm(backend: Any, data: Any, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    from agentkit.eval.runner import evaluate

    sched = backend._scheduler
    reused, wall, cpu = sched.reused_tokens, time.perf_counter(), time.process_time()
    pattern, _, knobs = WORKLOADS[args.workload]
    outcome = evaluate(pattern, data, backend, out, knobs=knobs, concurrency=args.concurrency)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"wall_s": wall, "cpu_s": cpu, "reused_tokens": sched.reused_tokens - reused,
            "input_tokens": outcome.summary.input_tokens, "examples": outcome.summary.n}


def _evicting(backend: Any) -> Any:
    """``backend`` with the admission rule before the wait: a request that does not fit evicts
    cache entries, the one it would reuse last, even while other requests run."""
    sched = backend._scheduler
    make_room = sched._make_room
    sched._make_room = lambda job, free, *, others_running: make_room(job, free, others_running=False)
    return backend


def part_e(args: argparse.Namespace) -> dict[str, Any]:
    from agentkit.backends.llamacpp import LlamaCppBackend
    from agentkit.eval.runner import select_dataset

    data = select_dataset(WORKLOADS[args.workload][1], limit=args.cases or 2)
    threads = args.threads or 1
    if args.arms == "wait":
        arms = {"evict": _evicting(LlamaCppBackend(n_threads=threads, prefix_cache_slots=1)),
                "wait": LlamaCppBackend(n_threads=threads, prefix_cache_slots=1)}
    else:
        arms = {"1 slot": LlamaCppBackend(n_threads=threads, prefix_cache_slots=1),
                f"{args.slots} slots": LlamaCppBackend(n_threads=threads, prefix_cache_slots=args.slots)}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in arms}
    order = list(arms)
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds or 2):
            for name in order if r % 2 == 0 else order[::-1]:
                runs[name].append(_arm(arms[name], data, args, Path(tmp) / f"{r}-{name.split()[0]}"))
                console.log(f"round {r + 1} {name}: {runs[name][-1]}")
    summary = {name: {key: statistics.median(run[key] for run in rs)
                      for key in ("wall_s", "cpu_s", "reused_tokens", "input_tokens")}
               for name, rs in runs.items()}  # fmt: skip
    one, many = (summary[name] for name in order)
    for name, figures in summary.items():
        console.print(f"{name}: " + ", ".join(f"{k} {v:.1f}" for k, v in figures.items()))
    console.print(f"{order[1]} / {order[0]}: wall {many['wall_s'] / one['wall_s']:.3f}x, "
                  f"cpu {many['cpu_s'] / one['cpu_s']:.3f}x, prompt tokens decoded "
                  f"{many['input_tokens'] / one['input_tokens']:.3f}x")
    return {"summary": summary, "runs": runs}


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arms", choices=("slots", "wait"), default="slots",
                        help="(e) 1 slot vs --slots, or evicting vs waiting admission (1 slot each)")
    parser.add_argument("--slots", type=int, default=4, help="(e) prefix-cache slots of the second arm")
    parser.add_argument("--concurrency", type=int, default=2, help="(e) the eval's examples in flight")
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="linc-sentence", help="(e) what is evaluated")
