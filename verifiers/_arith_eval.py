"""The arithmetic evaluator behind :mod:`agentkit.verifiers.arithmetic`: tokenizer, limits, exact walk.

Kept apart from the claim finding so the part that touches untrusted text stays small enough to
audit on its own; everything here is re-exported by ``agentkit.verifiers.arithmetic``.

Model text is PARSED, never executed: a hand-written tokenizer admits only numbers, operators and
parentheses, Python's ``ast`` then builds the tree, and a whitelist walk evaluates it with
:class:`fractions.Fraction`, so ``0.1 + 0.2 = 0.3`` is exactly true and no float rounding can make
a wrong claim look right (or a right one wrong). Nothing reaches ``eval``/``exec``/``compile``.

Grammar (documented contract):

* numbers: ``12``, ``007``, ``3.5``, ``.5``, ``5.``, ``1e3``/``2.5E-2`` (exponent at most 1000);
* binary ``+ - * / // % **`` with Python's precedence and associativity, unary ``+``/``-``,
  parentheses; ``^`` means power (as in maths text, never XOR); ``×`` ``÷`` ``−`` are accepted;
* no names, calls, attributes, commas, comparisons — everything else is an
  :class:`ArithmeticSyntaxError`.

Only rational results exist here: ``a ** b`` needs ``b`` rational, and a fractional exponent
``p/q`` (q <= 64) works only when the root is exact (``16 ** 0.5 == 4``, ``2 ** 0.5`` is an
:class:`ArithmeticDomainError`). There is no ``sqrt``: write ``x ** 0.5``.

Limits keep hostile input cheap (all checked *before* ``ast.parse``, which itself recurses):
:data:`MAX_CHARS` characters, :data:`MAX_DEPTH` nested parentheses, :data:`MAX_OPERATORS`
operators, and every intermediate value's numerator/denominator at most :data:`MAX_BITS` bits —
powers are size-estimated before they are computed, so ``9**9**9`` fails in microseconds.
"""

from __future__ import annotations

import ast
import bisect
import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from agentkit.errors import InputError

__all__ = [
    "MAX_BITS",
    "MAX_CHARS",
    "MAX_DEPTH",
    "MAX_OPERATORS",
    "ArithmeticDomainError",
    "ArithmeticInputError",
    "ArithmeticLimitError",
    "ArithmeticSyntaxError",
    "evaluate",
]

MAX_CHARS = 4096
MAX_DEPTH = 64
MAX_OPERATORS = 256
MAX_BITS = 10_000  # ~3000 decimal digits; also keeps str(int) under Python's 4300-digit limit
_MAX_LITERAL_CHARS = 1000
_MAX_LITERAL_EXPONENT = 1000
_MAX_ROOT_DEGREE = 64


# --------------------------------------------------------------------------------------- errors
class ArithmeticInputError(InputError):
    """Base of every arithmetic failure; ``position`` is a 0-based index into the input."""

    def __init__(self, message: str, *, position: int | None = None, token: str | None = None) -> None:
        super().__init__(message)
        self.position = position
        self.token = token


class ArithmeticSyntaxError(ArithmeticInputError):
    """The text is not an expression of the grammar above (names, calls, bad tokens, ...)."""


class ArithmeticLimitError(ArithmeticInputError):
    """The text is too long, too deeply nested, or a value would grow past MAX_BITS."""


class ArithmeticDomainError(ArithmeticInputError):
    """The expression is well-formed but has no rational value (division by zero, 2 ** 0.5)."""


# ------------------------------------------------------------------------------------ tokenizer
_TOKEN_RE = re.compile(
    r"(?P<ws>\s+)"
    r"|(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<op>\*\*|//|[-+*/%^()×÷−])"
)
_OP_CANON = {"^": "**", "×": "*", "÷": "/", "−": "-"}


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: Literal["num", "op"]
    text: str  # as written
    start: int  # position in the original text
    norm_start: int  # position in the string handed to ast.parse


@dataclass(frozen=True, slots=True)
class _Prepared:
    source: str  # normalised text for ast.parse
    tokens: list[_Tok]
    numbers: dict[int, Fraction]  # norm_start -> exact value of that literal
    starts: list[int]  # norm_start of each token, for bisect

    def position(self, norm_offset: int) -> tuple[int, str | None]:
        """Map an offset in ``source`` back to (original position, token text)."""
        if not self.tokens:
            return 0, None
        i = max(bisect.bisect_right(self.starts, norm_offset) - 1, 0)
        tok = self.tokens[i]
        return tok.start, tok.text


