"""Cached input tokens are charged at a documented fraction of the input price, never twice, never free.

Backends report a prompt as ``input_tokens`` (computed) plus ``cached_tokens`` (served from a cache),
disjoint; these tests pin the price of each part by hand.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agentkit.backends._openai_format import _Usage, usage_from
from agentkit.pricing import (
    EnergyTable,
    ModelUsage,
    Prices,
    Usage,
    example_cost,
    example_energy,
)

FLAT = Prices(per_model={}, default=(2.0, 4.0))  # per 1k tokens: input 2, output 4


def test_cached_input_costs_a_tenth_of_the_input_price_by_default() -> None:
    # 1000 computed + 3000 cached input, 500 output: 1*2 + 3*0.1*2 + 0.5*4 = 2 + 0.6 + 2
    usage = Usage(input_tokens=1000, cached_tokens=3000, output_tokens=500)
    assert FLAT.cached_input_fraction == 0.1
    assert example_cost(usage, FLAT) == pytest.approx(4.6)
    # before the fix cached tokens were free: the same cost as without them (4.0)
    assert example_cost(usage, FLAT) != pytest.approx(example_cost(Usage(input_tokens=1000, output_tokens=500), FLAT))


@pytest.mark.parametrize(("fraction", "cost"), [(0.0, 4.0), (0.5, 7.0), (1.0, 10.0)])
def test_the_fraction_is_a_knob(fraction: float, cost: float) -> None:
    prices = FLAT.model_copy(update={"cached_input_fraction": fraction})
    assert example_cost(Usage(input_tokens=1000, cached_tokens=3000, output_tokens=500), prices) == pytest.approx(cost)


def test_per_model_cached_tokens_use_that_models_price_and_the_rest_the_default() -> None:
    prices = Prices(per_model={"135m": (1.0, 1.0), "8b": (10.0, 20.0)}, default=(100.0, 100.0))
    usage = Usage(input_tokens=3000, cached_tokens=6000, output_tokens=300, by_model={
        "SmolLM2-135M": ModelUsage(input_tokens=1000, cached_tokens=2000, output_tokens=100),
        "Qwen3-8B": ModelUsage(input_tokens=1000, cached_tokens=2000, output_tokens=100),
    })
    small = 1 * 1.0 + 2 * 0.1 * 1.0 + 0.1 * 1.0  # 1.3
    large = 1 * 10.0 + 2 * 0.1 * 10.0 + 0.1 * 20.0  # 14.0
    rest = 1 * 100.0 + 2 * 0.1 * 100.0 + 0.1 * 100.0  # unattributed tokens: the default price; 130.0
    assert example_cost(usage, prices) == pytest.approx(small + large + rest)


def test_a_server_reply_with_a_cached_prefix_is_not_charged_twice() -> None:
    """The OpenAI-compatible reply counts cached tokens INSIDE prompt_tokens; our Usage splits them."""
    reply = _Usage.model_validate({"prompt_tokens": 1000, "completion_tokens": 0,
                                   "prompt_tokens_details": {"cached_tokens": 768}})
    usage = usage_from(reply)
    assert (usage.input_tokens, usage.cached_tokens) == (232, 768)
    # 232 at the full price + 768 at a tenth: less than 1000 full-price tokens, more than 232
    assert example_cost(Usage.model_validate(usage, from_attributes=True), FLAT) == pytest.approx(
        (232 + 76.8) / 1000 * 2.0)


def test_energy_counts_computed_tokens_only() -> None:
    table = EnergyTable(per_model={}, default=1.0)
    assert example_energy(Usage(input_tokens=10, cached_tokens=1000, output_tokens=5), table) == pytest.approx(15.0)


def test_a_fraction_outside_0_1_is_refused() -> None:
    with pytest.raises(ValidationError, match="cached_input_fraction"):
        Prices(cached_input_fraction=1.5)
