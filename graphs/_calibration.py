"""Choosing a cascade's confidence threshold from dev-split results, without re-running models.

Every tier is run once on every dev example (``cascade.collect_dev_records``); because a tier's
outcome does not depend on the threshold, the cascade's accuracy and cost at any threshold can then
be replayed offline. Only the observed confidences change the routing, so those values (plus one
just above the largest, "always escalate") are the candidates. Two objectives, as METHODS.md asks:
the cheapest threshold whose accuracy reaches a target, or the one with the lowest cost per
successful task.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, Field

from agentkit.errors import ConfigError

_LOG = logging.getLogger(__name__)


class TierOutcome(BaseModel):
    """One tier on one dev example, scored without a threshold."""

    tier: str
    passed_checks: bool  # schema-valid, hard verifiers passed, an answer given
    answered: bool
    confidence: float | None
    correct: bool
    cost: float = Field(ge=0)


class DevRecord(BaseModel):
    id: str
    tiers: list[TierOutcome] = Field(min_length=1)  # in cascade order


class ThresholdPoint(BaseModel):
    threshold: float
    accuracy: float
    mean_cost: float
    successes: int
    cost_per_success: float | None  # total cost / successes; None when nothing succeeded
    answered_by: dict[str, int]  # tier -> examples whose final answer it gave


class Calibration(BaseModel):
    threshold: float
    objective: Literal["target_accuracy", "cost_per_success"]
    target_accuracy: float | None = None
    reached_target: bool | None = None
    chosen: ThresholdPoint
    curve: list[ThresholdPoint]


def _route(tiers: Sequence[TierOutcome], threshold: float) -> tuple[list[TierOutcome], TierOutcome | None]:
    """The tiers a cascade tries at ``threshold`` and the one whose answer it returns (as cascade.py)."""
    tried: list[TierOutcome] = []
    for i, tier in enumerate(tiers):
        tried.append(tier)
        confident = tier.confidence is not None and tier.confidence >= threshold
        if (tier.passed_checks and confident) or i == len(tiers) - 1:
            break
    chosen = next((t for t in reversed(tried) if t.answered), None)
    return tried, chosen


def simulate(records: Sequence[DevRecord], threshold: float) -> ThresholdPoint:
    if not records:
        raise ConfigError("calibration needs at least one dev record")
    successes, total_cost = 0, 0.0
    answered_by: dict[str, int] = {}
    for record in records:
        tried, chosen = _route(record.tiers, threshold)
        total_cost += sum(t.cost for t in tried)
        if chosen is not None:
            answered_by[chosen.tier] = answered_by.get(chosen.tier, 0) + 1
            successes += chosen.correct
    return ThresholdPoint(
        threshold=threshold,
        accuracy=successes / len(records),
        mean_cost=total_cost / len(records),
        successes=successes,
        cost_per_success=total_cost / successes if successes else None,
        answered_by=answered_by,
    )


def candidate_thresholds(records: Sequence[DevRecord]) -> list[float]:
    seen = sorted({t.confidence for r in records for t in r.tiers[:-1] if t.confidence is not None})
    return [*seen, math.nextafter(seen[-1], math.inf)] if seen else [0.0]


def calibrate(records: Sequence[DevRecord], *, target_accuracy: float | None = None) -> Calibration:
    """With ``target_accuracy``: the cheapest threshold reaching it (if none does, the most accurate,
    with ``reached_target=False``). Without: the threshold minimising cost per successful task.
    Ties go to higher accuracy, then to the lower threshold."""
    if target_accuracy is not None and not 0.0 <= target_accuracy <= 1.0:
        raise ConfigError(f"target_accuracy must be in [0, 1], got {target_accuracy!r}")
    curve = [simulate(records, t) for t in candidate_thresholds(records)]
    if target_accuracy is not None:
        feasible = [p for p in curve if p.accuracy >= target_accuracy]
        if feasible:
            best = min(feasible, key=lambda p: (p.mean_cost, -p.accuracy, p.threshold))
        else:
            best = min(curve, key=lambda p: (-p.accuracy, p.mean_cost, p.threshold))
            _LOG.warning("no threshold reaches accuracy %.3f on the dev split; best is %.3f at %.3f",
                         target_accuracy, best.accuracy, best.threshold)
        return Calibration(threshold=best.threshold, objective="target_accuracy", target_accuracy=target_accuracy,
                           reached_target=bool(feasible), chosen=best, curve=curve)
    scored = [p for p in curve if p.cost_per_success is not None]
    if not scored:
        raise ConfigError("no dev example was answered correctly at any threshold: cost per success is undefined; "
                          "use a larger dev split or pass target_accuracy")
    best = min(scored, key=lambda p: (p.cost_per_success, -p.accuracy, p.threshold))
    return Calibration(threshold=best.threshold, objective="cost_per_success", chosen=best, curve=curve)