def _literal_value(text: str, pos: int) -> tuple[str, Fraction]:
    """Exact value of a numeric literal plus a spelling ``ast.parse`` accepts (no leading zeros)."""
    if len(text) > _MAX_LITERAL_CHARS:
        raise ArithmeticLimitError(
            f"number at position {pos} has {len(text)} characters (limit {_MAX_LITERAL_CHARS})",
            position=pos,
            token=text[:20] + "...",
        )
    mantissa, _, exponent = text.lower().partition("e")
    if exponent and abs(int(exponent)) > _MAX_LITERAL_EXPONENT:
        raise ArithmeticLimitError(
            f"exponent of number {text!r} at position {pos} exceeds {_MAX_LITERAL_EXPONENT}",
            position=pos,
            token=text,
        )
    int_part, dot, frac_part = mantissa.partition(".")
    int_part = int_part.lstrip("0") or "0"
    spelled = int_part + (("." + frac_part) if dot else "") + (("e" + exponent) if exponent else "")
    return spelled, Fraction(spelled)


def _prepare(expr: str) -> _Prepared:
    if not isinstance(expr, str):
        raise ArithmeticSyntaxError(f"expected an expression string, got {type(expr).__name__}")
    if len(expr) > MAX_CHARS:
        raise ArithmeticLimitError(
            f"expression has {len(expr)} characters (limit {MAX_CHARS})", position=MAX_CHARS
        )
    tokens: list[_Tok] = []
    numbers: dict[int, Fraction] = {}
    parts: list[str] = []
    norm_len = 0
    depth = 0
    open_positions: list[int] = []
    operators = 0
    pos = 0
    while pos < len(expr):
        m = _TOKEN_RE.match(expr, pos)
        if m is None:
            ch = expr[pos]
            raise ArithmeticSyntaxError(
                f"unexpected character {ch!r} at position {pos}: only numbers, + - * / // % ** ^ "
                "and parentheses are allowed",
                position=pos,
                token=ch,
            )
        text = m.group()
        if m.lastgroup == "ws":
            pos = m.end()
            continue
        if m.lastgroup == "num":
            spelled, value = _literal_value(text, pos)
            numbers[norm_len] = value
            kind: Literal["num", "op"] = "num"
        else:
            spelled = _OP_CANON.get(text, text)
            kind = "op"
            if text == "(":
                depth += 1
                open_positions.append(pos)
                if depth > MAX_DEPTH:
                    raise ArithmeticLimitError(
                        f"parentheses nested deeper than {MAX_DEPTH} at position {pos}",
                        position=pos,
                        token=text,
                    )
            elif text == ")":
                if depth == 0:
                    raise ArithmeticSyntaxError(
                        f"unmatched ')' at position {pos}", position=pos, token=text
                    )
                depth -= 1
                open_positions.pop()
            else:
                operators += 1
                if operators > MAX_OPERATORS:
                    raise ArithmeticLimitError(
                        f"more than {MAX_OPERATORS} operators (at position {pos})",
                        position=pos,
                        token=text,
                    )
        tokens.append(_Tok(kind, text, pos, norm_len))
        parts.append(spelled)
        norm_len += len(spelled) + 1
        pos = m.end()
    if depth:
        p = open_positions[-1]
        raise ArithmeticSyntaxError(f"'(' at position {p} is never closed", position=p, token="(")
    if not tokens:
        raise ArithmeticSyntaxError("empty expression", position=0)
    return _Prepared(" ".join(parts), tokens, numbers, [t.norm_start for t in tokens])


# ----------------------------------------------------------------------------------- evaluation
_BINOPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow)
_UNARYOPS = (ast.UAdd, ast.USub)


def _bits(v: Fraction) -> int:
    return max(v.numerator.bit_length(), v.denominator.bit_length())


def _checked(v: Fraction, what: str, pos: int) -> Fraction:
    if _bits(v) > MAX_BITS:
        raise ArithmeticLimitError(
            f"value of {what} at position {pos} exceeds {MAX_BITS} bits", position=pos, token=what
        )
    return v


