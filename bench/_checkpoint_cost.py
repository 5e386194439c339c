"""What checkpointing costs per node (SQLite, PostgreSQL), as a ratio to an uncheckpointed run.

The graph is a chain of plain function nodes (no model calls), so the figure is the runtime's own
cost: agentkit checkpoints synchronously after every step, which is one write per node. A run's cost
also has a fixed part (reading the thread, the first and last checkpoints), so the per-node cost is
measured as the slope between a short and a long chain: (T(long) - T(short)) / (long - short). The
store is opened once (as a long-lived process would hold it) and every run is a new thread.

    python -m bench.overhead --checkpoint [--postgres DSN]
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from agentkit import persistence
from agentkit.graph import END, START, Graph

SHORT, LONG = 2, 12


class _Chain(BaseModel):
    x: int


def _step(s: _Chain) -> dict[str, Any]:
    return {"x": s.x + 1}


def _graph(n: int, store: Any) -> Any:
    g = Graph(f"chain{n}", _Chain)
    for i in range(n):
        g.add_node(f"n{i}", _step, reads=["x"], writes=["x"])
    g.add_edge(START, "n0")
    for i in range(n - 1):
        g.add_edge(f"n{i}", f"n{i + 1}")
    g.add_edge(f"n{n - 1}", END)
    return g.compile(checkpointer=store)


async def _median_run_s(compiled: Any, runs: int, durable: bool) -> float:
    times = []
    for _ in range(runs):
        kw = {"thread_id": uuid.uuid4().hex} if durable else {}
        start = time.perf_counter()
        await compiled.ainvoke({"x": 0}, **kw)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


async def _case(store: Any, runs: int, warmup: int) -> dict[str, float]:
    durable = store is not None
    short, long = _graph(SHORT, store), _graph(LONG, store)
    await _median_run_s(short, warmup, durable)
    await _median_run_s(long, warmup, durable)
    t_short = await _median_run_s(short, runs, durable)
    t_long = await _median_run_s(long, runs, durable)
    return {"run_s_short": t_short, "run_s_long": t_long, "per_node_s": (t_long - t_short) / (LONG - SHORT)}


async def measure(*, postgres: str | None, runs: int = 60, warmup: int = 10) -> dict[str, Any]:
    out: dict[str, Any] = {"nodes": [SHORT, LONG], "runs": runs,
                           "none": await _case(None, runs, warmup)}
    with tempfile.TemporaryDirectory() as tmp:
        stores = {"sqlite": persistence.sqlite(Path(tmp) / "bench.db")}
        if postgres:
            stores["postgres"] = persistence.postgres(postgres)
        for name, store in stores.items():
            async with store.open():  # held open: the runs share its connection
                out[name] = await _case(store, runs, warmup)
    base = out["none"]
    for name in ("sqlite", "postgres"):
        if name in out:
            case = out[name]
            case["per_node_ratio"] = case["per_node_s"] / base["per_node_s"]
            case["run_ratio_long"] = case["run_s_long"] / base["run_s_long"]
    return out


def report(result: dict[str, Any]) -> str:
    lines = [(f"Checkpoint cost: chains of {SHORT} and {LONG} function nodes, no model calls, median of "
              f"{result['runs']} runs each; per node = slope between the two lengths."),
             "", "| store | per node (µs) | × uncheckpointed per node | 12-node run (ms) | × uncheckpointed run |",
             "|---|---|---|---|---|"]
    for name in ("none", "sqlite", "postgres"):
        if name not in result:
            continue
        c = result[name]
        lines.append(f"| {name} | {c['per_node_s'] * 1e6:.0f} | {c.get('per_node_ratio', 1.0):.1f} | "
                     f"{c['run_s_long'] * 1e3:.2f} | {c.get('run_ratio_long', 1.0):.1f} |")
    return "\n".join(lines)


def main(postgres: str | None) -> dict[str, Any]:
    result = asyncio.run(measure(postgres=postgres))
    print(report(result))
    return result
