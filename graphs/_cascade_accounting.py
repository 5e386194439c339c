"""The cascade's own figures for an eval summary (``pattern_metrics``), from each example's extras.

A cascade is only worth its tiers if one can see where the answers came from and what each tier
cost; these are the numbers the survey's cost-per-successful-task argument needs:

- ``escalation_rate``: share of routed examples that left the first tier (its answer was not kept).
- ``escalation_reasons``: why tiers handed on, counted over every escalation (an example that climbs
  two rungs counts twice).
- per tier (``tiers``, in cascade order): ``attempts`` (examples that ran it), ``answered`` (examples
  whose final answer it gave), ``correct`` and ``accuracy`` among those, ``cost`` (everything spent
  on the tier, escalated attempts included) and ``cost_per_success`` = that cost / ``correct``
  (None when it answered nothing correctly), so a tier that mostly escalates shows its waste.

Examples without routing facts (an error before the first tier ran) are counted in ``unrouted``
and left out of the rates.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from agentkit.pattern import ScoredExample


def _tier_rows(example: ScoredExample) -> list[Mapping[str, Any]] | None:
    tiers = example.extra.get("tiers")
    if not isinstance(tiers, list) or not tiers or not all(isinstance(t, Mapping) and "tier" in t for t in tiers):
        return None
    return tiers


def _escalated(rows: Sequence[Mapping[str, Any]], i: int) -> bool:
    """Extras written before ``escalated`` was recorded: every attempt but the last handed on."""
    value = rows[i].get("escalated")
    return bool(value) if value is not None else i < len(rows) - 1


def summarize(results: Sequence[ScoredExample]) -> dict[str, Any]:
    """The ``Pattern.summarize`` hook of ``cascade``: see the module docstring for each figure."""
    order: list[str] = []
    attempts: Counter[str] = Counter()
    answered: Counter[str] = Counter()
    correct: Counter[str] = Counter()
    cost: dict[str, float] = {}
    reasons: Counter[str] = Counter()
    routed = escalated = unrouted = 0
    for example in results:
        rows = _tier_rows(example)
        if rows is None:
            unrouted += 1
            continue
        routed += 1
        escalated += _escalated(rows, 0)
        for i, row in enumerate(rows):
            name = str(row["tier"])
            if name not in order:
                order.append(name)
            attempts[name] += 1
            cost[name] = cost.get(name, 0.0) + float(row.get("cost") or 0.0)
            if _escalated(rows, i):
                reasons[str(row.get("failure") or "unknown")] += 1
        by = example.extra.get("answered_by")
        if isinstance(by, str):
            answered[by] += 1
            correct[by] += example.correct is True and example.error is None
    tiers = {
        name: {"attempts": attempts[name], "answered": answered[name], "correct": correct[name],
               "accuracy": correct[name] / answered[name] if answered[name] else None,
               "cost": cost.get(name, 0.0),
               "cost_per_success": cost.get(name, 0.0) / correct[name] if correct[name] else None}
        for name in order
    }
    return {"escalation_rate": escalated / routed if routed else None,
            "escalation_reasons": dict(sorted(reasons.items())), "tiers": tiers, "unrouted": unrouted}
