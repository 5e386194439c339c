"""Normalising and matching final answers (GSM8K numbers, MATH LaTeX, logic labels, free text).

Majority voting (MC-CoT, MAJ) keys its tally on :func:`normalize_answer`, so every normaliser here
is deterministic and idempotent — ``normalize_answer(normalize_answer(x, k), k) ==
normalize_answer(x, k)`` — which the rewrite rules guarantee by being applied to a fixed point.
An empty key means "no answer": it never matches anything, and voters should drop it.

Kinds:

* ``number`` — the *last* number in the text, exact: ``$1,234.50`` → ``1234.5``, ``3/4`` and
  ``0.75`` → ``0.75``, ``1 1/2`` → ``1.5``, ``-7``; a ``%`` sign is dropped (GSM8K writes
  percentages as plain numbers). Canonical spelling: an integer, else a decimal when the value has
  at most 30 decimals, else ``p/q``. ``1.5e3`` is read (exponent up to 3 digits); number words
  ("five") are not.
* ``latex`` — :func:`normalize_latex`, and if what is left is a plain number (``\\frac{1}{2}``,
  ``0.5``, ``137\\frac{1}{2}``) its ``number`` spelling, so equal values vote together.
* ``label`` — :func:`normalize_label`: case-folded, punctuation/symbols removed, optional synonyms.
* ``text`` — SQuAD-style: case-folded, punctuation removed, articles (a/an/the) dropped.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Mapping
from decimal import Decimal
from fractions import Fraction
from typing import Any, Literal

from agentkit.verifiers.base import Verdict, VerifierBase

from agentkit.errors import ConfigError, VerifierError

__all__ = [
    "LOGIC_LABEL_SYNONYMS",
    "AnswerKind",
    "AnswerMatchVerifier",
    "answers_match",
    "extract_boxed",
    "extract_gsm8k_answer",
    "normalize_answer",
    "normalize_label",
    "normalize_latex",
    "normalize_number",
    "normalize_text",
]

AnswerKind = Literal["number", "label", "latex", "text"]

#: Opt-in synonyms for True/False/Uncertain style labels (ProofWriter says "Unknown", FOLIO
#: "Uncertain"). Not applied by default: whether "unknown" means "uncertain" is the caller's call.
LOGIC_LABEL_SYNONYMS: dict[str, str] = {
    "yes": "true",
    "correct": "true",
    "no": "false",
    "incorrect": "false",
    "unknown": "uncertain",
    "undetermined": "uncertain",
    "cannot be determined": "uncertain",
}

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
def _braced(text: str, start: int) -> int | None:
    """Index just past the group opening at ``text[start] == '{'`` (escaped braces skipped)."""
    depth = 0
    i = start
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return None


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
    for m in _TEXT_CMD_RE.finditer(text):
        if m.start() < pos:
            continue
        end = _braced(text, m.end() - 1)
        if end is None:
            break
        out.append(text[pos : m.start()])
        out.append(text[m.end() : end - 1])
        pos = end
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


# ----------------------------------------------------------------------------- labels and text
def _strip_punctuation(text: str) -> str:
    """Case-fold, and turn every punctuation or symbol character into a space."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(" " if unicodedata.category(ch)[0] in "PS" else ch for ch in text)
    return " ".join(text.split())


def _label_step(text: str) -> str:
    return _strip_punctuation(text)


def normalize_label(text: str, synonyms: Mapping[str, str] | None = None) -> str:
    """Case-folded label without punctuation: ``"**True.**"`` → ``"true"``, ``"(A)"`` → ``"a"``.

    ``synonyms`` maps normalised variants to a canonical label (e.g. ``LOGIC_LABEL_SYNONYMS``);
    keys and targets are normalised too, and a target may not itself be a key that maps
    elsewhere (that would make the result depend on how often you normalise).
    """
    label = _fixpoint(_label_step, _as_text(text))
    if synonyms:
        label = _compile_synonyms(synonyms).get(label, label)
    return label


def _compile_synonyms(synonyms: Mapping[str, str]) -> dict[str, str]:
    table = {
        _fixpoint(_label_step, k): _fixpoint(_label_step, v) for k, v in synonyms.items()
    }
    for key, target in table.items():
        if table.get(target, target) != target:
            raise ConfigError(
                f"synonym {key!r} -> {target!r}, but {target!r} itself maps to {table[target]!r}; "
                "map every variant straight to its canonical label"
            )
    return table


_ARTICLES = frozenset({"a", "an", "the"})


