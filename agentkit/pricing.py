"""What tokens cost and how much energy they take, per model: shared by the eval harness and by
patterns that price their own steps (the cascade's tiers).

**Cost is relative, not dollars.** The default ``Prices`` charge each model its size in billions of
parameters per 1k tokens (SmolLM2-135M: 0.135, 360M: 0.36, 1.7B: 1.7, an 8B model: 8, unknown: 1.0),
for input and output alike. That makes patterns comparable by compute without pretending to know
anyone's bill; pass real prices to get money.

**Cached input is charged, at a discount.** Every backend reports a prompt as ``input_tokens`` (the
tokens it computed) plus ``cached_tokens`` (those it served from a prefix/KV cache: vLLM's prefix
cache; llama.cpp's prompt KV, which a request's later samples share and a later request with the
same prefix reuses); the two never overlap. Uncached input is charged the input price, cached
input ``Prices.cached_input_fraction`` of it (default 0.1, the usual API discount for cache
reads), output the output price. So a pattern that re-reads a long prompt is not free, and a
backend that caches is not charged twice.

**Energy** is an order-of-magnitude estimate: joules per computed token (uncached input + output) per
model; a cached prefix was not recomputed.
The default is 0.05 J/token per billion parameters, anchored on the ~3-4 J/token measured for
LLaMA-65B inference on A100/V100 GPUs (Samsi et al., "From Words to Watts", 2023) and scaled
linearly with size; unknown models get 0.05 J/token (1B). Measure your hardware and pass
``EnergyTable`` for anything better.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["COST_UNIT", "EnergyTable", "ModelUsage", "Prices", "Usage", "example_cost", "example_energy"]

COST_UNIT = "relative: price per 1k tokens = model size in billions of parameters (not dollars)"


class ModelUsage(BaseModel):
    """Tokens one model spent; cost and energy differ per model, so totals alone are not enough.

    ``from_attributes`` lets the runner pass the backends' own ``Usage`` objects straight in.
    """

    model_config = ConfigDict(from_attributes=True)

    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    cached_tokens: int = Field(default=0, ge=0)


class Usage(BaseModel):
    """An example's tokens: ``input_tokens`` were computed, ``cached_tokens`` came from a cache (disjoint)."""

    model_config = ConfigDict(from_attributes=True)

    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    cached_tokens: int = Field(default=0, ge=0)
    by_model: dict[str, ModelUsage] = Field(default_factory=dict)


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
    """Price per 1k tokens (input, output), keyed by case-insensitive model-name substrings.

    ``cached_input_fraction`` prices a cached input token as that share of the model's input price
    (0.1 by default, the usual API discount; 1.0 charges cache reads in full, 0.0 makes them free).
    """

    per_model: dict[str, tuple[float, float]] = Field(default_factory=_default_prices)
    default: tuple[float, float] = (1.0, 1.0)
    cached_input_fraction: float = Field(default=0.1, ge=0.0, le=1.0)
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


class _Tokens(NamedTuple):
    model: str | None  # None: tokens no model was named for, priced at the default
    uncached_in: int
    cached_in: int
    out: int


def _per_model_tokens(usage: Usage) -> list[_Tokens]:
    """Split an example's tokens by model; tokens not attributed to any model are priced at the default."""
    named = list(usage.by_model.values())
    parts = [_Tokens(name, u.input_tokens, u.cached_tokens, u.output_tokens) for name, u in usage.by_model.items()]
    rest = _Tokens(None, max(usage.input_tokens - sum(u.input_tokens for u in named), 0),
                   max(usage.cached_tokens - sum(u.cached_tokens for u in named), 0),
                   max(usage.output_tokens - sum(u.output_tokens for u in named), 0))
    if rest.uncached_in or rest.cached_in or rest.out:
        parts.append(rest)
    return parts


def example_cost(usage: Usage, prices: Prices) -> float:
    """Uncached input at the input price, cached input at ``cached_input_fraction`` of it, output at
    the output price (per 1k tokens). ``input_tokens`` excludes cached tokens, as the backends report."""
    total = 0.0
    for part in _per_model_tokens(usage):
        price_in, price_out = prices.default if part.model is None else prices.price_for(part.model)
        billed_in = part.uncached_in + part.cached_in * prices.cached_input_fraction
        total += billed_in / 1000.0 * price_in + part.out / 1000.0 * price_out
    return total


def example_energy(usage: Usage, energy: EnergyTable) -> float:
    """Computed tokens only: a cached prefix was not recomputed, so it took (next to) no energy."""
    total = 0.0
    for part in _per_model_tokens(usage):
        rate = energy.default if part.model is None else energy.joules_per_token(part.model)
        total += (part.uncached_in + part.out) * rate
    return total
