"""Per-example results in, one ``Summary`` out: the numbers ``agentkit eval`` reports.

The metric set is the cascade survey's (cost per successful task, schema validity, p50/p95 latency,
energy per request) plus accuracy and balanced accuracy with 95% CIs (``agentkit.eval.statistics``:
Wilson, a cluster design effect where rows come in groups) and, for labelled sets, a confusion
matrix. Figures only
one pattern has (LINC's prover success rate, the cascade's tiers) come from that pattern's own
``summarize`` hook and sit under ``Summary.pattern_metrics``: the harness names no pattern.

Units and conventions (also stated in ``Summary.cost_unit`` so a summary.json is self-describing):

- **Cost is relative, not dollars**, and **energy** is an estimate: see ``agentkit.pricing``.
- **cost_per_success** is total cost / number of correct examples, and ``None`` when nothing is
  correct (JSON has no infinity, and "undefined" is the honest value).
- **Errors count as wrong** in accuracy (an example that crashed did not succeed); latency
  percentiles include errored examples (their time was spent). In the confusion matrix an example
  with no prediction, or one that ended in an error, is predicted ``"(none)"``, so the diagonal sums
  to ``correct``.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentkit.errors import ConfigError
from agentkit.eval.scoring import grade
from agentkit.eval.statistics import accuracy_ci, balanced_accuracy_ci
from agentkit.pricing import (
    COST_UNIT,
    EnergyTable,
    ModelUsage,
    Prices,
    Usage,
    example_cost,
    example_energy,
)
from agentkit.vocab import error_at, first_error

__all__ = [
    "COST_UNIT",
    "NO_PREDICTION",
    "OFF_LABEL",
    "SUMMARY_FILE",
    "EnergyTable",
    "ExampleResult",
    "ModelUsage",
    "Prices",
    "ResultsError",
    "Summary",
    "Usage",
    "example_cost",
    "example_energy",
    "load_summary",
    "read_results",
    "summarize",
]

_LOG = logging.getLogger(__name__)

SUMMARY_FILE = "summary.json"
#: the confusion matrix's "predicted" key for an example with no prediction, or one that errored
NO_PREDICTION = "(none)"
#: ... and for a prediction that is none of the dataset's labels
OFF_LABEL = "(other)"


class ResultsError(ConfigError):
    """A results.jsonl line (other than a crash-truncated last line) cannot be read."""


# --------------------------------------------------------------------------- records


class ExampleResult(BaseModel):
    """One line of results.jsonl. Unknown keys are ignored so older readers accept newer files."""

    model_config = ConfigDict(extra="ignore")

    id: str
    prediction: str | None = None
    label: str
    correct: bool | None = None
    usage: Usage = Field(default_factory=Usage)
    latency_s: float = Field(default=0.0, ge=0.0)
    error: str | None = None
    error_type: str | None = None
    schema_valid: bool | None = None
    calls: int = Field(default=0, ge=0)
    requests_by_server: dict[str, int] | None = Field(
        None, description="requests per server URL of the example's run (a pool of endpoints); None: no pool")
    extra: dict[str, Any] = Field(default_factory=dict)
    cluster: str | None = Field(None, description="the example's group (the dataset's cluster_key value), "
                                "so statistics resample groups, not rows")

    @property
    def succeeded(self) -> bool:
        return self.correct is True and self.error is None and self.error_type is None

    @property
    def failed_with_error(self) -> bool:
        return self.error is not None or self.error_type is not None


# --------------------------------------------------------------------------- summary


class Summary(BaseModel):
    """What summary.json holds; the field names are the CLI contract in DESIGN.md."""

    pattern: str | None = None
    dataset: str | None = None
    n: int
    correct: int
    accuracy: float | None
    accuracy_ci95: tuple[float, float] | None = Field(
        description="95% Wilson score interval; with clusters, Wilson at the effective sample size n / deff, "
                    "the design effect from a seeded cluster bootstrap (agentkit.eval.statistics.accuracy_ci)")
    balanced_accuracy: float | None = None
    balanced_accuracy_ci95: tuple[float, float] | None = Field(
        None, description="95% adjusted Wald interval of the mean per-class recall (Price & Bonett), "
                          "cluster design effect as for accuracy_ci95")
    n_clusters: int | None = Field(None, description="distinct clusters among the results; None: rows independent")
    confusion: dict[str, dict[str, int]] | None = Field(
        None, description=f"labelled sets: gold -> predicted -> count; {NO_PREDICTION!r}: no prediction or an error, "
                          f"{OFF_LABEL!r}: not one of the labels")
    errors: int
    errors_by_type: dict[str, int] = Field(default_factory=dict)
    schema_validity: float | None = None
    latency_p50_s: float | None = None
    latency_p95_s: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    calls_per_example: float | None = None
    requests_by_server: dict[str, int] | None = Field(
        None, description="requests per server URL over all results (a pool of endpoints); None: no pool used")
    cost: float = 0.0
    cost_per_success: float | None = None
    cost_unit: str = COST_UNIT
    energy_j: float = 0.0
    energy_per_example_j: float | None = None
    pattern_metrics: dict[str, Any] = Field(
        default_factory=dict, description="the pattern's own figures, from its summarize hook (agentkit.pattern)")


def _balanced_classes(results: list[ExampleResult], classes: Collection[str] | None) -> list[str] | None:
    """The classes balanced accuracy averages over: those named (with rows), else a binary gold set."""
    present = sorted({r.label for r in results})
    if classes is None:
        return present if len(present) == 2 else None  # binary label sets only, unless the caller names them
    chosen = [c for c in classes if c in present]
    return chosen or None


def _balanced_accuracy(results: list[ExampleResult], classes: list[str] | None) -> float | None:
    """Mean per-class recall: a judge that always says "correct" scores 0.5, not the base rate."""
    if classes is None:
        return None
    recalls = []
    for cls in classes:
        members = [r for r in results if r.label == cls]
        recalls.append(sum(r.succeeded for r in members) / len(members))
    return sum(recalls) / len(recalls)


def _predicted(result: ExampleResult, labels: Collection[str]) -> str:
    """The label the prediction grades as (so "true" and "True" share a column), else OFF_LABEL."""
    if result.prediction is None or result.failed_with_error:
        return NO_PREDICTION
    if result.succeeded:
        return result.label
    return next((lab for lab in sorted(labels) if grade(result.prediction, lab, "label", labels)), OFF_LABEL)


def _confusion(results: list[ExampleResult], labels: Collection[str]) -> dict[str, dict[str, int]]:
    table: dict[str, Counter[str]] = {}
    for r in results:
        table.setdefault(r.label, Counter())[_predicted(r, labels)] += 1
    return {gold: dict(sorted(row.items())) for gold, row in sorted(table.items())}


def _requests_by_server(results: list[ExampleResult]) -> dict[str, int] | None:
    """Summed per URL, sorted by URL; None when no result went through a pool (older lines have none)."""
    counts: Counter[str] = Counter()
    for r in results:
        counts.update(r.requests_by_server or {})
    return dict(sorted(counts.items())) or None


def _mean_or_none(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summarize(
    results: Iterable[ExampleResult] | Mapping[str, ExampleResult],
    prices: Prices | None = None,
    *,
    energy: EnergyTable | None = None,
    classes: Collection[str] | None = None,
    labels: Collection[str] | None = None,
    seed: int = 0,
    resamples: int = 2000,
) -> Summary:
    """Aggregate results into a Summary.

    ``classes`` turns on balanced accuracy for a multi-class label set (e.g. True/False/Uncertain);
    without it balanced accuracy is reported only when the gold labels are binary. ``labels`` (the
    dataset's label set) turns on the confusion matrix. Results with a ``cluster`` are resampled by
    cluster; the bootstraps are seeded so a summary is reproducible byte for byte.
    """
    items = list(results.values()) if isinstance(results, Mapping) else list(results)
    outcomes = [r.succeeded for r in items]
    clusters: Sequence[str | None] | None = [r.cluster for r in items]
    if all(c is None for c in clusters):
        clusters = None
    balanced = _balanced_classes(items, classes)
    boot = {"resamples": resamples, "seed": seed}
    prices = prices or Prices()
    energy = energy or EnergyTable()
    n = len(items)
    correct = sum(r.succeeded for r in items)
    error_types = Counter((r.error_type or "unknown") for r in items if r.failed_with_error)
    schema_known = [1.0 if r.schema_valid else 0.0 for r in items if r.schema_valid is not None]
    latencies = np.array([r.latency_s for r in items], dtype=float)
    cost = sum(example_cost(r.usage, prices) for r in items)
    energy_j = sum(example_energy(r.usage, energy) for r in items)
    p50, p95 = (float(v) for v in np.percentile(latencies, [50, 95])) if n else (None, None)
    return Summary(
        n=n,
        correct=correct,
        accuracy=correct / n if n else None,
        accuracy_ci95=accuracy_ci(outcomes, clusters, **boot),
        balanced_accuracy=_balanced_accuracy(items, balanced),
        balanced_accuracy_ci95=None if balanced is None else balanced_accuracy_ci(
            [r.label for r in items], outcomes, balanced, clusters, **boot),
        n_clusters=None if clusters is None else len({c if c is not None else ("row", r.id)
                                                      for c, r in zip(clusters, items, strict=True)}),
        confusion=None if labels is None else _confusion(items, labels),
        errors=sum(error_types.values()),
        errors_by_type=dict(sorted(error_types.items())),
        schema_validity=_mean_or_none(schema_known),
        latency_p50_s=p50,
        latency_p95_s=p95,
        input_tokens=sum(r.usage.input_tokens for r in items),
        output_tokens=sum(r.usage.output_tokens for r in items),
        cached_tokens=sum(r.usage.cached_tokens for r in items),
        calls_per_example=sum(r.calls for r in items) / n if n else None,
        requests_by_server=_requests_by_server(items),
        cost=cost,
        cost_per_success=cost / correct if correct else None,
        cost_unit=prices.unit,
        energy_j=energy_j,
        energy_per_example_j=energy_j / n if n else None,
    )


# --------------------------------------------------------------------------- reading results


def read_results(path: str | os.PathLike[str]) -> dict[str, ExampleResult]:
    """Read results.jsonl into {id: result}, keeping each id's LAST line (a resumed retry wins).

    A last line without its newline that does not parse is what a crash mid-write leaves: it is
    skipped with a warning, and the example simply runs again on resume. Any other bad line is an
    error -- silently dropping results would inflate accuracy.
    """
    path = Path(path)
    if not path.is_file():
        raise ResultsError(f"{path}: results file not found; run `agentkit eval ... --out DIR` first")
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    results: dict[str, ExampleResult] = {}
    for line_no, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        is_partial_tail = line_no == len(lines) and not text.endswith("\n")
        try:
            record = ExampleResult.model_validate(json.loads(raw))
        except (json.JSONDecodeError, ValidationError) as exc:
            if is_partial_tail:
                _LOG.warning("%s:%d: skipping truncated last line (interrupted write)", path, line_no)
                continue
            detail = exc.msg if isinstance(exc, json.JSONDecodeError) else error_at(exc)[1]
            raise ResultsError(
                f"{path}:{line_no}: unreadable result ({detail}); delete that line and rerun with "
                "--resume to recompute the example"
            ) from None
        results.pop(record.id, None)  # re-insert so dict order follows the latest write
        results[record.id] = record
    return results


def load_summary(path: str | os.PathLike[str]) -> Summary:
    """Read a run's summary.json (pass the run directory or the file itself)."""
    p = Path(path)
    file = p / SUMMARY_FILE if p.is_dir() else p
    if not file.is_file():
        raise ConfigError(f"{file}: no summary.json; is {p} an `agentkit eval --out` directory?")
    try:
        return Summary.model_validate_json(file.read_text(encoding="utf-8"))
    except ValidationError as exc:
        raise ConfigError(f"{file}: not a valid summary ({first_error(exc)}); rerun the evaluation") from None
