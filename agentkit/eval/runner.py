"""Run a pattern over a dataset: concurrent, resumable, crash-safe, honest about what failed.

A pattern (``agentkit.pattern.Pattern``, by name from ``agentkit.graphs``) plugs in through its
eval adapter: ``input_from`` turns a dataset row into its input, ``prediction`` reads the answer
graded by ``agentkit.eval.scoring``, ``extras`` are stored with each example, and ``summarize`` fills
the summary's ``pattern_metrics``. The harness names no pattern.

When the pattern has an ``answer_kind`` knob that accepts the dataset's kind, or a ``labels`` knob,
the harness sets them from the dataset (the caller's knobs win).

Every selected example ends in one of three ways:

- **finished**: one line in DIR/results.jsonl -- right, wrong, or a per-example error
  (SchemaViolation, InputError, a verifier failing, ...), which counts as wrong. --resume skips it.
- **lost**: the backend failed it (TransientBackendError left after the agent's retries, a
  ConnectionError, a GenerationTimeout, BackendUnavailable). Nothing is written, so --resume runs it again: a dead
  server must not turn into a column of "errors". BackendUnavailable, or ``max_consecutive_failures``
  lost examples in a row, stops the run; running examples may still finish and are kept.
- **fatal**: a ConfigError (an unknown knob, a cassette miss, a pattern that cannot read this
  dataset) is raised at once: it would fail every example the same way.

DIR/run.json records what the directory holds (pattern, dataset, knobs, backend, model), and a
resume that does not match it is refused, so two different runs can never be mixed in one summary.

With ``ray=RayOptions(...)`` the examples run on Ray actors (``agentkit.eval._ray_runner``), each
building its backend from a ``BackendSpec``; everything else -- the manifest, resume, the single
writer of results.jsonl, the summary -- is this module's, exactly as without Ray.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from agentkit.backends.base import Backend
from agentkit.errors import ConfigError
from agentkit.eval._attempt import Lost, WarnOnce, attempt
from agentkit.eval._attempt import describe as _describe  # noqa: F401 - the old private names
from agentkit.eval._attempt import jsonable as _jsonable
from agentkit.eval._attempt import usage_of as _usage  # noqa: F401
from agentkit.eval._code_version import code_version
from agentkit.eval._dataset_select import EvalDataset, select_dataset
from agentkit.eval._progress import EvalProgress
from agentkit.eval._ray_spec import BackendSpec, RayOptions
from agentkit.eval._resultlog import RESULTS_FILE, ResultLog
from agentkit.eval.datasets import Example
from agentkit.eval.metrics import ExampleResult, Prices, Summary, summarize
from agentkit.eval.report import write_report
from agentkit.pattern import Pattern
from agentkit.vocab import first_error

__all__ = [
    "MANIFEST_FILE",
    "RESULTS_FILE",
    "BackendSpec",
    "EvalDataset",
    "EvalOutcome",
    "RayOptions",
    "RunManifest",
    "aevaluate",
    "check_out_dir",
    "dataset_knobs",
    "evaluate",
    "select_dataset",
]

_LOG = logging.getLogger(__name__)

MANIFEST_FILE = "run.json"


# --------------------------------------------------------------------------- the run manifest


class RunManifest(BaseModel):
    """DIR/run.json. The identity fields must match for --resume; the rest is information."""

    pattern: str
    dataset: str
    answer_kind: str
    labels: list[str] | None = None
    knobs: dict[str, Any] = Field(default_factory=dict)
    provider: str
    model: str
    field_map: dict[str, str] | None = None
    dataset_sha256: str | None = None
    examples: int = 0
    started_at: str = Field("", description="when the run first started (a resume keeps it)")
    resumed_at: list[str] = Field(default_factory=list, description="when each --resume continued the run")
    code: list[str] = Field(default_factory=list, description="the agentkit code of the start and of each resume "
                                                               "since it was recorded (a commit, +dirty if edited)")
    ray: dict[str, Any] | None = Field(None, description="where a Ray run ran (information only: a run "
                                       "may be resumed with or without Ray)")


_IDENTITY = ("pattern", "dataset", "answer_kind", "labels", "knobs", "provider", "model", "field_map",
             "dataset_sha256")


def _probe_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise ConfigError(f"output directory {out} is not writable ({exc.strerror or exc}); "
                          "choose a directory you can write to with --out") from None


def check_out_dir(out_dir: str | os.PathLike[str], identity: Mapping[str, Any], *, resume: bool) -> None:
    """Fail before any model loads if ``out_dir`` cannot take this run.

    ``identity`` holds some or all of the manifest's identity fields; only those given are compared,
    so the CLI can check pattern/dataset/knobs before it knows which model the backend serves.
    """
    out = Path(out_dir)
    _probe_writable(out)
    results = out / RESULTS_FILE
    has_results = results.is_file() and results.stat().st_size > 0
    if has_results and not resume:
        raise ConfigError(f"{out} already holds results ({results.name}); pass --resume to continue that run, "
                          "or choose another --out")
    if not (resume and has_results):
        return
    manifest_path = out / MANIFEST_FILE
    if not manifest_path.is_file():
        raise ConfigError(f"--resume: {out} has {results.name} but no {MANIFEST_FILE}, so its run cannot be "
                          "checked against this one; choose another --out")
    try:
        old = RunManifest.model_validate_json(manifest_path.read_text(encoding="utf-8"))
    except ValidationError as exc:
        raise ConfigError(f"--resume: {manifest_path} is unreadable ({first_error(exc)}); choose another --out") from None
    except ValueError as exc:
        raise ConfigError(f"--resume: {manifest_path} is unreadable ({exc}); choose another --out") from None
    given = _jsonable(dict(identity))
    stored = _jsonable(old.model_dump())
    diffs = [f"{k} {stored.get(k)!r} (now {given[k]!r})" for k in _IDENTITY if k in given and stored.get(k) != given[k]]
    if diffs:
        raise ConfigError(f"--resume: {out} holds a different run: {'; '.join(diffs)}. Resume with the same "
                          "pattern, dataset and options, or choose another --out")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _continued(out: Path, manifest: RunManifest) -> RunManifest:
    """``manifest`` for a resumed run: the stored run's first start, and this resume appended to its
    resumes, so run.json says when the results were made however often the run was continued."""
    try:
        old = RunManifest.model_validate_json((out / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):  # no stored run to continue (check_out_dir refused an unreadable one)
        return manifest
    return manifest.model_copy(update={"started_at": old.started_at or manifest.started_at,
                                       "resumed_at": [*old.resumed_at, manifest.started_at],
                                       "code": [*old.code, *manifest.code]})


def _write_manifest(out: Path, manifest: RunManifest) -> None:
    path = out / MANIFEST_FILE
    tmp = out / f".{MANIFEST_FILE}.tmp"
    tmp.write_text(json.dumps(_jsonable(manifest.model_dump()), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


# --------------------------------------------------------------------------- the pattern's side


def _load_pattern(name: str | Pattern) -> Pattern:
    from agentkit.graphs import get_pattern

    pattern = name if isinstance(name, Pattern) else get_pattern(name)
    if not pattern.evaluable:
        raise ConfigError(f"pattern {pattern.name!r} cannot be evaluated: it has no input_from/prediction; "
                          "give its Pattern(input_from=..., prediction=...)")
    return pattern


def dataset_knobs(pattern: Pattern, data: EvalDataset) -> dict[str, Any]:
    """``answer_kind``/``labels`` for patterns whose knobs take the dataset's (see the module docstring)."""
    knobs: dict[str, Any] = {}
    if pattern.accepts("answer_kind", data.answer_kind):
        knobs["answer_kind"] = data.answer_kind
    if data.labels and pattern.accepts("labels", list(data.labels)):
        knobs["labels"] = list(data.labels)
    return knobs