def _text_step(text: str) -> str:
    return " ".join(w for w in _strip_punctuation(text).split() if w not in _ARTICLES)


def normalize_text(text: str) -> str:
    """SQuAD-style free-text key: case-folded, no punctuation, no articles, single spaces."""
    return _fixpoint(_text_step, _as_text(text))


# ----------------------------------------------------------------------------------- dispatch
def _number_key(text: str) -> str:
    return normalize_number(text) or ""


def _latex_key(text: str) -> str:
    normalized = normalize_latex(text)
    value = _latex_number(normalized)
    return normalized if value is None else _format_number(value)


def normalize_answer(
    text: Any, kind: AnswerKind = "text", *, synonyms: Mapping[str, str] | None = None
) -> str:
    """Deterministic, idempotent voting key for an answer of the given kind ("" = no answer).

    ``synonyms`` applies to ``label`` answers only.
    """
    raw = _as_text(text)
    if kind == "number":
        return _fixpoint(_number_key, raw)
    if kind == "latex":
        return _fixpoint(_latex_key, raw)
    if kind == "label":
        return normalize_label(raw, synonyms)
    if kind == "text":
        return normalize_text(raw)
    raise ConfigError(f"unknown answer kind {kind!r}; use one of number, label, latex, text")


def answers_match(
    pred: Any, gold: Any, kind: AnswerKind = "text", *, synonyms: Mapping[str, str] | None = None
) -> bool:
    """Whether two answers agree after normalisation; numbers compare as exact fractions.

    An answer that normalises to nothing matches nothing, not even another empty answer.
    """
    a = normalize_answer(pred, kind, synonyms=synonyms)
    b = normalize_answer(gold, kind, synonyms=synonyms)
    return bool(a) and a == b


# ----------------------------------------------------------------------------------- verifier
class AnswerMatchVerifier(VerifierBase):
    """Hard verifier comparing a candidate's answer with the gold answer found in the context.

    ``context[gold_field]`` holds the gold. The candidate is the answer itself (str or number) or
    an object/mapping whose ``answer_field`` holds it (a typed agent output). ``extract`` pulls
    the answer out of a longer text first, e.g. ``extract=extract_gsm8k_answer`` or
    ``extract=extract_boxed`` for whole solutions.
    """

    def __init__(
        self,
        gold_field: str = "label",
        kind: AnswerKind = "text",
        *,
        answer_field: str = "answer",
        synonyms: Mapping[str, str] | None = None,
        extract: Callable[[str], str | None] | None = None,
        name: str = "answer_match",
        hard: bool = True,
    ) -> None:
        super().__init__(name, hard=hard)
        self.extract = extract
        if kind not in ("number", "label", "latex", "text"):
            raise ConfigError(f"unknown answer kind {kind!r}; use one of number, label, latex, text")
        self.gold_field = gold_field
        self.kind: AnswerKind = kind
        self.answer_field = answer_field
        self.synonyms = dict(synonyms) if synonyms else None
        if self.synonyms:
            _compile_synonyms(self.synonyms)  # fail at construction, not on the first candidate

    def _prediction(self, candidate: Any) -> Any:
        if isinstance(candidate, str | int | float | Fraction | Decimal):
            return candidate
        if isinstance(candidate, Mapping):
            if self.answer_field in candidate:
                return candidate[self.answer_field]
        elif hasattr(candidate, self.answer_field):
            return getattr(candidate, self.answer_field)
        raise VerifierError(
            f"verifier {self.name!r}: candidate {type(candidate).__name__} has no "
            f"{self.answer_field!r} field; pass answer_field=... or the answer itself"
        )

    def check(self, candidate: Any, context: Mapping[str, Any]) -> Verdict:
        if self.gold_field not in context:
            raise VerifierError(
                f"verifier {self.name!r}: context has no gold field {self.gold_field!r} "
                f"(keys: {sorted(map(str, context))}); pass gold_field=..."
            )
        pred, gold = self._prediction(candidate), context[self.gold_field]
        if self.extract is not None:
            pred = self.extract(_as_text(pred)) or ""
        key_pred = normalize_answer(pred, self.kind, synonyms=self.synonyms)
        key_gold = normalize_answer(gold, self.kind, synonyms=self.synonyms)
        detail = f"prediction {key_pred!r} vs gold {key_gold!r} ({self.kind})"
        if not key_pred:
            return Verdict(ok=False, score=0.0, label="no-answer", reason=f"no answer found; {detail}")
        ok = key_pred == key_gold
        return Verdict(ok=ok, score=float(ok), label="match" if ok else "mismatch", reason=detail)
