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

import unicodedata
from collections.abc import Callable, Mapping
from decimal import Decimal
from fractions import Fraction
from typing import Any

from agentkit.errors import ConfigError, VerifierError
from agentkit.verifiers._answer_parse import (
    _as_text,
    _fixpoint,
    _format_number,
    _latex_number,
    extract_boxed,
    extract_gsm8k_answer,
    normalize_latex,
    normalize_number,
)
from agentkit.verifiers.base import Verdict, VerifierBase
from agentkit.vocab import AnswerKind

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
