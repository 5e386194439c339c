"""``agentkit eval``: run a pattern (and its baselines) over a dataset, or compare finished runs.

Everything that can be checked before a model loads is checked first -- pattern, dataset rows,
knobs, the output directory and, on --resume, that the directory holds this same run -- so a typo
costs a second, not a model load. Caller mistakes exit 2 with one line; a backend that dies
mid-run exits 1 after keeping every finished example (rerun with --resume).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from agentkit.cli._common import (
    BackendOpt,
    BaseUrlOpt,
    KnobsOpt,
    ModelOpt,
    SamplesOpt,
    SeedOpt,
    TraceFileOpt,
    exit_codes,
    fail,
    pattern_knobs,
)
from agentkit.errors import ConfigError
from agentkit.vocab import first_error

BASELINES = ("direct", "cot")


def _baseline_dir(out: Path, name: str) -> Path:
    return out / f"baseline-{name}"


def _field_map(items: list[str]) -> dict[str, str] | None:
    mapping: dict[str, str] = {}
    for item in items:
        ours, sep, theirs = item.partition("=")
        if not sep or not ours or not theirs:
            fail(f"--field {item!r} is not OURS=THEIRS (e.g. --field label=gold)")
        mapping[ours] = theirs
    return mapping or None


def _prices(path: Path | None) -> Any:
    from pydantic import ValidationError

    from agentkit.eval.metrics import Prices

    if path is None:
        return None
    try:
        return Prices.model_validate_json(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"--prices {path}: cannot read it ({exc.strerror})") from None
    except ValidationError as exc:
        raise ConfigError(f"{first_error(exc, f'--prices {path}: ')}; expected e.g. "
                          '{"per_model": {"135m": [0.135, 0.135]}, "default": [1.0, 1.0], "unit": "USD"}') from None


def _report_lost(outcome: Any) -> str:
    why = outcome.stopped or "the backend failed them"
    return (f"{len(outcome.lost)} of {outcome.selected} examples of {outcome.pattern} not finished ({why}); "
            f"{outcome.skipped + outcome.finished} kept in {outcome.out_dir}; rerun with --resume to finish them")


def _dataset_help() -> str:
    from agentkit.eval.datasets import dataset_names

    return " | ".join(dataset_names()) + " | a .jsonl/.json file"


def eval_command(
    targets: Annotated[list[str] | None, typer.Argument(
        metavar="PATTERN | DIR...", help="the pattern to evaluate; with --compare, run directories")] = None,
    dataset: Annotated[str | None, typer.Option("--dataset", help=_dataset_help())] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=0, help="first N examples")] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="examples in flight")] = 1,
    out: Annotated[Path | None, typer.Option("--out", help="run directory (results.jsonl, summary.json, "
                                                "report.md, report.png)")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue the run in --out, skipping "
                                         "finished examples")] = False,
    retry_errors: Annotated[bool, typer.Option("--retry-errors", help="with --resume, also rerun "
                                               "examples that ended in an error")] = False,
    baselines: Annotated[bool, typer.Option("--baselines", help="also run the direct and cot baselines "
                                            "into DIR/baseline-*, reported side by side")] = False,
    compare: Annotated[bool, typer.Option("--compare", help="print finished runs side by side")] = False,
    backend: BackendOpt = "llamacpp",
    base_url: BaseUrlOpt = None,
    model: ModelOpt = None,
    samples: SamplesOpt = None,
    seed: SeedOpt = None,
    option: KnobsOpt = None,
    answer_kind: Annotated[str | None, typer.Option(
        "--answer-kind", help="number | latex | label | text (default: the dataset's; text for files)")] = None,
    field: Annotated[list[str] | None, typer.Option(
        "--field", help="for a file: OURS=THEIRS key mapping, e.g. --field label=gold, repeatable")] = None,
    prices: Annotated[Path | None, typer.Option(
        "--prices", help="JSON price table (agentkit.pricing.Prices); default: relative, by model size")] = None,
    max_failures: Annotated[int, typer.Option(
        "--max-failures", min=1, help="stop after this many examples in a row fail on the backend")] = 3,
    trace_file: TraceFileOpt = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="progress bar on stderr")] = True,
) -> None:
    """Evaluate a pattern on a dataset (resumable), or --compare finished run directories."""
    try:
        with exit_codes():
            if compare:
                _compare(targets or [])
                return
            _evaluate(
                targets or [], dataset=dataset, limit=limit, concurrency=concurrency, out=out, resume=resume,
                retry_errors=retry_errors, baselines=baselines, backend=backend, base_url=base_url, model=model,
                samples=samples, seed=seed, options=option or [], answer_kind=answer_kind, fields=field or [],
                prices=prices, max_failures=max_failures, trace_file=trace_file, progress=progress,
            )
    except KeyboardInterrupt:
        fail("interrupted; finished examples are kept: rerun with --resume to continue", code=130)


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)


def _compare(dirs: list[str]) -> None:
    from agentkit.eval.report import compare

    if not dirs:
        raise ConfigError("--compare needs run directories: agentkit eval --compare DIR1 DIR2 ...")
    typer.echo(compare(dirs), nl=False)


def _evaluate(targets: list[str], *, dataset: str | None, limit: int | None, concurrency: int, out: Path | None,
              resume: bool, retry_errors: bool, baselines: bool, backend: str, base_url: str | None,
              model: str | None, samples: int | None, seed: int | None, options: list[str],
              answer_kind: str | None, fields: list[str], prices: Path | None, max_failures: int,
              trace_file: str | None, progress: bool) -> None:
    from agentkit import tracing
    from agentkit.backends import make_backend
    from agentkit.eval.report import compare, write_report
    from agentkit.eval.runner import check_out_dir, dataset_knobs, evaluate, select_dataset
    from agentkit.graphs import get_pattern

    if len(targets) != 1:
        fail("give one PATTERN to evaluate (or --compare DIR1 DIR2 ... to compare runs)" if targets
             else "missing PATTERN; e.g. agentkit eval mccot --dataset gsm8k --limit 20 --out runs/mccot")
    if dataset is None:
        fail("missing --dataset NAME_OR_PATH (e.g. --dataset gsm8k)")
    if out is None:
        fail("missing --out DIR, the directory the results are written to")
    if retry_errors and not resume:
        fail("--retry-errors continues a run: pass --resume too")
    pattern = targets[0]
    spec = get_pattern(pattern)
    data = select_dataset(dataset, limit=limit, answer_kind=answer_kind,  # type: ignore[arg-type]
                          field_map=_field_map(fields))
    knobs = pattern_knobs(spec, samples=samples, seed=seed, options=options)
    price_table = _prices(prices)
    runs = [(pattern, out, spec.check_knobs({**dataset_knobs(spec, data), **knobs}))]
    if baselines:
        for name in BASELINES:
            if name != pattern:
                base = get_pattern(name)
                base_knobs = pattern_knobs(base, samples=None, seed=seed if "seed" in knobs else None, options=[])
                runs.append((name, _baseline_dir(out, name), base.check_knobs({**dataset_knobs(base, data),
                                                                               **base_knobs})))
    for name, run_dir, run_knobs in runs:  # fail on any of them before loading a model
        check_out_dir(run_dir, {"pattern": name, "dataset": data.name, "answer_kind": data.answer_kind,
                                "knobs": run_knobs, "field_map": data.field_map,
                                "dataset_sha256": data.sha256}, resume=resume)

    provider = tracing.configure(trace_file=trace_file) if trace_file else None
    try:
        engine = make_backend(backend, model=model, base_url=base_url)
        outcomes = []
        for name, run_dir, run_knobs in runs:
            outcome = evaluate(name, data, engine, run_dir, knobs=run_knobs, concurrency=concurrency, resume=resume,
                               retry_errors=retry_errors, max_consecutive_failures=max_failures,
                               prices=price_table, progress=progress)
            outcomes.append(outcome)
            if outcome.stopped:
                break  # the backend is gone: the baselines would only lose their examples too
    finally:
        if provider is not None:
            provider.shutdown()
    main = outcomes[0]
    if len(outcomes) > 1:
        write_report(out, main.summary, name=pattern, baselines={o.pattern: o.summary for o in outcomes[1:]})
    typer.echo(compare([str(o.out_dir) for o in outcomes]), nl=False)
    for o in outcomes:
        typer.echo(f"{o.pattern}: {o.out_dir}/results.jsonl ({o.summary.n} examples, {o.finished} run now, "
                   f"{o.skipped} resumed)", err=True)
    incomplete = [o for o in outcomes if o.lost]
    if incomplete or len(outcomes) < len(runs):
        first = incomplete[0] if incomplete else main
        fail(_report_lost(first), code=1)