# --------------------------------------------------------------------------- running


class EvalOutcome(BaseModel):
    """What one call did; ``summary`` covers the examples this call selected that are finished (by
    this call or an earlier one), never other results the directory holds."""

    out_dir: Path
    pattern: str
    dataset: str
    selected: int = Field(description="examples asked for")
    skipped: int = Field(description="already finished before this call (resume)")
    finished: int = Field(description="results written by this call")
    lost: list[str] = Field(default_factory=list, description="ids left unfinished: rerun with --resume")
    stopped: str | None = Field(None, description="why the run stopped early")
    summary: Summary

    @property
    def complete(self) -> bool:
        return not self.lost


_Lost = Lost  # the old private name


class _Run:
    def __init__(self, pattern: Pattern, graph: Any, data: EvalDataset, log: ResultLog,
                 progress: EvalProgress, concurrency: int, max_consecutive_failures: int) -> None:
        self.pattern, self.graph, self.data, self.log, self.progress = pattern, graph, data, log, progress
        self.concurrency = concurrency
        self.max_failures = max_consecutive_failures
        self.consecutive_lost = 0
        self.written: set[str] = set()
        self.stopped: str | None = None
        self.fatal: BaseException | None = None
        self._warn = WarnOnce()
        self.clusters = _cluster_map(data)

    async def run(self, todo: Sequence[Example]) -> None:
        pending = iter(todo)

        async def worker() -> None:
            for example in pending:  # one shared iterator: each example is taken by one worker
                if self.stopped or self.fatal:
                    return
                try:
                    outcome = await self._attempt(example)
                except ConfigError as exc:
                    self.fatal = exc
                    return
                self._settle(outcome)

        await asyncio.gather(*(worker() for _ in range(max(1, min(self.concurrency, len(todo))))))
        if self.fatal is not None:
            raise self.fatal

    def _settle(self, outcome: ExampleResult | Lost) -> None:
        if outcome.id in self.written:  # a result for an id already written (a rerun on Ray): one line per id
            _LOG.warning("example %s finished twice; only its first result is kept", outcome.id)
            return
        if isinstance(outcome, Lost):
            self.consecutive_lost += 1
            _LOG.warning("example %s not finished (backend): %s", outcome.id, outcome.reason)
            if outcome.dead:
                self._stop(f"backend unavailable: {outcome.reason}")
            elif self.consecutive_lost >= self.max_failures:
                self._stop(f"{self.consecutive_lost} examples in a row failed on the backend; last: {outcome.reason}")
            return
        self.consecutive_lost = 0
        if outcome.cluster is None and outcome.id in self.clusters:
            outcome = outcome.model_copy(update={"cluster": self.clusters[outcome.id]})
        self.log.append(outcome)  # fsync'd before the example counts as finished
        self.written.add(outcome.id)
        self.progress.update(outcome)

    def _stop(self, reason: str) -> None:
        if self.stopped is None:
            self.stopped = reason
            _LOG.error("stopping the run: %s", reason)

    async def _attempt(self, example: Example) -> ExampleResult | Lost:
        return await attempt(self.pattern, self.graph, example, answer_kind=self.data.answer_kind,
                             labels=self.data.labels, warn=self._warn)


