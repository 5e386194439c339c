"""LINC's variants side by side on the same examples (issue 17's evaluation), resumable.

Per dataset, each generation variant (paper mode, per-sentence, per-sentence + grounded grammar,
per-sentence over each sentence's own words, that with the sentence's polarity, that with quantifier
restrictors, and that with the ¬ where the "not" is) runs on the real model through a recording
backend: every generation is appended (fsync'd) to the variant's cassette in the run directory. Its
twin with the degenerate-program checks (``checks=true``) then runs on that cassette alone, so the
two differ in the checks and nothing else: the same programs, voted with and without the refusals.
A words-mode variant has a second twin, ``+vote``, that votes each sentence's formula across the
samples before the prover (``vote="sentence"``), again on the same cassette.
The baselines (direct, cot, sc at the paper run's K, majority-label) run through ``agentkit eval``
itself. The per-sentence variants make many calls per example, so their budget-matched vote is its
own run, ``sc-sentence-budget``: sc with K = ceil(mean samples per example) of the finished
``grounded`` run (the rule ``agentkit eval --baselines`` uses), recorded in its run.json; it runs
once that run has every selected example. Every directory is an ordinary eval run: ``agentkit eval
--compare`` pairs them, and rerunning this script resumes.

    python bench/linc_variants.py --out runs/linc-variants --limit 50 --samples 5 --seed 1 \\
        [--datasets prontoqa,proofwriter-360,folio-clean]
        [--variants paper,sentence,grounded,words,polarity,restrictors,negation-scope] \\
        [--baselines] [--budget-baseline] [--concurrency 2]
        [--backend llamacpp | --backend vllm --base-url URL --concurrency 16 --max-in-flight 48
         --request-timeout 1800]
    python bench/linc_variants.py --out runs/linc-variants --report   # the tables, from finished runs
    python bench/linc_variants.py --out runs/linc-variants --pack     # gzip the cassettes, to commit them

The report gives, per dataset, every run's accuracy, balanced accuracy, degenerate and
inconsistent shares and answer distribution; then three families of paired comparisons (exact
McNemar, Holm-corrected within each family): every variant against paper mode; every LINC run
against its budget-matched vote (paper mode's against ``sc``, the per-sentence runs' against
``sc-sentence-budget``, whose K is at least each of their samples per example); and every LINC
run against the best of the direct, cot and sc baselines (the pairs the budget family already
shows left out).

The cassettes grow to megabytes per dataset (every sentence request holds the worked examples),
but compress ~45x. ``--pack`` writes each as ``<variant>.cassette.jsonl.gz`` (the form kept in
git; the plain files are ignored) and a run restores a missing plain cassette from it, so a run
packed at one stop resumes at the next from a fresh clone, and its twin still finds every
generation.

Two processes with disjoint ``--variants``/``--datasets`` use a 2-core machine fully (llama.cpp
decodes on one thread).
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from agentkit.backends import make_backend
from agentkit.backends.replay import ReplayBackend
from agentkit.cli._eval_baselines import sc_budget
from agentkit.eval.comparison import compare_dirs
from agentkit.eval.metrics import NO_PREDICTION, load_summary, read_results
from agentkit.eval.report import _comparisons, _pct, _table
from agentkit.eval.runner import evaluate, select_dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: bench/ is importable
from bench._eval_cli import eval_command  # noqa: E402

DATASETS = ("prontoqa", "proofwriter-360", "folio-clean")
VARIANTS: dict[str, dict[str, Any]] = {
    "paper": {},
    "sentence": {"translation": "sentence"},
    "grounded": {"translation": "sentence", "grounded": True},
    "words": {"translation": "words"},
    "polarity": {"translation": "words", "polarity": True},
    "restrictors": {"translation": "words", "polarity": True, "restrictors": True},
    "negation-scope": {"translation": "words", "polarity": True, "restrictors": True, "negation_scope": True},
}
BASELINES = ("direct", "cot", "sc", "majority-label")
#: sc at the per-sentence variants' budget, and the run whose samples per example set its K
BUDGET_RUN, BUDGET_SOURCE = "sc-sentence-budget", "grounded"
#: the words-mode variants, whose samples share each sentence's names: their twin ``+vote`` votes each
#: sentence's formula before the prover (``vote="sentence"``) on the same cassette
VOTED = tuple(v for v, knobs in VARIANTS.items() if knobs.get("translation") == "words")
#: the vote each LINC run is budget-matched with
#: (``words`` makes K samples per sentence; ``grounded`` K more for its vocabulary, so the budget run's
#: K is at least words' samples per example: a conservative match)
MATCHED = {"paper": "sc", **{variant: BUDGET_RUN for variant in VARIANTS if variant != "paper"}}

log = logging.getLogger("linc_variants")


def _home(out: Path, dataset: str) -> Path:
    """The dataset's directory under ``out``: its name, or a data file's stem."""
    return out / (Path(dataset).stem if dataset.endswith((".json", ".jsonl")) else dataset)


def _unpacked(cassette: Path) -> Path:
    """``cassette``, restored from its packed copy when only that is there (see the module docstring)."""
    packed = cassette.with_name(cassette.name + ".gz")
    if not cassette.exists() and packed.exists():
        with gzip.open(packed, "rb") as src, cassette.open("wb") as dst:
            shutil.copyfileobj(src, dst)
    return cassette


def pack(out: Path) -> list[Path]:
    """Write every cassette under ``out`` as ``.gz`` beside it (reproducibly: no name or time in the
    header, so an unchanged cassette packs to the same bytes); the packed files."""
    packed = []
    for cassette in sorted(out.rglob("*.cassette.jsonl")):
        target = cassette.with_name(cassette.name + ".gz")
        with cassette.open("rb") as src, target.open("wb") as raw, \
                gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as dst:
            shutil.copyfileobj(src, dst)
        packed.append(target)
    return packed


def run_variant(out: Path, dataset: str, variant: str, args: argparse.Namespace, live: Any) -> None:
    data = select_dataset(dataset, limit=args.limit)
    knobs = {"k": args.samples, "seed": args.seed, **VARIANTS[variant]}
    home = _home(out, dataset)
    cassette = _unpacked(home / f"{variant}.cassette.jsonl")
    recording = ReplayBackend(cassette, record_from=live)
    outcome = evaluate("linc", data, recording, home / variant, knobs=knobs, concurrency=args.concurrency,
                       resume=True)
    if not outcome.complete:  # the twin replays the cassette, which lacks the unfinished examples
        raise SystemExit(f"{variant} on {dataset} left {len(outcome.lost)} examples unfinished "
                         f"({outcome.stopped or 'backend failures'}); rerun to resume it, then its checks twin runs")
    evaluate("linc", data, ReplayBackend(cassette), home / f"{variant}+checks",
             knobs={**knobs, "checks": True}, concurrency=args.concurrency, resume=True)
    if variant in VOTED:
        evaluate("linc", data, ReplayBackend(cassette), home / f"{variant}+vote",
                 knobs={**knobs, "vote": "sentence"}, concurrency=args.concurrency, resume=True)


def _eval(out: Path, dataset: str, name: str, args: argparse.Namespace, *, run: str | None = None,
          options: list[str] = ()) -> None:
    """``agentkit eval NAME`` on the dataset into ``<dataset>/<run or NAME>``, resuming a started run, at
    the variants' concurrency (a vLLM server is otherwise left serving one request at a time)."""
    command = eval_command(name, dataset, args.limit, _home(out, dataset) / (run or name), args.backend,
                           args.base_url, [*options, "--concurrency", str(args.concurrency)])
    if args.max_in_flight:
        command += ["--max-in-flight", str(args.max_in_flight)]
    if args.request_timeout:
        command += ["--request-timeout", f"{args.request_timeout:g}"]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def run_baselines(out: Path, dataset: str, args: argparse.Namespace) -> None:
    for name in BASELINES:
        options = ["--seed", str(args.seed)] if name in ("direct", "cot", "sc") else []
        if name == "sc":  # the paper run's budget: K samples in one request, at LINC's temperature
            options += ["--samples", str(args.samples), "-o", "temperature=0.8"]
        _eval(out, dataset, name, args, options=options)


