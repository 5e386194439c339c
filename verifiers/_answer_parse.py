"""Reading answers out of model text: the last number (GSM8K) and LaTeX answers (MATH).

The two parsers :mod:`agentkit.verifiers.answer` builds its voting keys on, with the fixed-point
helper that makes every normaliser idempotent; the canonical spellings are documented there, and
the public names here are re-exported from it.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import Any

__all__ = ["extract_boxed", "extract_gsm8k_answer", "normalize_latex", "normalize_number"]

_MAX_FIXPOINT_ROUNDS = 16
_MAX_NUMBER_CHARS = 400  # longer digit runs are not answers (and int() refuses > 4300 digits)
_MAX_DECIMALS = 30


def _fixpoint(step: Callable[[str], str], text: str) -> str:
    """Apply ``step`` until nothing changes, which is what makes every normaliser idempotent."""
    for _ in range(_MAX_FIXPOINT_ROUNDS):
        new = step(text)
        if new == text:
            return new
        text = new
    return text  # pragma: no cover - no rule set here needs this many rounds


def _as_text(value: Any) -> str:
    """Typed outputs may carry numbers; spell floats positionally so '1e-05' reads as 0.00001."""
    if value is None:
        return ""
    if isinstance(value, float):
        return format(Decimal(repr(value)), "f") if math.isfinite(value) else ""
    return value if isinstance(value, str) else str(value)


# ------------------------------------------------------------------------------------- numbers
_NUMBER_RE = re.compile(
    r"(?<![0-9A-Za-z.])(?P<sign>-)?"
    r"(?:(?P<whole>[0-9]+) (?P<mnum>[0-9]+)/(?P<mden>[0-9]+)(?![0-9.])"  # mixed: 1 1/2
    r"|(?P<num>[0-9]+)/(?P<den>[0-9]+)(?![0-9.])"  # fraction: 3/4
    r"|(?P<dec>(?:(?:[0-9]{1,3}(?:,[0-9]{3})+(?![0-9])|[0-9]+)(?:\.[0-9]+)?|\.[0-9]+)"
    r"(?:[eE][-+]?[0-9]{1,3}(?![0-9]))?))"  # 1.5e-3; three exponent digits keep values printable
)


def _clean_for_numbers(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    return text.replace("$", "").replace("\u2212", "-").replace("\u2013", "-")


def _number_value(m: re.Match[str]) -> Fraction | None:
    if len(m.group()) > _MAX_NUMBER_CHARS:
        return None
    if m.group("whole") is not None:
        den = int(m.group("mden"))
        if den == 0:
            return None
        value = int(m.group("whole")) + Fraction(int(m.group("mnum")), den)
    elif m.group("num") is not None:
        den = int(m.group("den"))
        if den == 0:
            return None
        value = Fraction(int(m.group("num")), den)
    else:
        value = Fraction(m.group("dec").replace(",", ""))
    return -value if m.group("sign") else value


def _last_number(text: str) -> Fraction | None:
    last = None
    for m in _NUMBER_RE.finditer(_clean_for_numbers(text)):
        last = m
    return _number_value(last) if last is not None else None


def _format_number(value: Fraction) -> str:
    """One spelling per value, so equal numbers get equal voting keys."""
    if value.denominator == 1:
        return str(value.numerator)
    den, twos, fives = value.denominator, 0, 0
    while den % 2 == 0:
        den, twos = den // 2, twos + 1
    while den % 5 == 0:
        den, fives = den // 5, fives + 1
    places = max(twos, fives)
    if den != 1 or places > _MAX_DECIMALS:
        return f"{value.numerator}/{value.denominator}"
    scaled = abs(value.numerator) * (10**places // value.denominator)
    digits = str(scaled).rjust(places + 1, "0")
    sign = "-" if value < 0 else ""
    return f"{sign}{digits[:-places]}.{digits[-places:]}".rstrip("0")


def normalize_number(text: str) -> str | None:
    """Canonical spelling of the last number in ``text`` (see module docstring), or None."""
    value = _last_number(_as_text(text))
    return None if value is None else _format_number(value)


_ANNOTATION_RE = re.compile(r"<<[^<>]*>>")


def extract_gsm8k_answer(solution_text: str) -> str:
    """The final answer of a GSM8K-style solution, as written (``normalize_number`` it to compare).

    The number after the last ``####`` (GSM8K's marker); without a marker, the last number in the
    text outside ``<<...>>`` calculator annotations (what models that skip the marker end with,
    e.g. "A: 18" or "The answer is 18."). Returns ``""`` when there is no number at all.
    """
    text = _as_text(solution_text)
    head, marker, tail = text.rpartition("####")
    if marker:
        line = tail.strip().splitlines()[0] if tail.strip() else ""
        found = list(_NUMBER_RE.finditer(_clean_for_numbers(line)))
        if found:
            return found[0].group()
        if line:
            return line.strip().rstrip(".")
        text = head
    found = list(_NUMBER_RE.finditer(_clean_for_numbers(_ANNOTATION_RE.sub(" ", text))))
    return found[-1].group() if found else ""


# --------------------------------------------------------------------------------------- LaTeX
def _matching_braces(text: str) -> dict[int, int]:
    """Every '{' index -> its '}' index, in one pass (escaped braces are not grouping)."""
    pairs: dict[int, int] = {}
    stack: list[int] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "{":
            stack.append(i)
        elif ch == "}" and stack:
            pairs[stack.pop()] = i
        i += 1
    return pairs


_BOX_RE = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")


def extract_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (or ``\\fbox{...}``, or ``\\boxed 5``) in ``text``.

    MATH puts the final answer in the last box; braces nest (``\\boxed{\\frac{1}{2}}``), and an
    unclosed box is skipped in favour of an earlier complete one. None when there is no box.
    """
    text = _as_text(text)
    boxes = list(_BOX_RE.finditer(text))
    closing = _matching_braces(text) if boxes else {}
    for m in reversed(boxes):
        rest = m.end()
        while rest < len(text) and text[rest] == " ":
            rest += 1
        if rest < len(text) and text[rest] == "{":
            if rest in closing:
                return text[rest + 1 : closing[rest]]
        elif rest > m.end():  # "\boxed 5": one token
            token = re.match(r"[^\s$]+", text[rest:])
            if token:
                return token.group()
    return None