def _cluster_map(data: EvalDataset) -> dict[str, str]:
    """id -> the example's cluster (its ``cluster_key`` field), recorded in each result line."""
    clusters = data.clusters()
    return {} if clusters is None else {e.id: c for e, c in zip(data.examples, clusters, strict=True)}


def _selected(data: EvalDataset, finished: Mapping[str, ExampleResult]) -> list[ExampleResult]:
    """The finished results of exactly the examples selected now (a --resume --limit N summarises N,
    not everything the directory holds), in dataset order, each with its cluster filled in (lines
    written before results carried one have none)."""
    clusters = _cluster_map(data)
    picked = [finished[e.id] for e in data.examples if e.id in finished]
    return [r if r.cluster is not None or r.id not in clusters else r.model_copy(update={"cluster": clusters[r.id]})
            for r in picked]


def _summary(pattern: Pattern, data: EvalDataset, finished: Mapping[str, ExampleResult],
             prices: Prices | None) -> Summary:
    results = _selected(data, finished)
    labelled = data.answer_kind == "label" and bool(data.labels)
    summary = summarize(results, prices, classes=data.labels if data.labels and len(data.labels) > 2 else None,
                        labels=data.labels if labelled else None)
    own = dict(pattern.summarize(results)) if pattern.summarize is not None else {}
    return summary.model_copy(update={"pattern": pattern.name, "dataset": _summary_name(data),
                                      "pattern_metrics": _jsonable(own)})


def _summary_name(data: EvalDataset) -> str:
    """A file's name rather than its full path, which would swamp every table it appears in."""
    return Path(data.name).name if data.sha256 is not None else data.name