def run_budget_baseline(out: Path, dataset: str, args: argparse.Namespace) -> int | None:
    """sc at the per-sentence variants' budget (see the module docstring); its K, or None (and why,
    logged) while the grounded run has not finished every selected example."""
    source = _home(out, dataset) / BUDGET_SOURCE / "results.jsonl"
    finished = read_results(source) if source.is_file() else {}
    ids = [e.id for e in select_dataset(dataset, limit=args.limit).examples]
    waiting = [i for i in ids if i not in finished]
    derived = None if waiting else sc_budget((finished[i] for i in ids), f"linc {BUDGET_SOURCE}")
    if derived is None:
        log.info("%s on %s waits: %s has %d of %d examples finished", BUDGET_RUN, dataset, BUDGET_SOURCE,
                 len(ids) - len(waiting), len(ids))
        return None
    k, budget = derived
    log.info("%s on %s: K=%d (%s samples per example of %s)", BUDGET_RUN, dataset, k, budget["mean_samples"],
             BUDGET_SOURCE)
    _eval(out, dataset, "sc", args, run=BUDGET_RUN,
          options=["--seed", str(args.seed), "--samples", str(k), "-o", "temperature=0.8",
                   "-o", f"budget={json.dumps(budget)}"])
    return k


def _answers(run: Path) -> str:
    """Each answer as the run gave it: "Uncertain" on a True/False set shows by name, not as "(other)"."""
    counts = Counter(NO_PREDICTION if r.prediction is None or r.failed_with_error else r.prediction
                     for r in read_results(run / "results.jsonl").values())
    return " / ".join(f"{answer} {n}" for answer, n in sorted(counts.items()))


