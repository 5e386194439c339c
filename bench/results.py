"""The runs behind docs/RESULTS.md: every pattern with its baselines, resumable, one backend at a time.

Each run is one ``agentkit eval PATTERN --baselines`` into ``docs/runs/<backend>/<name>``: the pattern,
``direct``, ``cot``, ``sc`` at the pattern's budget and, on labelled sets, ``majority-label``, with
the paired comparisons in its comparison.json and report.md. Rerunning resumes every unfinished run
(long ones can be stopped at any point); ``--only`` picks runs by name. ``--report`` prints each
finished run's report.md under one heading per run, the raw material of RESULTS.md.

    python bench/results.py [--backend llamacpp | --backend vllm --base-url URL --concurrency 4
                             [--max-in-flight 24] [--request-timeout 1800]]
                            [--only mccot-gsm8k,linc-prontoqa] [--out docs/runs] [--dry-run]
    python bench/results.py --report [--backend vllm]
    python bench/results.py --page docs/RESULTS.md [--check]   # the page's tables, from the runs

``--page`` rewrites every generated table of the page from the runs (bench/_results_page.py says
how a table names its runs); with ``--check`` it changes nothing and fails naming every table that
differs from its runs and every run whose comparison.json its results.jsonl no longer reproduces.

The settings are the papers' where this machine allows it (LINC: K=10 with the 8 FOLIO-train shots);
example counts are 100, or 50 for LINC, whose K=10 samples of long programs take ~1-2 minutes an
example here (issue 12, item 7). Every run uses seed 1.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: bench/ is importable
from bench import _results_page  # noqa: E402
from bench._eval_cli import eval_command  # noqa: E402
from bench.linc_variants import report as linc_report  # noqa: E402


@dataclass(frozen=True)
class Run:
    name: str
    pattern: str
    dataset: str
    limit: int
    options: tuple[str, ...] = field(default=())


_LINC = ("--samples", "10", "-o", 'shots="folio8"')
RUNS = (
    Run("mccot-gsm8k", "mccot", "gsm8k", 100, ("--samples", "5")),
    Run("mccot-gsm8k-easy", "mccot", "gsm8k-easy", 100, ("--samples", "5")),
    Run("daslam-gsm8k", "daslam", "gsm8k", 100),
    Run("maj-gsm8k-judge", "maj", "gsm8k-judge", 100),  # 25 questions x 4 candidates, resampled by question
    Run("linc-prontoqa", "linc", "prontoqa", 50, _LINC),
    Run("linc-proofwriter-360", "linc", "proofwriter-360", 50, _LINC),
    Run("linc-folio-clean", "linc", "folio-clean", 50, _LINC),
    # 100 of the 200 rows choose the threshold (dev_test_split); the other 100 are scored. On full GSM8K
    # the 135M model answered none of 40 dev rows right at any threshold, so cost per success, the
    # calibration's objective, was undefined there (llama.cpp, 2026-12-01)
    Run("cascade-gsm8k-easy", "cascade", "gsm8k-easy", 200, ("--calibrate-on", "gsm8k-easy:100")),
)


def command(run: Run, out: Path, args: argparse.Namespace) -> list[str]:
    """``agentkit eval`` for one run, resuming it when its directory was started."""
    server = [*(["--max-in-flight", str(args.max_in_flight)] if getattr(args, "max_in_flight", None) else []),
              *(["--request-timeout", f"{args.request_timeout:g}"] if getattr(args, "request_timeout", None) else [])]
    return eval_command(run.pattern, run.dataset, run.limit, out / args.backend / run.name, args.backend,
                        args.base_url, ["--seed", "1", "--baselines", "--concurrency", str(args.concurrency),
                                        *server, *run.options])


def selected(only: str | None) -> list[Run]:
    if not only:
        return list(RUNS)
    names = [n for n in only.split(",") if n]
    known = {run.name: run for run in RUNS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown run(s) {', '.join(unknown)}; the runs are {', '.join(known)}")
    return [known[n] for n in names]


def report(out: Path, backend: str, runs: list[Run]) -> str:
    """Every finished run's report.md, one heading each (a run still going is named as such)."""
    parts = []
    for run in runs:
        page = out / backend / run.name / "report.md"
        parts.append(f"## {run.name} ({backend})\n")
        parts.append(page.read_text(encoding="utf-8") if page.is_file() else "(not finished)\n")
    return "\n".join(parts)


def page(path: Path, out: Path, *, check: bool) -> int:
    """Sync ``path``'s tables with the runs under ``out`` (or, with ``check``, report the stale ones)."""
    text = path.read_text(encoding="utf-8")
    try:
        if check:
            stale = _results_page.stale(text, out, linc_report)
            for why in stale:
                sys.stderr.write(f"{path}: {why}\n")
            return 1 if stale else 0
        path.write_text(_results_page.sync(text, out, linc_report), encoding="utf-8")
    except _results_page.PageError as exc:
        sys.stderr.write(f"{path}: {exc}\n")
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "runs")
    ap.add_argument("--backend", default="llamacpp")
    ap.add_argument("--base-url", action="append")
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--max-in-flight", type=int, help="sequences each server generates at once (vLLM/openai)")
    ap.add_argument("--request-timeout", type=float,
                    help="seconds a sent request may take (vLLM/openai; default 300): K=10 programs of an "
                         "8-shot prompt queued behind others on a CPU server need more")
    ap.add_argument("--only", help="comma-separated run names (default: every run)")
    ap.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    ap.add_argument("--report", action="store_true", help="print the finished runs' reports and exit")
    ap.add_argument("--page", type=Path, help="rewrite this page's generated tables from the runs and exit")
    ap.add_argument("--check", action="store_true", help="with --page: change nothing, fail if a table differs")
    args = ap.parse_args(argv)
    if args.page:
        return page(args.page, args.out, check=args.check)
    runs = selected(args.only)
    if args.report:
        sys.stdout.write(report(args.out, args.backend, runs))
        return 0
    for run in runs:
        line = command(run, args.out, args)
        if args.dry_run:
            sys.stdout.write(" ".join(line[1:]) + "\n")
            continue
        subprocess.run(line, check=True, cwd=ROOT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
