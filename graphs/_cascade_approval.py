"""Asking a person before the cascade escalates to a dearer tier (``approve_escalation``).

What is asked: why the lower tier failed, and what the upper tier will roughly cost. The cost is an
*estimate* made before the upper tier runs: the lower tier's tokens (the same prompt, about as much
reasoning) priced at the upper tier's per-token price (``agentkit.pricing``). It says nothing about
a tier that samples more (``large_k`` > ``k``) beyond that; the label says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from agentkit.pricing import ModelUsage, Prices, Usage, example_cost

#: ``approve_escalation`` values: ask a person (True), never ask (False), or an unattended policy
Policy = bool | Literal["auto-approve", "auto-reject"]

ESTIMATE_LABEL = ("estimate: the lower tier's tokens priced at the upper tier's price "
                  "(made before the upper tier runs)")


def auto_decision(policy: Policy) -> Literal["approve", "reject"] | None:
    """What an approval node decides by itself: None means it pauses for a person."""
    return {"auto-approve": "approve", "auto-reject": "reject"}.get(policy) if isinstance(policy, str) else None


def estimated_cost(lower: Usage, upper_model: str | None, prices: Prices) -> float:
    """``lower``'s tokens as if ``upper_model`` had spent them (unknown model: the default price)."""
    tokens = ModelUsage(input_tokens=lower.input_tokens, output_tokens=lower.output_tokens,
                        cached_tokens=lower.cached_tokens)
    as_upper = Usage(input_tokens=lower.input_tokens, output_tokens=lower.output_tokens,
                     cached_tokens=lower.cached_tokens, by_model={upper_model: tokens} if upper_model else {})
    return example_cost(as_upper, prices)


def details(attempt: Any, upper: str, upper_model: str | None, prices: Prices) -> dict[str, Any]:
    """The facts shown with the question (and stored with the paused thread)."""
    return {"from_tier": attempt.tier, "to_tier": upper, "reason": attempt.failure, "detail": attempt.detail,
            "spent_so_far": attempt.cost, "estimated_cost": estimated_cost(attempt.usage, upper_model, prices),
            "estimated_cost_is": ESTIMATE_LABEL, "upper_model": upper_model, "cost_unit": prices.unit}


def question(facts: Mapping[str, Any]) -> str:
    return (f"escalate from tier {facts['from_tier']!r} to {facts['to_tier']!r}? reason: {facts['reason']}"
            f"{' (' + facts['detail'] + ')' if facts.get('detail') else ''}; estimated cost "
            f"~{facts['estimated_cost']:.4g} (an estimate: the lower tier's tokens at the upper tier's price)")