_TEXT_CMD_RE = re.compile(r"\\(?:text|textbf|textit|textnormal|textrm|mbox|mathrm|mathbf|rm)\s*\{")
_UNIT_SUFFIX_RE = re.compile(
    r"^(?P<value>.*?[^\s{(\[])\s*\\(?:text|textnormal|textrm|mbox|mathrm)\s*\{\s*[A-Za-z][A-Za-z .]*\}"
    r"(?:\^\{?[23]\}?)?$"
)
_SPACING_RE = re.compile(r"\\[!,;:> ]|\\q?quad(?![A-Za-z])|~|\\displaystyle(?![A-Za-z])")
_DEGREES_RE = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|\\circ(?![A-Za-z])|°|\\degree(?![A-Za-z])")
_VARIABLE_PREFIX_RE = re.compile(r"^[A-Za-z](?:_\{?[A-Za-z0-9]+\}?)?(?:=|\\in(?![A-Za-z]))(?=.)")
_THOUSANDS_ONLY_RE = re.compile(r"^-?[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?$")


def _unwrap_text_commands(text: str) -> str:
    """``\\text{Evelyn}`` -> ``Evelyn``: the words are the answer; the command is typesetting."""
    out: list[str] = []
    pos = 0
    closing = _matching_braces(text)
    for m in _TEXT_CMD_RE.finditer(text):
        if m.start() < pos:
            continue
        close = closing.get(m.end() - 1)
        if close is None:
            break
        out.append(text[pos : m.start()])
        out.append(text[m.end() : close])
        pos = close + 1
    out.append(text[pos:])
    return "".join(out)


