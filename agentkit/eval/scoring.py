"""Is a prediction right? One grader for every dataset, keyed on the dataset's answer kind.

Matching is ``agentkit.verifiers.answer.answers_match``. Two dataset rules sit on top of it:

* label sets use ``LOGIC_LABEL_SYNONYMS`` on both sides, so "Unknown" counts as FOLIO's
  "Uncertain" and a judge's "yes"/"correct" agree (both map to "true");
* option-letter sets (every label one capital letter, e.g. LogicalDeduction) take the option letter
  the prediction starts with, so "B) The blue book ..." and "(b)" both mean B.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from agentkit.verifiers.answer import LOGIC_LABEL_SYNONYMS, AnswerKind, answers_match

__all__ = ["grade", "is_letter_set"]

_LEADING_LETTER_RE = re.compile(r"^\s*(?:option\s+)?\(?([A-Za-z])(?:\)|\.|:|\s|$)", re.IGNORECASE)


def is_letter_set(labels: Collection[str] | None) -> bool:
    return bool(labels) and all(len(x) == 1 and x.isalpha() and x.isupper() for x in labels)  # type: ignore[union-attr]


def _option_letter(prediction: str) -> str:
    match = _LEADING_LETTER_RE.match(prediction)
    return match.group(1).upper() if match else prediction


def grade(prediction: str | None, label: str, kind: AnswerKind, labels: Collection[str] | None = None) -> bool:
    """True when ``prediction`` is the gold ``label``; no prediction is wrong, never an error."""
    if prediction is None:
        return False
    if kind == "label":
        if is_letter_set(labels):
            prediction = _option_letter(prediction)
        return answers_match(prediction, label, "label", synonyms=LOGIC_LABEL_SYNONYMS)
    return answers_match(prediction, label, kind)