async def aevaluate(
    pattern: str | Pattern,
    data: EvalDataset,
    backend: Backend | BackendSpec,
    out_dir: str | os.PathLike[str],
    *,
    knobs: Mapping[str, Any] | None = None,
    concurrency: int = 1,
    resume: bool = False,
    retry_errors: bool = False,
    max_consecutive_failures: int = 3,
    prices: Prices | None = None,
    progress: bool = False,
    ray: RayOptions | None = None,
) -> EvalOutcome:
    """Evaluate ``pattern`` on ``data`` into ``out_dir`` (results.jsonl, run.json, summary.json, report).

    ``retry_errors`` (with ``resume``) also reruns examples whose last result was an error; the new
    result is appended and wins. ``knobs`` are the pattern's build options. ``backend`` may be a
    ``BackendSpec`` (built here, or in each actor with ``ray``); ``ray`` runs the examples on Ray
    actors and needs a spec, since a live backend cannot be sent to another process.
    """
    if concurrency < 1:
        raise ConfigError(f"concurrency must be >= 1, got {concurrency}")
    if max_consecutive_failures < 1:
        raise ConfigError(f"max_consecutive_failures must be >= 1, got {max_consecutive_failures}")
    if ray is not None and not isinstance(backend, BackendSpec):
        raise ConfigError("an evaluation on Ray builds its backend in each actor: pass a BackendSpec "
                          "(kind/model/base_url, or a picklable factory) as backend, not a built backend")
    target = _load_pattern(pattern)
    name = target.name
    effective = target.check_knobs({**dataset_knobs(target, data), **(knobs or {})})
    out = Path(out_dir)
    manifest = RunManifest(
        pattern=name, dataset=data.name, answer_kind=data.answer_kind, labels=data.labels, knobs=effective,
        provider="", model="", field_map=data.field_map, dataset_sha256=data.sha256, examples=len(data.examples),
        started_at=_now(), code=[code_version()],
    )
    unknown = {"provider", "model"}  # until the backend (or an actor) is built: fail before that on the rest
    check_out_dir(out, manifest.model_dump(include=set(_IDENTITY) - unknown), resume=resume)
    workers = None
    if isinstance(backend, BackendSpec) and ray is not None:
        workers = _start_ray(ray, backend, pattern, effective, data, concurrency)
        identity = workers.identity
        manifest = manifest.model_copy(update={"ray": workers.describe()})
    else:
        live = backend.build() if isinstance(backend, BackendSpec) else backend
        identity = {"provider": str(getattr(live, "provider", type(live).__name__)),
                    "model": str(getattr(live, "model", ""))}
        graph = target.build(live, **effective).compile()
    try:
        manifest = manifest.model_copy(update={"provider": identity["provider"], "model": identity["model"]})
        check_out_dir(out, manifest.model_dump(include=set(_IDENTITY)), resume=resume)
        log = ResultLog(out)
        done = log.finished
        _write_manifest(out, _continued(out, manifest) if resume and done else manifest)
        todo = [e for e in data.examples
                if e.id not in done or (retry_errors and done[e.id].failed_with_error)]
        _LOG.info("%s on %s: %d examples, %d already finished, %d to run", name, data.name,
                  len(data.examples), len(data.examples) - len(todo), len(todo))
        where = f" · ray ×{workers.count}" if workers is not None else ""
        bar = EvalProgress(len(todo), f"{name} · {_summary_name(data)}{where}", enabled=progress and bool(todo))
        with log, bar:
            if workers is not None:
                run = _Run(target, None, data, log, bar, concurrency, max_consecutive_failures)
                await workers.run(run, todo)
                if run.fatal is not None:
                    raise run.fatal
            else:
                run = _Run(target, graph, data, log, bar, concurrency, max_consecutive_failures)
                await run.run(todo)
    finally:
        if workers is not None:
            workers.close()
    summary = _summary(target, data, log.finished, prices)
    write_report(out, summary, name=name)
    return EvalOutcome(
        out_dir=out, pattern=name, dataset=data.name, selected=len(data.examples),
        skipped=len(data.examples) - len(todo), finished=len(run.written),
        lost=[e.id for e in todo if e.id not in run.written], stopped=run.stopped, summary=summary,
    )


def _start_ray(options: RayOptions, spec: BackendSpec, pattern: str | Pattern, knobs: dict[str, Any],
               data: EvalDataset, concurrency: int) -> Any:
    """The run's Ray actors, each with its backend and graph built (a registered pattern travels by name)."""
    from agentkit.eval._ray_runner import RayWorkers
    from agentkit.eval._ray_worker import WorkerRecipe

    recipe = WorkerRecipe(backend=spec, pattern=pattern, knobs=dict(knobs), answer_kind=data.answer_kind,
                          labels=list(data.labels) if data.labels else None)
    return RayWorkers.start(options, recipe, concurrency=concurrency)


def evaluate(*args: Any, **kwargs: Any) -> EvalOutcome:
    """Synchronous ``aevaluate`` (same arguments), for scripts and the CLI."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass  # no loop: run one (outside this handler, so errors do not chain onto this RuntimeError)
    else:
        raise ConfigError("evaluate() was called inside a running event loop; await aevaluate() instead")
    return asyncio.run(aevaluate(*args, **kwargs))
