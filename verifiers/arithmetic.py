"""Exact checking of arithmetic that models write: expressions, claims and GSM8K annotations.

Model text is PARSED, never executed: :mod:`agentkit.verifiers._arith_eval` tokenizes it, lets
Python's ``ast`` build the tree and walks a whitelist of nodes with :class:`fractions.Fraction`,
so ``0.1 + 0.2 = 0.3`` is exactly true and no float rounding can make a wrong claim look right
(or a right one wrong). Its module docstring is the grammar and the limits (the documented
contract); :func:`evaluate`, the limits and the error classes are re-exported here.

This module finds the claims in a worked solution (``<<expr=result>>`` annotations and prose
equations), checks each one, and wraps that as a hard :class:`ArithmeticVerifier`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from agentkit.verifiers._arith_eval import (
    _OP_CANON,
    MAX_BITS,
    MAX_CHARS,
    MAX_DEPTH,
    MAX_OPERATORS,
    ArithmeticDomainError,
    ArithmeticInputError,
    ArithmeticLimitError,
    ArithmeticSyntaxError,
    evaluate,
)
from agentkit.verifiers.base import Verdict, VerifierBase

__all__ = [
    "MAX_BITS",
    "MAX_CHARS",
    "MAX_DEPTH",
    "MAX_OPERATORS",
    "MAX_SOLUTION_CHARS",
    "ArithmeticDomainError",
    "ArithmeticInputError",
    "ArithmeticLimitError",
    "ArithmeticSyntaxError",
    "ArithmeticVerifier",
    "ClaimCheck",
    "check_claim",
    "check_solution",
    "evaluate",
    "find_claims",
]

MAX_SOLUTION_CHARS = 200_000  # check_solution/find_claims input (a long model output is ~10k)


# -------------------------------------------------------------------------------------- claims
class ClaimCheck(BaseModel):
    """One arithmetic claim found in text and whether it holds (values are exact, as strings)."""

    model_config = ConfigDict(frozen=True)

    text: str
    source: Literal["claim", "annotation", "equation"]
    expression: str
    claimed: str
    value: str
    correct: bool


_FLOAT_RELATIVE_ERROR = Fraction(1, 2**50)  # a few ulps of a float64
_PLAIN_DECIMAL_RE = re.compile(r"^\s*-?\s*(\d*)\.(\d+)\s*$")
_THOUSANDS_RE = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")


def _clean_side(side: str) -> str:
    """Drop what people put around numbers in prose: dollar signs, thousands separators, 'x'."""
    side = side.replace("$", "")
    side = _THOUSANDS_RE.sub("", side)
    side = re.sub(r"(?<=[\d)\s])x(?=[\s\d(])", "*", side)
    return side.strip()


def _display_ok(value: Fraction, claimed_text: str, claimed: Fraction) -> bool:
    """Claimed equals value, or is value rounded/truncated to the decimals it shows.

    ``10/3 = 3.33`` is a correct claim as written; ``10/3 = 3`` is not (an integer claim is exact).
    A claim with 15+ significant digits within float64 rounding of the value is accepted too:
    model calculators print ``0.6000000000000001`` for ``6*0.10``.
    """
    if value == claimed:
        return True
    m = _PLAIN_DECIMAL_RE.match(claimed_text)
    if not m:
        return False
    significant = (m.group(1) + m.group(2)).lstrip("0")
    if len(significant) >= 15 and abs(claimed - value) <= abs(value) * _FLOAT_RELATIVE_ERROR:
        return True  # a float's rendering of the right value: 10/100*38 = 3.8000000000000003
    scale = 10 ** len(m.group(2))
    scaled = value * scale
    floor = scaled.numerator // scaled.denominator
    truncated = floor if value >= 0 else -((-scaled.numerator) // scaled.denominator)
    half_up = math.floor(scaled + Fraction(1, 2))
    half_even = round(scaled)
    return claimed * scale in {truncated, half_up, half_even}


def _fmt(v: Fraction) -> str:
    """Exact spelling for reasons and ClaimCheck: '24', or '10/3 (~3.33333)'.

    The approximation uses Decimal, not float: a MAX_BITS-sized value overflows a float.
    """
    if v.denominator == 1:
        return str(v.numerator)
    with localcontext() as ctx:
        ctx.prec = 6
        approx = Decimal(v.numerator) / Decimal(v.denominator)
    return f"{v.numerator}/{v.denominator} (~{approx})"


_LEADING_NUMBER_RE = re.compile(r"^\s*(-?\s*(?:\d+\.?\d*|\.\d+))\s*[-+*/^×÷%]")


def _step_ok(value: Fraction, right_text: str, right: Fraction) -> bool:
    """Does ``left = right`` hold, reading a chain step the way people write running totals?

    Either the sides are equal (up to the rounding the right side displays), or the right side
    *starts* with the left side's value and carries on computing: in ``3/2 = 1.50 + 3 = 4.50``
    the first '=' means "is 1.50, then plus 3". A wrong carried value still fails.
    """
    if _display_ok(value, right_text, right):
        return True
    m = _LEADING_NUMBER_RE.match(right_text)
    if not m:
        return False
    lead_text = m.group(1).replace(" ", "")
    return _display_ok(value, lead_text, Fraction(lead_text))


def _check_equation(text: str, source: Literal["claim", "annotation", "equation"]) -> ClaimCheck:
    sides = [_clean_side(s) for s in text.replace("==", "=").split("=")]
    if len(sides) < 2 or any(not s for s in sides):
        raise ArithmeticSyntaxError(f"not an equation of the form 'expression = value': {text!r}")
    values = [evaluate(side) for side in sides]
    for i in range(len(sides) - 1):
        if not _step_ok(values[i], sides[i + 1], values[i + 1]):
            return ClaimCheck(
                text=text,
                source=source,
                expression=sides[i],
                claimed=sides[i + 1],
                value=_fmt(values[i]),
                correct=False,
            )
    return ClaimCheck(
        text=text,
        source=source,
        expression=" = ".join(sides[:-1]),
        claimed=sides[-1],
        value=_fmt(values[-2]),
        correct=True,
    )


def check_claim(text: str) -> Verdict:
    """Check one claim like ``"48 / 2 = 24"`` or ``"3 + 4 * 2 = 11"`` (chains ``a = b = c`` too).

    Each ``=`` must hold: the right side equals the left (a decimal right side may be rounded or
    truncated to the digits it shows), or carries a running total on (``3/2 = 1.5 + 3 = 4.5``).
    ``$`` and thousands separators are ignored.
    Raises :class:`ArithmeticInputError` when the text is not an arithmetic equation.
    """
    if not isinstance(text, str):
        raise ArithmeticSyntaxError(f"expected a claim string, got {type(text).__name__}")
    check = _check_equation(text.strip().rstrip("."), "claim")
    if check.correct:
        return Verdict(ok=True, score=1.0, label="correct", reason=f"{text.strip()} holds")
    return Verdict(
        ok=False,
        score=0.0,
        label="incorrect",
        reason=f"{check.expression} is {check.value}, not {check.claimed}",
    )


_ANNOTATION_RE = re.compile(r"<<([^<>]*)>>")
# Prose equations: sides made of numbers, operators and parentheses on one line, joined by '='.
_NUM = r"(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?|\.\d+"
_OPERAND = rf"\(*[ \t]*-?\$?(?:{_NUM})[ \t]*\)*"
_OPERATOR = r"(?:\^|[-+*/×÷]|(?<=[\d \t)])x(?=[ \t\d(]))"
_SIDE = rf"{_OPERAND}(?:[ \t]*{_OPERATOR}[ \t]*{_OPERAND})*"
_EQUATION_RE = re.compile(
    rf"(?<![\w.,$])(?P<chain>{_SIDE}(?:[ \t]*=[ \t]*{_SIDE})+)"
    # the last side must really end: no operator, digit, unit-less mixed number or '%' after it
    r"(?![ \t]*(?:[-+*/^×÷=)]|x[ \t]*[\d(])|[\w%]|[.,/]\d|[ \t]+\d+/\d)"
)
# An equation whose left end touches a number, operator or ')' is a fragment of a longer
# expression with words in it ("9 hours * 2/3 = 6", "1/2 (68) + 10 = 44"): not a claim.
_FRAGMENT_PREFIX_RE = re.compile(r"(?:[\d.,+\-*/^×÷)%$]|(?<![A-Za-z])x)[ \t(]*$")
_COMPUTES_RE = re.compile(r"[\d.)][ \t]*(?:[-+*/^×÷]|x)")
_ARITHMETIC_RUN_RE = re.compile(r"[\d.,$()+\-*/^×÷x= \t]+")
_MAX_EQUATION_CHARS = 200


def _canon(expr: str) -> str:
    """Spelling-independent key so an annotation and the same equation in prose count once."""
    expr = re.sub(r"\s+", "", expr)
    for written, canonical in _OP_CANON.items():
        expr = expr.replace(written, canonical)
    return expr


def _balance(expr: str) -> str:
    """Drop unmatched parentheses a prose regex picks up at the edges: '(3 + 4' -> '3 + 4'."""
    extra = expr.count("(") - expr.count(")")
    while extra > 0 and expr.lstrip().startswith("("):
        expr, extra = expr.lstrip()[1:], extra - 1
    while extra < 0 and expr.rstrip().endswith(")"):
        expr, extra = expr.rstrip()[:-1], extra + 1
    return expr.strip()


def _prose_for_equations(text: str) -> str:
    text = _ANNOTATION_RE.sub("", text)
    text = re.sub(r"\\(?:times|cdot)", "×", text)
    text = text.replace("\\div", "÷").replace("–", "-").replace("−", "-")
    text = re.sub(r"(?<=[\d)])[ \t]*\*\*[ \t]*(?=[\d(])", "^", text)
    return re.sub(r"\*{2,}|_{2,}", " ", text)  # markdown emphasis, not arithmetic


def _prose_equations(text: str) -> list[str]:
    """Equations in prose, scanning only short runs of arithmetic characters that contain '='.

    Scanning run by run keeps the regex work linear in the text: a run longer than
    _MAX_EQUATION_CHARS is no one's equation (and would make the backtracking quadratic).
    """
    prose = _prose_for_equations(text)
    found: list[str] = []
    for run in _ARITHMETIC_RUN_RE.finditer(prose):
        if "=" not in run.group() or len(run.group()) > _MAX_EQUATION_CHARS:
            continue
        pos, end = run.start(), min(len(prose), run.end() + 2)  # +2: context for the lookahead
        while (m := _EQUATION_RE.search(prose, pos, end)) is not None:
            pos = m.end()
            if _FRAGMENT_PREFIX_RE.search(prose, max(0, m.start() - 40), m.start()):
                continue
            sides = [_balance(side) for side in m.group("chain").split("=")]
            if not any(_COMPUTES_RE.search(side) for side in sides):
                continue  # '5 = 5': nothing was computed
            found.append(" = ".join(sides))
    return found


def find_claims(text: str, *, equations: bool = True) -> list[ClaimCheck]:
    """Every checkable claim in a solution: ``<<expr=result>>`` annotations (GSM8K's calculator
    format), then — unless ``equations=False`` — ``a op b = c`` equations in the prose
    (annotations removed first; chains ``a = b = c`` must hold throughout).

    Claims that cannot be parsed or evaluated are skipped: they are evidence neither way. Text
    longer than :data:`MAX_SOLUTION_CHARS` is an :class:`ArithmeticLimitError`. Prose
    equations that are fragments of a longer expression with words in it are skipped too. The
    same ``expression = value`` written twice (annotation and prose) is reported once.
    """
    if not isinstance(text, str):
        raise ArithmeticSyntaxError(f"expected solution text, got {type(text).__name__}")
    if len(text) > MAX_SOLUTION_CHARS:
        raise ArithmeticLimitError(
            f"solution has {len(text)} characters (limit {MAX_SOLUTION_CHARS})",
            position=MAX_SOLUTION_CHARS,
        )
    found: list[ClaimCheck] = []
    seen: set[tuple[str, str]] = set()

    def add(candidate: str, source: Literal["annotation", "equation"]) -> None:
        try:
            check = _check_equation(candidate, source)
            key = (_canon(check.expression), str(evaluate(check.claimed)))
        except ArithmeticInputError:
            return
        if key not in seen:
            seen.add(key)
            found.append(check)

    for m in _ANNOTATION_RE.finditer(text):
        if "=" in m.group(1):
            add(m.group(1), "annotation")
    if equations:
        for equation in _prose_equations(text):
            add(equation, "equation")
    return found


def check_solution(text: str, *, equations: bool = True) -> Verdict:
    """Are the calculations in a worked solution right? ``score`` = fraction of claims correct.

    Labels: ``consistent`` (all correct, ok=True), ``inconsistent`` (ok=False; the reason lists
    the wrong claims), ``no-claims`` (nothing checkable; ok=None, score=None).
    ``equations=False`` checks only the ``<<expr=result>>`` annotations (see :func:`find_claims`).
    """
    claims = find_claims(text, equations=equations)
    if not claims:
        return Verdict(ok=None, score=None, label="no-claims", reason="no arithmetic claims found")
    wrong = [c for c in claims if not c.correct]
    score = (len(claims) - len(wrong)) / len(claims)
    if not wrong:
        return Verdict(
            ok=True, score=score, label="consistent", reason=f"all {len(claims)} claims hold"
        )
    shown = "; ".join(f"{c.expression} = {c.claimed} (actually {c.value})" for c in wrong[:5])
    more = f" and {len(wrong) - 5} more" if len(wrong) > 5 else ""
    return Verdict(
        ok=False,
        score=score,
        label="inconsistent",
        reason=f"{len(wrong)} of {len(claims)} claims wrong: {shown}{more}",
    )


class ArithmeticVerifier(VerifierBase):
    """Hard verifier: a candidate passes unless one of its arithmetic claims is wrong.

    The candidate is solution text, or — with ``field`` — an object/mapping whose ``field`` holds
    the text (e.g. ``field="reasoning"`` on a typed agent output). With no claims the verdict
    abstains (``ok=None``) unless ``require_claims=True``, which fails it.
    """

    def __init__(
        self,
        name: str = "arithmetic",
        *,
        field: str | None = None,
        hard: bool = True,
        require_claims: bool = False,
    ) -> None:
        super().__init__(name, hard=hard)
        self.field = field
        self.require_claims = require_claims

    def check(self, candidate: Any, context: Mapping[str, Any]) -> Verdict:
        text = _text_of(candidate, self.field, self.name)
        verdict = check_solution(text)
        if verdict.label == "no-claims" and self.require_claims:
            return Verdict(ok=False, score=0.0, label="no-claims", reason=verdict.reason)
        return verdict


def _text_of(candidate: Any, field: str | None, verifier_name: str) -> str:
    value = candidate
    if field is not None:
        value = candidate.get(field) if isinstance(candidate, Mapping) else getattr(candidate, field, None)
    if not isinstance(value, str):
        where = f"field {field!r} of the candidate" if field else "the candidate"
        raise TypeError(
            f"{verifier_name}: {where} is {type(value).__name__}, expected solution text (str)"
        )
    return value
