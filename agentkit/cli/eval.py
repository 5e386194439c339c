"""``agentkit eval``: run a pattern (and its baselines) over a dataset, or compare finished runs.

Everything that can be checked before a model loads is checked first -- pattern, dataset rows,
knobs, the output directory and, on --resume, that the directory holds this same run -- so a typo
costs a second, not a model load. Caller mistakes exit 2 with one line; a backend that dies
mid-run exits 1 after keeping every finished example (rerun with --resume).

What --baselines runs and how each baseline is matched to the pattern is told in
``agentkit.cli._eval_baselines``; --calibrate-on in ``agentkit.cli._eval_calibrate``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from agentkit.cli._common import (
    BackendOpt,
    BaseUrlOpt,
    KnobsOpt,
    MaxInFlightOpt,
    ModelOpt,
    RequestTimeoutOpt,
    SamplesOpt,
    SeedOpt,
    TraceFileOpt,
    base_urls,
    exit_codes,
    fail,
    pattern_knobs,
)
from agentkit.errors import ConfigError
from agentkit.vocab import first_error

BASELINES = ("direct", "cot", "sc", "majority-label")  # agentkit.cli._eval_baselines.BASELINES


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
    baselines: Annotated[bool, typer.Option("--baselines", help="also run direct, cot, sc (self-consistency at "
                                            "the pattern's samples per example) and, on labelled sets, "
                                            "majority-label into DIR/baseline-* (a cascade: each tier alone too); "
                                            "paired comparisons go to DIR/comparison.json")] = False,
    compare: Annotated[bool, typer.Option("--compare", help="print finished runs side by side, with paired "
                                          "comparisons of each against the first")] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="with --compare, also write the paired "
                                                  "comparisons to this JSON file")] = None,
    backend: BackendOpt = "llamacpp",
    base_url: BaseUrlOpt = None,
    max_in_flight: MaxInFlightOpt = None,
    request_timeout: RequestTimeoutOpt = None,
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
    calibrate_on: Annotated[str | None, typer.Option(
        "--calibrate-on", metavar="DATASET[:N]", help="cascade: choose the threshold on dev rows never scored: "
        "the --dataset itself split by dev_test_split (N dev rows, default 30%), or another set's first N rows; "
        "recorded in run.json")] = None,
    target_accuracy: Annotated[float | None, typer.Option(
        "--target-accuracy", help="with --calibrate-on: the cheapest threshold reaching this dev accuracy "
        "(default: the lowest cost per success)")] = None,
    ray: Annotated[bool, typer.Option("--ray", help="run the examples on Ray actors: a local Ray on this "
                                      "machine's CPUs (127.0.0.1, no dashboard); needs agentkit[ray]")] = False,
    ray_address: Annotated[str | None, typer.Option(
        "--ray-address", metavar="ADDR", help="run on an existing Ray cluster (e.g. 10.0.0.5:6379 or auto); "
        "implies --ray")] = None,
    ray_actors: Annotated[int | None, typer.Option(
        "--ray-actors", min=1, help="Ray actors (default: the cluster's CPUs); --concurrency is spread over them")] = None,
) -> None:
    """Evaluate a pattern on a dataset (resumable), or --compare finished run directories."""
    try:
        with exit_codes():
            if compare:
                _compare(targets or [], json_out)
                return
            if json_out is not None:
                fail("--json writes --compare's comparisons: pass --compare too")
            _evaluate(
                targets or [], dataset=dataset, limit=limit, concurrency=concurrency, out=out, resume=resume,
                retry_errors=retry_errors, baselines=baselines, backend=backend, base_url=base_urls(base_url), model=model,
                max_in_flight=max_in_flight, timeout_s=request_timeout,
                samples=samples, seed=seed, options=option or [], answer_kind=answer_kind, fields=field or [],
                prices=prices, max_failures=max_failures, trace_file=trace_file, progress=progress,
                calibrate_on=calibrate_on, target_accuracy=target_accuracy,
                ray=_ray_options(ray, ray_address, ray_actors),
            )
    except KeyboardInterrupt:
        fail("interrupted; finished examples are kept: rerun with --resume to continue", code=130)


def _ray_options(ray: bool, address: str | None, actors: int | None) -> Any:
    """RayOptions when --ray/--ray-address is given (ray itself is imported only when the run starts)."""
    if not ray and address is None:
        if actors is not None:
            fail("--ray-actors sizes a Ray run: pass --ray or --ray-address too")
        return None
    from agentkit.eval._ray_spec import RayOptions

    return RayOptions(address=address, actors=actors)


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)


def _compare(dirs: list[str], json_out: Path | None = None) -> None:
    from agentkit.eval.comparison import write_comparisons
    from agentkit.eval.report import compare, paired_comparisons

    if not dirs:
        raise ConfigError("--compare needs run directories: agentkit eval --compare DIR1 DIR2 ...")
    comparisons = paired_comparisons(dirs)
    typer.echo(compare(dirs, comparisons), nl=False)
    if json_out is not None:
        try:
            write_comparisons(json_out, comparisons)
        except OSError as exc:
            raise ConfigError(f"--json {json_out}: cannot write it ({exc.strerror or exc})") from None
        typer.echo(f"{len(comparisons)} comparisons written to {json_out}", err=True)


def _evaluate(targets: list[str], *, dataset: str | None, limit: int | None, concurrency: int, out: Path | None,
              resume: bool, retry_errors: bool, baselines: bool, backend: str, base_url: str | list[str] | None,
              max_in_flight: int | None, timeout_s: float | None,
              model: str | None, samples: int | None, seed: int | None, options: list[str],
              answer_kind: str | None, fields: list[str], prices: Path | None, max_failures: int,
              trace_file: str | None, progress: bool, calibrate_on: str | None = None,
              target_accuracy: float | None = None, ray: Any = None) -> None:
    from agentkit import tracing
    from agentkit.backends import make_backend
    from agentkit.cli import _eval_baselines as plans
    from agentkit.cli import _eval_calibrate
    from agentkit.eval.report import compare, write_report
    from agentkit.eval.runner import (
        check_out_dir,
        dataset_knobs,
        evaluate,
        select_dataset,
    )
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
    if target_accuracy is not None and calibrate_on is None:
        fail("--target-accuracy is --calibrate-on's objective: pass --calibrate-on too")
    pattern = targets[0]
    spec = get_pattern(pattern)
    data = select_dataset(dataset, limit=limit, answer_kind=answer_kind,  # type: ignore[arg-type]
                          field_map=_field_map(fields))
    knobs = pattern_knobs(spec, samples=samples, seed=seed, options=options)
    if knobs.get("approve_escalation") is True:
        fail("agentkit eval cannot pause for approval: pass -o approve_escalation=auto-approve (or auto-reject); "
             "the policy is recorded in run.json and each result's escalation")
    dev = _eval_calibrate.plan(calibrate_on, spec, data, knobs, target_accuracy) if calibrate_on else None
    if dev is not None:
        data = dev.test  # the run scores only the rows calibration never saw
        knobs.update(_eval_calibrate.stored_knobs(dev, out, resume=resume) or {})
    knobs = plans.fill_knobs(spec, data, knobs)
    price_table = _prices(prices)
    waiting = dev is not None and "threshold" not in knobs  # known once calibrated, after the model loads
    main = plans.Planned(spec, out, None if waiting else spec.check_knobs({**dataset_knobs(spec, data), **knobs}),
                         spec.name)
    runs = [main, *(plans.plan(spec, data, out, knobs) if baselines else [])]
    for run in runs:  # fail on any of them before loading a model
        check_out_dir(run.out_dir, plans.identity(run, data), resume=resume)

    if ray is not None:
        from agentkit.eval._ray_spec import require_ray

        require_ray(local=ray.address is None)  # the one-line hint before any model loads
    provider = tracing.configure(trace_file=trace_file) if trace_file else None
    done: list[tuple[plans.Planned, Any]] = []
    stopped = False
    cluster = None
    try:
        if ray is not None:  # one Ray for every run of the command; each run starts its own actors
            from agentkit.eval._ray_runner import connect
            from agentkit.eval._ray_spec import BackendSpec

            ray_module, owned = connect(ray)
            cluster = ray_module if owned else None  # stopped at the end if this command started it
            engine: Any = BackendSpec(kind=backend, model=model, base_url=base_url, max_in_flight=max_in_flight,
                                      timeout_s=timeout_s)
        else:
            engine = make_backend(backend, model=model, base_url=base_url, max_in_flight=max_in_flight,
                                  timeout_s=timeout_s)
        for run in runs:
            if run is main and dev is not None and waiting:
                knobs.update(_eval_calibrate.calibrated_knobs(  # the tiers exactly as the run will build them
                    dev, engine.build() if ray is not None else engine,  # a spec with --ray: calibrate here
                    {**dataset_knobs(spec, data), **knobs}, answer_kind=data.answer_kind,
                    prices=price_table, out=out, resume=resume))
                run = plans.Planned(spec, out, spec.check_knobs({**dataset_knobs(spec, data), **knobs}), spec.name)
                typer.echo(f"calibrated threshold {knobs['threshold']:.4g} on {dev.how['dev_ids']} dev rows "
                           f"({dev.how['objective']})", err=True)
            elif run.knobs is None:  # sc: its K is the pattern's samples per example, known now
                settled, note = plans.settle_sc(run, spec, knobs, out, data, resume=resume)
                if settled is None:
                    typer.echo(note, err=True)
                    continue
                run = settled
            check_out_dir(run.out_dir, plans.identity(run, data), resume=resume)
            outcome = evaluate(run.pattern, data, engine, run.out_dir, knobs=run.knobs, concurrency=concurrency,
                               resume=resume, retry_errors=retry_errors, max_consecutive_failures=max_failures,
                               prices=price_table, progress=progress, ray=ray)
            done.append((run, outcome))
            if outcome.stopped:
                stopped = True
                break  # the backend is gone: the baselines would only lose their examples too
    finally:
        if provider is not None:
            provider.shutdown()
        if cluster is not None:
            cluster.shutdown()
    main_outcome = done[0][1]
    if len(done) > 1:
        comparisons = plans.write_comparison(out, pattern, done[1:], data)
        write_report(out, main_outcome.summary, name=pattern, baselines={r.label: o.summary for r, o in done[1:]},
                     comparisons=comparisons)
    typer.echo(compare([str(o.out_dir) for _, o in done]), nl=False)
    for _, o in done:
        typer.echo(f"{o.pattern}: {o.out_dir}/results.jsonl ({o.summary.n} examples, {o.finished} run now, "
                   f"{o.skipped} resumed)", err=True)
    incomplete = [o for _, o in done if o.lost]
    if incomplete or stopped:
        first = incomplete[0] if incomplete else main_outcome
        fail(_report_lost(first), code=1)