def _int_root(n: int, k: int) -> int | None:
    """Exact k-th root of a non-negative int, or None when n is not a perfect k-th power."""
    if n < 2 or k == 1:
        return n
    if k == 2:
        root = math.isqrt(n)
    else:  # Newton's method from above: decreases monotonically to floor(n ** (1/k))
        root = 1 << -(-n.bit_length() // k)
        while True:
            smaller = ((k - 1) * root + n // root ** (k - 1)) // k
            if smaller >= root:
                break
            root = smaller
    return root if root**k == n else None


def _power(base: Fraction, exp: Fraction, what: str, pos: int) -> Fraction:
    if exp.denominator != 1:
        q = exp.denominator
        if q > _MAX_ROOT_DEGREE:
            raise ArithmeticDomainError(
                f"{what} at position {pos}: root of degree {q} is not supported (limit "
                f"{_MAX_ROOT_DEGREE})",
                position=pos,
                token=what,
            )
        if base < 0 and q % 2 == 0:
            raise ArithmeticDomainError(
                f"{what} at position {pos}: even root of a negative number is not real",
                position=pos,
                token=what,
            )
        sign = -1 if base < 0 else 1
        num = _int_root(abs(base.numerator), q)
        den = _int_root(base.denominator, q)
        if num is None or den is None:
            raise ArithmeticDomainError(
                f"{what} at position {pos} is irrational; only exact rational results are supported",
                position=pos,
                token=what,
            )
        base = Fraction(sign * num, den)
        exp = Fraction(exp.numerator)
    e = exp.numerator
    if base == 0:
        if e < 0:
            raise ArithmeticDomainError(
                f"division by zero in {what} at position {pos} (0 to a negative power)",
                position=pos,
                token=what,
            )
        return Fraction(1) if e == 0 else Fraction(0)
    if base in (1, -1):
        return base ** (e % 2) if base == -1 else Fraction(1)
    # |base| != 0, 1: the result needs at least |e| * (bits - 1) + 1 bits, so refuse before computing.
    estimate = abs(e) * (_bits(base) - 1) + 1
    if abs(e) > MAX_BITS or estimate > MAX_BITS:
        raise ArithmeticLimitError(
            f"{what} at position {pos} would exceed {MAX_BITS} bits", position=pos, token=what
        )
    return _checked(base**e, what, pos)


def _apply(op: ast.operator, left: Fraction, right: Fraction, what: str, pos: int) -> Fraction:
    if isinstance(op, (ast.Div, ast.FloorDiv, ast.Mod)) and right == 0:
        raise ArithmeticDomainError(
            f"division by zero in {what} at position {pos}", position=pos, token=what
        )
    if isinstance(op, ast.Add):
        result = left + right
    elif isinstance(op, ast.Sub):
        result = left - right
    elif isinstance(op, ast.Mult):
        result = left * right
    elif isinstance(op, ast.Div):
        result = left / right
    elif isinstance(op, ast.FloorDiv):
        result = Fraction(left // right)
    elif isinstance(op, ast.Mod):
        result = left % right
    else:
        return _power(left, right, what, pos)
    return _checked(result, what, pos)


def _evaluate_tree(tree: ast.Expression, prep: _Prepared, original: str) -> Fraction:
    """Post-order walk with an explicit stack: no recursion, whatever the tree's shape."""

    def where(node: ast.AST) -> tuple[str, int]:
        start = getattr(node, "col_offset", 0)
        end = getattr(node, "end_col_offset", None) or start + 1
        pos, _ = prep.position(start)
        end_pos, end_tok = prep.position(max(end - 1, start))
        end_pos += len(end_tok or "")
        return original[pos:end_pos].strip() or original.strip(), pos

    def reject(node: ast.AST) -> ArithmeticSyntaxError:
        what, pos = where(node)
        if isinstance(node, ast.Call):
            hint = "function calls are not allowed (implicit multiplication? write 2*(3))"
        else:
            hint = f"{type(node).__name__} is not allowed"
        return ArithmeticSyntaxError(f"{hint}: {what!r} at position {pos}", position=pos, token=what)

    stack: list[tuple[ast.AST, bool]] = [(tree.body, False)]
    values: list[Fraction] = []
    while stack:
        node, expanded = stack.pop()
        if isinstance(node, ast.Constant):
            value = prep.numbers.get(node.col_offset)
            if value is None:  # pragma: no cover - tokenizer and ast disagree
                raise reject(node)
            values.append(value)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, _BINOPS):
            if expanded:
                right, left = values.pop(), values.pop()
                what, pos = where(node)
                values.append(_apply(node.op, left, right, what, pos))
            else:
                stack += [(node, True), (node.right, False), (node.left, False)]
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, _UNARYOPS):
            if expanded:
                v = values.pop()
                values.append(-v if isinstance(node.op, ast.USub) else v)
            else:
                stack += [(node, True), (node.operand, False)]
        else:
            raise reject(node)
    return values[0]


def evaluate(expr: str) -> Fraction:
    """Exact value of an arithmetic expression (grammar and limits in the module docstring).

    Raises an :class:`ArithmeticInputError` subclass — and nothing else — for any input string.
    """
    prep = _prepare(expr)
    try:
        tree = ast.parse(prep.source, mode="eval")
    except SyntaxError as exc:
        offset = max((exc.offset or 1) - 1, 0)
        pos, tok = prep.position(offset)
        raise ArithmeticSyntaxError(
            f"invalid expression near {tok!r} at position {pos}", position=pos, token=tok
        ) from None
    except (RecursionError, MemoryError):  # pragma: no cover - limits above prevent this
        raise ArithmeticLimitError("expression too complex to parse") from None
    return _evaluate_tree(tree, prep, expr)
