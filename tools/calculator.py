"""An exact calculator tool for agents, built on :mod:`agentkit.verifiers.arithmetic`.

Small models are bad at arithmetic and good at writing expressions, so they get a calculator that
parses (never evals) and computes exactly with fractions. The answer is written for a model to
read back: an integer as is, otherwise a short decimal plus the exact fraction, so that
``1/3`` is neither lost to rounding nor a 40-digit decimal.
"""

from __future__ import annotations

from decimal import Decimal, Inexact, localcontext
from fractions import Fraction
from typing import Annotated

from agentkit.tools.base import tool
from agentkit.verifiers.arithmetic import MAX_CHARS, evaluate
from pydantic import Field

__all__ = ["calculator", "format_exact"]

_SIGNIFICANT_DIGITS = 12
_FIXED_RANGE = (Fraction(1, 10**6), Fraction(10**15))  # outside it, scientific notation


def _fixed(value: Fraction) -> tuple[str, bool]:
    """All integer digits plus enough decimals for ~12 significant digits; (text, exact)."""
    magnitude = abs(value)
    if magnitude >= 1:
        places = max(4, _SIGNIFICANT_DIGITS - len(str(int(magnitude))))
    else:  # leading zeros after the point, from the digit counts, then corrected
        zeros = max(len(str(value.denominator)) - len(str(abs(value.numerator))) - 1, 0)
        while magnitude * 10 ** (zeros + 1) < 1:
            zeros += 1
        while zeros and magnitude * 10**zeros >= 1:
            zeros -= 1
        places = zeros + _SIGNIFICANT_DIGITS
    scaled = value * 10**places
    rounded = round(scaled)  # half-even
    digits = str(abs(rounded)).rjust(places + 1, "0")
    sign = "-" if rounded < 0 else ""
    return f"{sign}{digits[:-places]}.{digits[-places:]}".rstrip("0").rstrip("."), rounded == scaled


def _scientific(value: Fraction) -> tuple[str, bool]:
    with localcontext() as ctx:
        ctx.prec = _SIGNIFICANT_DIGITS
        approx = Decimal(value.numerator) / Decimal(value.denominator)
        return f"{approx:E}", not ctx.flags[Inexact]


def format_exact(value: Fraction) -> str:
    """``24``; ``0.75 (3/4)`` when the decimal is exact; ``≈0.333333333333 (1/3)`` when rounded.

    Very small or large non-integers use scientific notation for the decimal part
    (``≈3.33333333333E+20 (...)``); the exact fraction is always given in full.
    """
    if value.denominator == 1:
        return str(value.numerator)
    low, high = _FIXED_RANGE
    text, exact = _fixed(value) if low <= abs(value) < high else _scientific(value)
    fraction = f"{value.numerator}/{value.denominator}"
    return f"{text} ({fraction})" if exact else f"≈{text} ({fraction})"


@tool(name="calculator")
def calculator(expression: Annotated[str, Field(min_length=1, max_length=MAX_CHARS)]) -> str:
    """Evaluate an arithmetic expression exactly: numbers, + - * / // % ** (or ^) and parentheses.

    Args:
        expression: the arithmetic to compute, e.g. "(48 / 2) * 3 - 0.5". No variables or
            functions; write a square root as x ** 0.5.
    """
    return format_exact(evaluate(expression))
