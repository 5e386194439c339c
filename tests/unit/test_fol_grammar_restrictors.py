"""fol_grammar's ``restrictors``: a ∀'s body is never a conjunction and an ∃'s never an implication,
and nothing else changes; checked against the plain grammar on generated formulas (alone and with
``negation``/``quantified``), on FOLIO's gold formulas, and on the 135M parser's own slips."""

from __future__ import annotations

import random

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from agentkit.verifiers._fol_parse import _children
from agentkit.verifiers.fol import And, Exists, ForAll, Implies, fol_grammar, grammar_depth, parse, to_str
from tests.unit.test_fol import FORMULAS, _accepts, _canonical_gold, _sample
from tests.unit.test_fol_grammar_polarity import _fits

_PLAIN = fol_grammar(max_depth=4)
_RESTRICTED = fol_grammar(max_depth=4, restrictors=True)
_RESTRICTED_NEGATED = fol_grammar(max_depth=4, restrictors=True, negation=True)
_RESTRICTED_QUANTIFIED = fol_grammar(max_depth=4, restrictors=True, quantified=True)


def _slips(f) -> bool:
    """Whether some ∀ (under its own ∀ prefix) has a ∧ body, or some ∃ an → body."""
    if isinstance(f, (ForAll, Exists)):
        body = f.body
        while type(body) is type(f):
            body = body.body
        if isinstance(f, ForAll) and isinstance(body, And) or isinstance(f, Exists) and isinstance(body, Implies):
            return True
    return any(_slips(c) for c in _children(f))


@settings(max_examples=300, deadline=None)
@given(FORMULAS)
def test_restrictors_admit_exactly_the_plain_formulas_without_a_slip(f):
    assume(grammar_depth(f) <= 4)
    text = to_str(f)
    fits = _fits(f)
    assert _accepts(_PLAIN, text) == fits
    slips = _slips(f)
    assert _accepts(_RESTRICTED, text) == (fits and not slips), text
    assert _accepts(_RESTRICTED_NEGATED, text) == (fits and not slips and "¬" in text), text
    assert _accepts(_RESTRICTED_QUANTIFIED, text) == (fits and not slips and isinstance(f, (ForAll, Exists))), text


@pytest.mark.parametrize(("text", "admitted"), [
    ("∀x (Jompus(x) → Yumpus(x))", True),
    ("∀x (Jompus(x) ∧ Yumpus(x))", False),  # "Jompuses are yumpuses" as the 135M parser wrote it
    ("∃x (Musician(x) ∧ Love(x, music))", True),
    ("∃x (Musician(x) → Love(x, music))", False),  # true of anything that is no musician
    ("∀x (Red(x))", True),
    ("∀x (Cat(x) ⊕ Dog(x))", True),
    ("∀x ∃y (Owns(x, y) ∧ Dog(y))", True),  # the ∃ restricts by ∧; the ∀'s body is the ∃
    ("∀x ∀y (Owns(x, y) ∧ Dog(y))", False),  # a ∀ prefix does not hide the ∧ body
    ("∃x ∃y (Owns(x, y) → Dog(y))", False),
    ("Red(bob) ∧ Big(bob)", True),  # no quantifier: nothing to restrict
    ("¬(∀x (Jompus(x) ∧ Yumpus(x)))", False),
    ("∀x (Jompus(x) → (∃y (Likes(x, y) ∧ Dog(y))))", True),
    ("∀x (Jompus(x) → (∃y (Likes(x, y) → Dog(y))))", False),
])
def test_the_classic_slips_are_refused_where_they_stand(text, admitted):
    grammar = fol_grammar([("Jompus", 1), ("Yumpus", 1), ("Musician", 1), ("Love", 2), ("Red", 1), ("Big", 1),
                           ("Cat", 1), ("Dog", 1), ("Owns", 2), ("Likes", 2)], ["music", "bob"], max_depth=4,
                          restrictors=True)
    assert _accepts(fol_grammar(max_depth=4), text)
    assert _accepts(grammar, text) == admitted


def test_folio_gold_formulas_lose_only_their_slips():
    default, restricted = fol_grammar(), fol_grammar(restrictors=True)
    gold = _canonical_gold()[:600]
    refused = 0
    for f in gold:
        text = to_str(f)
        fits = _accepts(default, text)
        assert _accepts(restricted, text) == (fits and not _slips(f)), text
        refused += fits and _slips(f)
    assert sum(isinstance(f, ForAll) for f in gold) > 200 and refused < 20  # the rule binds, and rarely


@settings(max_examples=40, deadline=None)
@given(st.randoms(use_true_random=False))
def test_what_the_restricted_grammar_decodes_has_no_slip(rnd: random.Random):
    grammar = fol_grammar([("P", 1), ("R", 2)], ["a"], max_depth=3, max_width=3, restrictors=True, negation=True,
                          variables=("x",), quantified=True)
    f = parse(_sample(grammar, rnd, stop_p=0.6))
    assert isinstance(f, (ForAll, Exists)) and not _slips(f) and "¬" in to_str(f)