def report(out: Path, datasets: list[str]) -> str:
    """Markdown tables of every finished run under ``out`` (see the module docstring)."""
    lines: list[str] = []
    runs = [name for v in VARIANTS for name in (v, f"{v}+checks", *([f"{v}+vote"] if v in VOTED else []))]
    for dataset in datasets:
        home = _home(out, dataset)
        here = [name for name in [*runs, *BASELINES, BUDGET_RUN] if (home / name / "summary.json").is_file()]
        if not here:
            continue
        summaries = {name: load_summary(home / name) for name in here}
        rows = [[name, str(s.n), _pct(s.accuracy), _pct(s.balanced_accuracy),
                 _pct((s.pattern_metrics or {}).get("degenerate_rate")),
                 _pct((s.pattern_metrics or {}).get("inconsistent_rate")), _answers(home / name)]
                for name, s in summaries.items()]
        lines += [f"### {home.name}", "", _table(["run", "n", "accuracy", "balanced accuracy", "degenerate",
                                                  "inconsistent", "answers"], rows)]
        linc_runs = [name for name in runs if name in summaries]
        if "paper" in summaries:  # one family, Holm-corrected within it
            lines += _comparisons([compare_dirs(home / name, home / "paper", a_name=name, b_name="paper")
                                   for name in linc_runs if name != "paper"], heading="#### Against paper mode")
        matched = [(name, MATCHED[name.partition("+")[0]]) for name in linc_runs]
        matched = [(name, vote) for name, vote in matched if vote in summaries]
        if matched:  # the second family: each against the vote of its own budget
            lines += _comparisons([compare_dirs(home / name, home / vote, a_name=name, b_name=vote)
                                   for name, vote in matched], heading="#### Against the vote of the same budget")
        models = [b for b in ("direct", "cot", "sc") if b in summaries]
        if models:  # the third, leaving out the pairs the second family already shows
            best = max(models, key=lambda b: summaries[b].accuracy or 0.0)
            lines += _comparisons([compare_dirs(home / name, home / best, a_name=name, b_name=best)
                                   for name in linc_runs if (name, best) not in matched],
                                  heading=f"#### Against the best single-model baseline ({best})")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--datasets", default=",".join(DATASETS))
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--limit", type=int, default=50)
    ap.add_argument("--samples", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--baselines", action="store_true", help="also run the baselines (before the variants)")
    ap.add_argument("--budget-baseline", action="store_true",
                    help=f"also run {BUDGET_RUN} (after the variants), once {BUDGET_SOURCE} has finished")
    ap.add_argument("--backend", default="llamacpp")
    ap.add_argument("--base-url", action="append")
    ap.add_argument("--max-in-flight", type=int,
                    help="sequences each server generates at once; more queue in the client, so a long "
                         "program's request is not timed out while 16 requests of n samples share one CPU server")
    ap.add_argument("--request-timeout", type=float,
                    help="seconds a sent request may take (default 300): a vocabulary of n samples run to "
                         "max_tokens needs more while 48 sequences share a CPU server")
    ap.add_argument("--report", action="store_true", help="print the tables of the finished runs and exit")
    ap.add_argument("--pack", action="store_true", help="write every cassette under --out as .gz and exit")
    args = ap.parse_args(argv)
    if args.pack:
        for packed in pack(args.out):
            sys.stdout.write(f"{packed}\n")
        return 0
    if args.report:
        sys.stdout.write(report(args.out, [d for d in args.datasets.split(",") if d]) + "\n")
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    variants = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        ap.error(f"unknown variant(s) {', '.join(unknown)}; use {', '.join(VARIANTS)}")
    live = make_backend(args.backend, base_url=args.base_url, max_in_flight=args.max_in_flight,
                        timeout_s=args.request_timeout) if variants else None
    for dataset in (d for d in args.datasets.split(",") if d):
        if args.baselines:
            run_baselines(args.out, dataset, args)
        for variant in variants:
            run_variant(args.out, dataset, variant, args, live)
        if args.budget_baseline:
            run_budget_baseline(args.out, dataset, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
