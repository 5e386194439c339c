"""fol_grammar's ``negation`` and ``quantified``: the grammar admits exactly the in-bounds canonical
formulas with (or without) a ¬, or that begin with a quantifier; checked on FOLIO's gold formulas and
on generated ones against the plain grammar, with llguidance as the decoder would run it."""

from __future__ import annotations

import random

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from agentkit.errors import ConfigError
from agentkit.verifiers.fol import Exists, ForAll, fol_grammar, grammar_depth, to_str
from tests.unit.test_fol import FORMULAS, _accepts, _canonical_gold, _sample, _within

_PLAIN = fol_grammar(max_depth=4)
_NEGATED = fol_grammar(max_depth=4, negation=True)
_POSITIVE = fol_grammar(max_depth=4, negation=False)
_QUANTIFIED = fol_grammar(max_depth=4, quantified=True)
_QUANTIFIED_NEGATED = fol_grammar(max_depth=4, quantified=True, negation=True)


def _fits(f) -> bool:
    return grammar_depth(f) <= 4 and _within(f, width=8, arity=4, name_len=48, variables={"x", "y", "z", "w"})


@settings(max_examples=300, deadline=None)
@given(FORMULAS)
def test_each_variant_admits_exactly_its_share_of_the_plain_grammar(f):
    assume(grammar_depth(f) <= 4)
    text = to_str(f)
    fits = _fits(f)
    assert _accepts(_PLAIN, text) == fits
    negated, quantified = "¬" in text, isinstance(f, (ForAll, Exists))
    assert _accepts(_NEGATED, text) == (fits and negated), text
    assert _accepts(_POSITIVE, text) == (fits and not negated), text
    assert _accepts(_QUANTIFIED, text) == (fits and quantified), text
    assert _accepts(_QUANTIFIED_NEGATED, text) == (fits and quantified and negated), text


def test_folio_gold_formulas_split_by_their_negations():
    default, negated, positive = fol_grammar(), fol_grammar(negation=True), fol_grammar(negation=False)
    gold = _canonical_gold()[:600]
    for f in gold:
        text = to_str(f)
        fits = _accepts(default, text)
        assert _accepts(negated, text) == (fits and "¬" in text), text
        assert _accepts(positive, text) == (fits and "¬" not in text), text
    assert sum("¬" in to_str(f) for f in gold) > 100  # both sides are exercised


@pytest.mark.parametrize(("text", "width_ok"), [
    ("P(a) ∧ ¬P(a) ∧ P(a)", True),
    ("P(a) ∧ P(a) ∧ P(a) ∧ ¬P(a)", False),  # four operands, the width is 3
    ("¬P(a) ∨ P(a) ∨ P(a)", True),
])
def test_a_negated_chain_keeps_the_width_bound(text, width_ok):
    assert _accepts(fol_grammar([("P", 1)], ["a"], max_depth=2, max_width=3, negation=True), text) == width_ok


@settings(max_examples=40, deadline=None)
@given(st.randoms(use_true_random=False))
def test_what_the_negated_grammar_decodes_has_a_negation(rnd: random.Random):
    grammar = fol_grammar([("P", 1), ("R", 2)], ["a", "b"], max_depth=3, max_width=3, negation=True)
    assert "¬" in _sample(grammar, rnd, stop_p=0.6)


@pytest.mark.parametrize("kwargs", [{"max_depth": 0, "negation": True},
                                    {"max_depth": 1, "negation": True, "quantified": True},
                                    {"max_depth": 0, "quantified": True}])
def test_too_shallow_for_a_negation_or_a_quantifier_is_refused(kwargs):
    with pytest.raises(ConfigError, match="max_depth >="):
        fol_grammar(**kwargs)
