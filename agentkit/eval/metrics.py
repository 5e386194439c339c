"""Per-example results in, one ``Summary`` out: the numbers ``agentkit eval`` reports.

The metric set is the cascade survey's (cost per successful task, schema validity, p50/p95 latency,
energy per request) plus accuracy with a bootstrap CI and balanced accuracy for judging. Figures only
one pattern has (LINC's prover success rate, the cascade's tiers) come from that pattern's own
``summarize`` hook and sit under ``Summary.pattern_metrics``: the harness names no pattern.

Units and conventions (also stated in ``Summary.cost_unit`` so a summary.json is self-describing):

- **Cost is relative, not dollars**, and **energy** is an estimate: see ``agentkit.pricing``.
- **cost_per_success** is total cost / number of correct examples, and ``None`` when nothing is
  correct (JSON has no infinity, and "undefined" is the honest value).
- **Errors count as wrong** in accuracy (an example that crashed did not succeed); latency
  percentiles include errored examples (their time was spent).
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentkit.errors import ConfigError
from agentkit.pricing import (
    COST_UNIT,
    EnergyTable,
    ModelUsage,
    Prices,
    Usage,
    example_cost,
    example_energy,
)
from agentkit.vocab import error_at

__all__ = [
    "COST_UNIT",
    "EnergyTable",
    "ExampleResult",
    "ModelUsage",
    "Prices",
    "ResultsError",
    "Summary",
    "Usage",
    "example_cost",
    "example_energy",
    "read_results",
    "summarize",
]

_LOG = logging.getLogger(__name__)


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
    extra: dict[str, Any] = Field(default_factory=dict)

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
    accuracy_ci95: tuple[float, float] | None
    balanced_accuracy: float | None = None
    errors: int
    errors_by_type: dict[str, int] = Field(default_factory=dict)
    schema_validity: float | None = None
    latency_p50_s: float | None = None
    latency_p95_s: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    calls_per_example: float | None = None
    cost: float = 0.0
    cost_per_success: float | None = None
    cost_unit: str = COST_UNIT
    energy_j: float = 0.0
    energy_per_example_j: float | None = None
    pattern_metrics: dict[str, Any] = Field(
        default_factory=dict, description="the pattern's own figures, from its summarize hook (agentkit.pattern)")


def _bootstrap_ci(successes: int, n: int, *, resamples: int, seed: int) -> tuple[float, float]:
    """Percentile bootstrap of a 0/1 mean.

    Resampling n outcomes with replacement from a set with k successes yields Binomial(n, k/n)
    successes, so drawing that directly IS the bootstrap, exactly, in O(resamples) memory instead of
    O(n * resamples).
    """
    rng = np.random.default_rng(seed)
    draws = rng.binomial(n, successes / n, size=resamples) / n
    lo, hi = np.percentile(draws, [2.5, 97.5])
    return float(lo), float(hi)


def _balanced_accuracy(results: list[ExampleResult], classes: Collection[str] | None) -> float | None:
    """Mean per-class recall: a judge that always says "correct" scores 0.5, not the base rate."""
    present = sorted({r.label for r in results})
    if classes is None:
        if len(present) != 2:  # binary label sets only, unless the caller names the classes
            return None
        classes = present
    recalls = []
    for cls in classes:
        members = [r for r in results if r.label == cls]
        if members:
            recalls.append(sum(r.succeeded for r in members) / len(members))
    return sum(recalls) / len(recalls) if recalls else None


def _mean_or_none(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summarize(
    results: Iterable[ExampleResult] | Mapping[str, ExampleResult],
    prices: Prices | None = None,
    *,
    energy: EnergyTable | None = None,
    classes: Collection[str] | None = None,
    seed: int = 0,
    resamples: int = 2000,
) -> Summary:
    """Aggregate results into a Summary.

    ``classes`` turns on balanced accuracy for a multi-class label set (e.g. True/False/Uncertain);
    without it balanced accuracy is reported only when the gold labels are binary. The bootstrap is
    seeded so a summary is reproducible byte for byte.
    """
    items = list(results.values()) if isinstance(results, Mapping) else list(results)
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
        accuracy_ci95=_bootstrap_ci(correct, n, resamples=resamples, seed=seed) if n else None,
        balanced_accuracy=_balanced_accuracy(items, classes),
        errors=sum(error_types.values()),
        errors_by_type=dict(sorted(error_types.items())),
        schema_validity=_mean_or_none(schema_known),
        latency_p50_s=p50,
        latency_p95_s=p95,
        input_tokens=sum(r.usage.input_tokens for r in items),
        output_tokens=sum(r.usage.output_tokens for r in items),
        cached_tokens=sum(r.usage.cached_tokens for r in items),
        calls_per_example=sum(r.calls for r in items) / n if n else None,
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