def _fix_short_fracs(text: str) -> str:
    """``\\frac12`` / ``\\frac1{2}`` / ``\\frac{1}2`` -> ``\\frac{1}{2}``; ``\\sqrt2`` -> ``\\sqrt{2}``."""
    text = re.sub(r"\\frac([0-9A-Za-z])([0-9A-Za-z])", r"\\frac{\1}{\2}", text)
    text = re.sub(r"\\frac([0-9A-Za-z])\{", r"\\frac{\1}{", text)
    text = re.sub(r"\\frac(\{[^{}]*\})([0-9A-Za-z])", r"\\frac\1{\2}", text)
    return re.sub(r"\\sqrt([0-9A-Za-z])", r"\\sqrt{\1}", text)


def _latex_step(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).strip()
    boxed = extract_boxed(text)
    if boxed is not None and _BOX_RE.match(text) and text.rstrip(".$ ").endswith("}"):
        text = boxed
    text = text.strip().strip("$").strip()
    text = re.sub(r"^\\[(\[]|\\[)\]]$", "", text)
    text = text.replace("\n", " ")
    text = _SPACING_RE.sub(" ", text)
    text = re.sub(r"\\left(?![A-Za-z])\.?|\\right(?![A-Za-z])\.?", "", text)
    text = re.sub(r"\\[dt]frac(?![A-Za-z])", r"\\frac", text)
    text = re.sub(r"\\[dt]binom(?![A-Za-z])", r"\\binom", text)
    text = _DEGREES_RE.sub("", text)
    text = text.replace("\\%", "").replace("%", "").replace("\\$", "").replace("$", "")
    unit = _UNIT_SUFFIX_RE.match(text)
    if unit:
        text = unit.group("value")
    text = _unwrap_text_commands(text)
    text = text.replace("{,}", ",")
    text = re.sub(r"\s+", "", text)
    text = text.rstrip(".").rstrip(",")
    text = _fix_short_fracs(text)
    text = _VARIABLE_PREFIX_RE.sub("", text)
    if _THOUSANDS_ONLY_RE.match(text):
        text = text.replace(",", "")
    text = re.sub(r"^(-?)([0-9]+)/([0-9]+)$", r"\1\\frac{\2}{\3}", text)
    text = re.sub(r"^\(([A-Za-z])\)$", r"\1", text)  # multiple choice "(C)" -> "C"
    return text


def normalize_latex(text: str) -> str:
    """Canonical form of a MATH-style LaTeX answer, for string comparison.

    Unwraps a whole-answer ``\\boxed{}`` and ``$...$``; drops ``\\left``/``\\right``, spacing
    commands (``\\!``, ``\\,``, ``~``, ...), degree marks, ``%`` and ``$``, a trailing ``\\text{}``
    unit (``5.4 \\text{ cents}`` → ``5.4``) but keeps ``\\text{Evelyn}``'s words; ``\\dfrac`` and
    ``\\tfrac`` → ``\\frac``; ``\\frac12`` → ``\\frac{1}{2}``; ``a/b`` → ``\\frac{a}{b}``; a
    leading ``x=`` or ``x\\in``; thousands separators; all whitespace; a trailing period.
    """
    return _fixpoint(_latex_step, _as_text(text))


_LATEX_NUMBER_RE = re.compile(
    r"^(?P<sign>-)?(?:(?P<whole>[0-9]+)?\\frac\{(?P<num>[0-9]+)\}\{(?P<den>[0-9]+)\}"
    r"|(?P<dec>[0-9]+(?:\.[0-9]+)?|\.[0-9]+))$"
)


def _latex_number(normalized: str) -> Fraction | None:
    m = _LATEX_NUMBER_RE.match(normalized)
    if m is None or len(normalized) > _MAX_NUMBER_CHARS:
        return None
    if m.group("dec") is not None:
        value = Fraction(m.group("dec"))
    else:
        den = int(m.group("den"))
        if den == 0:
            return None
        value = int(m.group("whole") or 0) + Fraction(int(m.group("num")), den)
    return -value if m.group("sign") else value
