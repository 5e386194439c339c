"""Per-example results in, one ``Summary`` out: the numbers ``agentkit eval`` reports.

The metric set is the cascade survey's (cost per successful task, schema validity, p50/p95 latency,
energy per request) plus accuracy with a bootstrap CI, balanced accuracy for judging, and LINC's
prover success rate.

Units and conventions (also stated in ``Summary.cost_unit`` so a summary.json is self-describing):

- **Cost is relative, not dollars.** The default ``Prices`` charge each model its size in billions
  of parameters per 1k tokens (SmolLM2-135M: 0.135, 360M: 0.36, 1.7B: 1.7, an 8B model: 8, unknown:
  1.0), for input and output alike; cached input tokens are charged as input (conservative). That
  makes patterns comparable by compute without pretending to know anyone's bill; pass real prices
  to get money.
- **cost_per_success** is total cost / number of correct examples, and ``None`` when nothing is
  correct (JSON has no infinity, and "undefined" is the honest value).
- **Energy** is an order-of-magnitude estimate: joules per processed token (input + output) per
  model. The default is 0.05 J/token per billion parameters, anchored on the ~3-4 J/token measured
  for LLaMA-65B inference on A100/V100 GPUs (Samsi et al., "From Words to Watts", 2023) and scaled
  linearly with size; unknown models get 0.05 J/token (1B). Measure your hardware and pass
  ``EnergyTable`` for anything better.
- **Errors count as wrong** in accuracy (an example that crashed did not succeed); latency
  percentiles include errored examples (their time was spent).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentkit.errors import ConfigError

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

COST_UNIT = "relative: price per 1k tokens = model size in billions of parameters (not dollars)"


class ResultsError(ConfigError):
    """A results.jsonl line (other than a crash-truncated last line) cannot be read."""


# --------------------------------------------------------------------------- records


class ModelUsage(BaseModel):
    """Tokens one model spent; cost and energy differ per model, so totals alone are not enough.

    ``from_attributes`` lets the runner pass the backends' own ``Usage`` objects straight in.
    """

    model_config = ConfigDict(from_attributes=True)

    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    cached_tokens: int = Field(default=0, ge=0)


class Usage(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    cached_tokens: int = Field(default=0, ge=0)
    by_model: dict[str, ModelUsage] = Field(default_factory=dict)


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


# --------------------------------------------------------------------------- model tables


def _size_key_pattern(key: str) -> re.Pattern[str]:
    # "8b" must match "Qwen3-8B" but not "1.8b" or "18b": no digit or dot right before the key,
    # no letter/digit right after it.
    return re.compile(rf"(?<![0-9.]){re.escape(key.lower())}(?![a-z0-9])")


def _lookup(table: Mapping[str, Any], model: str, default: Any) -> Any:
    """Longest matching key wins, so a specific entry ("smollm2-1.7b") beats a generic one ("1.7b")."""
    name = model.lower()
    hits = [key for key in table if _size_key_pattern(key).search(name)]
    return table[max(hits, key=len)] if hits else default


def _default_prices() -> dict[str, tuple[float, float]]:
    return {"135m": (0.135, 0.135), "360m": (0.36, 0.36), "1.7b": (1.7, 1.7), "8b": (8.0, 8.0)}


class Prices(BaseModel):
    """Price per 1k tokens (input, output), keyed by case-insensitive model-name substrings."""

    per_model: dict[str, tuple[float, float]] = Field(default_factory=_default_prices)
    default: tuple[float, float] = (1.0, 1.0)
    unit: str = COST_UNIT

    def price_for(self, model: str) -> tuple[float, float]:
        return _lookup(self.per_model, model, self.default)


_J_PER_TOKEN_PER_B = 0.05


def _default_energy() -> dict[str, float]:
    return {k: round(v * _J_PER_TOKEN_PER_B, 6) for k, v in {"135m": 0.135, "360m": 0.36, "1.7b": 1.7,
                                                               "8b": 8.0}.items()}


class EnergyTable(BaseModel):
    """Joules per processed token, keyed like ``Prices``; defaults are the estimate in the module doc."""

    per_model: dict[str, float] = Field(default_factory=_default_energy)
    default: float = _J_PER_TOKEN_PER_B

    def joules_per_token(self, model: str) -> float:
        return _lookup(self.per_model, model, self.default)


def _per_model_tokens(usage: Usage) -> list[tuple[str | None, int, int]]:
    """Split an example's tokens by model; tokens not attributed to any model are priced at the default."""
    parts: list[tuple[str | None, int, int]] = [
        (name, u.input_tokens, u.output_tokens) for name, u in usage.by_model.items()
    ]
    rest_in = usage.input_tokens - sum(u.input_tokens for u in usage.by_model.values())
    rest_out = usage.output_tokens - sum(u.output_tokens for u in usage.by_model.values())
    if rest_in > 0 or rest_out > 0:
        parts.append((None, max(rest_in, 0), max(rest_out, 0)))
    return parts


def example_cost(usage: Usage, prices: Prices) -> float:
    total = 0.0
    for model, tokens_in, tokens_out in _per_model_tokens(usage):
        price_in, price_out = prices.default if model is None else prices.price_for(model)
        total += tokens_in / 1000.0 * price_in + tokens_out / 1000.0 * price_out
    return total


def example_energy(usage: Usage, energy: EnergyTable) -> float:
    total = 0.0
    for model, tokens_in, tokens_out in _per_model_tokens(usage):
        rate = energy.default if model is None else energy.joules_per_token(model)
        total += (tokens_in + tokens_out) * rate
    return total


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
    prover_success_rate: float | None = None
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
    prover = [
        float(r.extra["prover_success_rate"])
        for r in items
        if isinstance(r.extra.get("prover_success_rate"), (int, float))
        and not isinstance(r.extra.get("prover_success_rate"), bool)
    ]
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
        prover_success_rate=_mean_or_none(prover),
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
            detail = exc.msg if isinstance(exc, json.JSONDecodeError) else exc.errors()[0]["msg"]
            raise ResultsError(
                f"{path}:{line_no}: unreadable result ({detail}); delete that line and rerun with "
                "--resume to recompute the example"
            ) from None
        results.pop(record.id, None)  # re-insert so dict order follows the latest write
        results[record.id] = record
    return results
