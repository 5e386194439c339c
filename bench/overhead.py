"""Per-node runtime overhead of an agentkit graph vs the same graph in raw LangGraph.

Both sides run the SAME pydantic state model and the SAME async node functions (no model calls),
so the difference is purely agentkit's wrapping: the ``_bind``/``run`` closures around each node,
the per-node tracing span, the declared-writes check, and the workflow span + input coercion +
output validation in ``CompiledGraph.ainvoke``.

Scenarios:

(a) chain   -- 20 nodes in a line, each ``{"x": state.x + 1}``.
(b) fan-out -- ``fan`` -> 5 concurrent branches appending to ``Annotated[list[str], Collect()]``
               -> ``join`` (7 nodes). The raw LangGraph graph uses the same Annotated reducer.

The implementations are measured in one process, interleaved round by round (the order rotates
every round: A B, B A, ...) so drift and noise hit all of them alike. Each round times a batch of
``--invocations`` sequential ``ainvoke`` calls per implementation, on two clocks: wall time and
the process's CPU time. The workload is single-threaded and CPU-bound, so on an idle machine the
two agree; on a shared machine CPU time is the one other processes cannot inflate, and it is the
clock the target is judged on. Reported figures are medians over rounds of the per-invocation time.
Tracing is unconfigured (the OTel API's no-op spans): the default case and the one the 1.1x target
applies to.

(c) real tracing: a subprocess (so the global tracer provider cannot leak into the main
measurement) calls ``agentkit.tracing.configure(trace_file=<tmp>)`` and repeats (a) and (b),
interleaved with raw LangGraph, to show what exporting every span as JSON lines costs. It is
reported as a separate ratio, not part of the target.

``--breakdown`` adds two diagnostic variants that monkeypatch ``agentkit.tracing.span`` at run time
(no file is changed): "spans skipped when no provider is configured" (the proposed fix) and "no
spans at all" (the floor: what the closures and ``ainvoke`` envelope cost on their own).

Usage::

    python bench/overhead.py [--rounds 30] [--invocations 20] [--warmup 50]
                             [--json PATH] [--no-traced] [--breakdown] [--check]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from typing import Annotated, Any

from langgraph.graph import END as LG_END
from langgraph.graph import START as LG_START
from langgraph.graph import StateGraph
from opentelemetry import trace
from pydantic import BaseModel

from agentkit import END, START, Graph, tracing
from agentkit.reducers import Collect

TARGET = 1.10
CHAIN_LEN = 20
FAN_WIDTH = 5
CLOCKS = ("cpu", "wall")


# -- shared state models and node functions ------------------------------------------------------


class ChainState(BaseModel):
    x: int


class FanState(BaseModel):
    x: int
    y: int = 0
    items: Annotated[list[str], Collect()] = []
    n: int = 0


def _chain_step() -> Callable[[ChainState], Any]:
    async def step(state: ChainState) -> dict[str, Any]:
        return {"x": state.x + 1}

    return step


async def fan(state: FanState) -> dict[str, Any]:
    return {"y": state.x * 2}


def _branch(i: int) -> Callable[[FanState], Any]:
    async def branch(state: FanState) -> dict[str, Any]:
        return {"items": [f"b{i}:{state.y}"]}

    return branch


async def join(state: FanState) -> dict[str, Any]:
    return {"n": len(state.items)}


CHAIN_FNS = [_chain_step() for _ in range(CHAIN_LEN)]
BRANCH_FNS = [_branch(i) for i in range(FAN_WIDTH)]
BRANCHES = [f"b{i}" for i in range(FAN_WIDTH)]


# -- the same graphs, built twice ----------------------------------------------------------------


def agentkit_chain() -> Any:
    g = Graph("chain", ChainState)
    for i, fn in enumerate(CHAIN_FNS):
        g.add_node(f"n{i}", fn, reads=["x"], writes=["x"])
    g.add_edge(START, "n0")
    for i in range(CHAIN_LEN - 1):
        g.add_edge(f"n{i}", f"n{i + 1}")
    g.add_edge(f"n{CHAIN_LEN - 1}", END)
    return g.compile()


def raw_chain() -> Any:
    b = StateGraph(ChainState)
    for i, fn in enumerate(CHAIN_FNS):
        b.add_node(f"n{i}", fn)
    b.add_edge(LG_START, "n0")
    for i in range(CHAIN_LEN - 1):
        b.add_edge(f"n{i}", f"n{i + 1}")
    b.add_edge(f"n{CHAIN_LEN - 1}", LG_END)
    return b.compile()


def agentkit_fanout() -> Any:
    g = Graph("fanout", FanState)
    g.add_node("fan", fan, reads=["x"], writes=["y"])
    for name, fn in zip(BRANCHES, BRANCH_FNS):
        g.add_node(name, fn, reads=["y"], writes=["items"])
    g.add_node("join", join, reads=["items"], writes=["n"])
    g.add_edge(START, "fan")
    g.add_edge("fan", BRANCHES)
    g.add_edge(BRANCHES, "join")
    g.add_edge("join", END)
    return g.compile()


def raw_fanout() -> Any:
    b = StateGraph(FanState)
    b.add_node("fan", fan)
    for name, fn in zip(BRANCHES, BRANCH_FNS):
        b.add_node(name, fn)
    b.add_node("join", join)
    b.add_edge(LG_START, "fan")
    for name in BRANCHES:
        b.add_edge("fan", name)
    b.add_edge(BRANCHES, "join")
    b.add_edge("join", LG_END)
    return b.compile()


# Same input and the same config on both sides (agentkit passes recursion_limit=100 to LangGraph).
INPUT = {"x": 1}
CONFIG = {"recursion_limit": 100}


@dataclass
class Variant:
    label: str
    invoke: Callable[[], Any]  # returns a coroutine: one full graph invocation
    patch: Callable[[], contextlib.AbstractContextManager[None]] = contextlib.nullcontext


@dataclass
class Scenario:
    name: str
    nodes: int
    variants: list[Variant]


# -- diagnostic patches for --breakdown (runtime only; agentkit's files are untouched) ----------

_NOOP_SPAN = contextlib.nullcontext(trace.INVALID_SPAN)
_ORIGINAL_SPAN = tracing.span


def _span_skipped_without_provider(name: str, attributes: dict[str, Any] | None = None, kind: Any = None) -> Any:
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return _NOOP_SPAN
    return _ORIGINAL_SPAN(name, attributes, kind or trace.SpanKind.INTERNAL)


def _no_span(name: str, attributes: dict[str, Any] | None = None, kind: Any = None) -> Any:
    return _NOOP_SPAN


def _patched_span(replacement: Callable[..., Any]) -> Callable[[], contextlib.AbstractContextManager[None]]:
    @contextlib.contextmanager
    def patch() -> Iterator[None]:
        tracing.span = replacement  # type: ignore[assignment]  # graph.py looks it up per call
        try:
            yield
        finally:
            tracing.span = _ORIGINAL_SPAN  # type: ignore[assignment]

    return patch


def scenarios(agentkit_label: str = "agentkit", breakdown: bool = False) -> list[Scenario]:
    out = []
    for name, nodes, ak, raw in (
        ("chain", CHAIN_LEN, agentkit_chain(), raw_chain()),
        ("fanout", FAN_WIDTH + 2, agentkit_fanout(), raw_fanout()),
    ):
        variants = [
            Variant("raw", lambda raw=raw: raw.ainvoke(INPUT, config=CONFIG)),
            Variant(agentkit_label, lambda ak=ak: ak.ainvoke(INPUT)),
        ]
        if breakdown:
            variants += [
                Variant("ak_skip_span_if_unconfigured", lambda ak=ak: ak.ainvoke(INPUT),
                        _patched_span(_span_skipped_without_provider)),
                Variant("ak_no_spans", lambda ak=ak: ak.ainvoke(INPUT), _patched_span(_no_span)),
            ]  # fmt: skip
        out.append(Scenario(name, nodes, variants))
    return out


async def check_equivalent(scens: list[Scenario]) -> None:
    """Both implementations must compute the same state, or the comparison means nothing."""
    for sc in scens:
        states = []
        for v in sc.variants:
            with v.patch():
                r = await v.invoke()
            d = r.model_dump() if isinstance(r, BaseModel) else dict(r)
            if "items" in d:  # branch arrival order is not part of the contract
                d["items"] = sorted(d["items"])
            states.append((v.label, d))
        for label, d in states[1:]:
            if d != states[0][1]:
                raise SystemExit(f"{sc.name}: {label} computed {d}, raw LangGraph computed {states[0][1]}")


# -- measurement -------------------------------------------------------------------------------


async def _time_batch(invoke: Callable[[], Any], n: int) -> tuple[float, float]:
    """(CPU seconds, wall seconds) per invocation, averaged over ``n`` sequential invocations."""
    gc.collect()
    c0, w0 = time.process_time(), time.perf_counter()
    for _ in range(n):
        await invoke()
    return (time.process_time() - c0) / n, (time.perf_counter() - w0) / n


def _quartiles(xs: list[float]) -> tuple[float, float, float]:
    if len(xs) < 2:
        return xs[0], xs[0], xs[0]
    q = statistics.quantiles(xs, n=4)
    return q[0], statistics.median(xs), q[2]


async def measure(scens: list[Scenario], *, rounds: int, invocations: int, warmup: int) -> dict[str, Any]:
    """Interleave every variant per round, rotating which goes first; summarise against "raw"."""
    for sc in scens:
        for _ in range(warmup):
            for v in sc.variants:
                with v.patch():
                    await v.invoke()
    samples = {sc.name: {v.label: {c: [] for c in CLOCKS} for v in sc.variants} for sc in scens}
    for r in range(rounds):
        for sc in scens:
            k = r % len(sc.variants)
            for v in sc.variants[k:] + sc.variants[:k]:
                with v.patch():
                    cpu, wall = await _time_batch(v.invoke, invocations)
                samples[sc.name][v.label]["cpu"].append(cpu)
                samples[sc.name][v.label]["wall"].append(wall)

    out: dict[str, Any] = {}
    for sc in scens:
        base = samples[sc.name]["raw"]
        summary: dict[str, Any] = {"nodes": sc.nodes, "variants": {}}
        for v in sc.variants:
            s = samples[sc.name][v.label]
            per_clock = {}
            for c in CLOCKS:
                med, raw_med = statistics.median(s[c]), statistics.median(base[c])
                p25, pmed, p75 = _quartiles([a / b for a, b in zip(s[c], base[c])])
                per_clock[c] = {
                    "median_s": med,
                    "per_node_s": med / sc.nodes,
                    "overhead_per_node_s": (med - raw_med) / sc.nodes,
                    "ratio": med / raw_med,  # ratio of medians: the headline figure
                    "paired_ratio_p25": p25,  # per-round ratios, to show the spread
                    "paired_ratio_median": pmed,
                    "paired_ratio_p75": p75,
                    "samples_s": s[c],
                }
            summary["variants"][v.label] = per_clock
        out[sc.name] = summary
    return out


def noop_span_cost(number: int = 50_000) -> float:
    """CPU seconds for one ``with tracing.span(...)`` while no tracer provider is configured."""
    attrs = {"agentkit.node.kind": "function", "agentkit.node.name": "n0"}

    def one() -> None:
        with tracing.span("node n0", attrs):
            pass

    return min(timeit.repeat(one, number=number, repeat=5, timer=time.process_time)) / number


# -- the traced subprocess ---------------------------------------------------------------------


def _traced_worker(rounds: int, invocations: int, warmup: int) -> None:
    with tempfile.TemporaryDirectory(prefix="agentkit-bench-") as tmp:
        path = os.path.join(tmp, "spans.jsonl")
        provider = tracing.configure(trace_file=path)
        assert provider is not None
        result = asyncio.run(
            measure(scenarios("agentkit_traced"), rounds=rounds, invocations=invocations, warmup=warmup)
        )
        provider.shutdown()
        with open(path, encoding="utf-8") as fh:
            result["spans_written"] = sum(1 for _ in fh)
    json.dump(result, sys.stdout)


def run_traced_subprocess(rounds: int, invocations: int, warmup: int) -> dict[str, Any]:
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--_traced-worker",
        "--rounds", str(rounds),
        "--invocations", str(invocations),
        "--warmup", str(warmup),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"traced subprocess failed ({proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout)


# -- reporting ---------------------------------------------------------------------------------


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:,.1f}"


def _environment() -> dict[str, Any]:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu)
    except OSError:
        pass
    versions = {}
    for dist in ("langgraph", "langchain-core", "pydantic", "opentelemetry-api", "opentelemetry-sdk"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "loadavg_at_start": load,
        "versions": versions,
    }


def _table(title: str, block: dict[str, Any], variant: str, target: float | None) -> Any:
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    cols = ["scenario", "clock", "raw/inv", f"{variant}/inv", "raw/node", f"{variant}/node", "Δ/node", "ratio",
            "per-round p25–p75"]  # fmt: skip
    if target is not None:
        cols.append(f"≤{target}x")
    for col in cols:
        t.add_column(col, justify="left" if col in ("scenario", "clock") else "right")
    for name, sc in block.items():
        if not isinstance(sc, dict) or "variants" not in sc:
            continue
        for clock in CLOCKS:
            raw, v = sc["variants"]["raw"][clock], sc["variants"][variant][clock]
            row = [
                f"{name} ({sc['nodes']})",
                clock,
                _us(raw["median_s"]),
                _us(v["median_s"]),
                _us(raw["per_node_s"]),
                _us(v["per_node_s"]),
                _us(v["overhead_per_node_s"]),
                f"{v['ratio']:.3f}x",
                f"{v['paired_ratio_p25']:.3f}–{v['paired_ratio_p75']:.3f}",
            ]
            if target is not None:
                ok = v["ratio"] <= target
                mark = ("[green]yes[/]" if ok else "[red]NO[/]") if clock == "cpu" else ("(yes)" if ok else "(no)")
                row.append(mark)
            t.add_row(*row)
    return t


def print_report(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    cfg = result["config"]
    console = Console(width=None if sys.stdout.isatty() else 130)
    console.print(
        _table(
            f"(a)/(b) agentkit vs raw LangGraph, tracing unconfigured: medians of {cfg['rounds']} interleaved "
            f"rounds × {cfg['invocations']} invocations, µs; target on CPU time",
            result["untraced"],
            "agentkit",
            TARGET,
        )
    )
    console.print(
        f"no-op tracing.span() enter+exit with no provider configured (micro-benchmark, CPU): "
        f"{_us(result['noop_span_s'])} µs per span"
    )
    if cfg["breakdown"]:
        t = Table(title="Breakdown: tracing.span monkeypatched at run time (diagnostic), CPU time, µs",
                  title_justify="left")  # fmt: skip
        for col in ("scenario", "variant", "per inv", "Δ/node vs raw", "ratio"):
            t.add_column(col, justify="left" if col in ("scenario", "variant") else "right")
        for name, sc in result["untraced"].items():
            for label, v in sc["variants"].items():
                c = v["cpu"]
                t.add_row(name, label, _us(c["median_s"]), _us(c["overhead_per_node_s"]), f"{c['ratio']:.3f}x")
        console.print(t)
    if "traced" in result:
        console.print(
            _table(
                "(c) real tracing, configure(trace_file=...) in a subprocess: not part of the target, µs",
                result["traced"],
                "agentkit_traced",
                None,
            )
        )
        console.print(f"spans written to the trace file: {result['traced']['spans_written']:,}")
    env = result["environment"]
    load = env["loadavg_at_start"]
    console.print(
        f"[dim]{env['date']} · Python {env['python']} · {env['nproc']} CPU · {env['cpu']} · "
        f"langgraph {env['versions']['langgraph']} · load avg {load[0]:.2f} · wall {result['wall_s']:.1f} s[/]"
        if load
        else f"[dim]{env['date']} · wall {result['wall_s']:.1f} s[/]"
    )


# -- main --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=30, help="interleaved rounds (default 30)")
    ap.add_argument("--invocations", type=int, default=20, help="sequential invocations timed per round (default 20)")
    ap.add_argument("--warmup", type=int, default=50, help="untimed invocations per variant first (default 50)")
    ap.add_argument("--json", metavar="PATH", help="also write every sample and summary to PATH")
    ap.add_argument("--no-traced", action="store_true", help="skip the real-tracing subprocess (c)")
    ap.add_argument("--breakdown", action="store_true", help="add diagnostic variants that isolate the span cost")
    ap.add_argument("--check", action="store_true", help=f"exit 1 if agentkit > {TARGET}x raw (CPU time)")
    ap.add_argument("--_traced-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--checkpoint", action="store_true",
                    help="instead: the checkpoint cost per node (SQLite; PostgreSQL with --postgres DSN)")
    ap.add_argument("--postgres", metavar="DSN", help="with --checkpoint: also measure this PostgreSQL database")
    args = ap.parse_args(argv)
    if args.rounds < 1 or args.invocations < 1 or args.warmup < 0:
        ap.error("--rounds and --invocations must be >= 1, --warmup >= 0")

    if args._traced_worker:
        _traced_worker(args.rounds, args.invocations, args.warmup)
        return 0
    if args.checkpoint:  # its own case: the cost of durability, not of the runtime layer
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import _checkpoint_cost

        figures = _checkpoint_cost.main(args.postgres)
        if args.json:
            with open(args.json, "w", encoding="utf-8") as fh:
                json.dump(figures, fh, indent=2)
        return 0

    started = time.perf_counter()
    env = _environment()
    scens = scenarios(breakdown=args.breakdown)
    asyncio.run(check_equivalent(scens))
    untraced = asyncio.run(measure(scens, rounds=args.rounds, invocations=args.invocations, warmup=args.warmup))
    result: dict[str, Any] = {
        "command": " ".join(["python", "bench/overhead.py", *(sys.argv[1:] if argv is None else argv)]),
        "config": {
            "rounds": args.rounds,
            "invocations": args.invocations,
            "warmup": args.warmup,
            "target": TARGET,
            "target_clock": "cpu",
            "breakdown": args.breakdown,
        },
        "environment": env,
        "untraced": untraced,
        "noop_span_s": noop_span_cost(),
    }
    if not args.no_traced:
        result["traced"] = run_traced_subprocess(args.rounds, args.invocations, args.warmup)
    result["wall_s"] = time.perf_counter() - started
    result["target_met"] = all(sc["variants"]["agentkit"]["cpu"]["ratio"] <= TARGET for sc in untraced.values())

    print_report(result)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)
    return 1 if args.check and not result["target_met"] else 0


if __name__ == "__main__":
    sys.exit(main())
