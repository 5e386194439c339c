"""fol_grammar's ``negatable``: a ¬ stands only directly before an atom of the listed predicates.
Checked with llguidance as the decoder runs it: hand-made formulas either side of the rule, decoded
samples, and the refusals that name what to pass."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentkit.errors import ConfigError
from agentkit.verifiers._fol_parse import _children
from agentkit.verifiers.fol import Atom, Not, fol_grammar, parse
from tests.unit.test_fol import _accepts, _sample

_PREDICATES = [("Jompus", 1), ("Shy", 1), ("Likes", 2)]


def _negated(f) -> list:
    """Every ¬'s operand in ``f``."""
    return ([f.arg] if isinstance(f, Not) else []) + [g for child in _children(f) for g in _negated(child)]


@pytest.mark.parametrize(("text", "admitted"), [
    ("∀x (Jompus(x) → ¬Shy(x))", True),
    ("∀x (¬Jompus(x) → Shy(x))", False),  # the ¬ on the wrong word
    ("∀x (Jompus(x) → Shy(x))", True),  # none at all: ``negation`` decides whether one is required
    ("¬Shy(max) ∧ ¬Shy(max)", True),
    ("¬(Shy(max) ∧ Jompus(max))", False),  # a ¬ stands before an atom, not a compound
    ("¬(∀x (Shy(x)))", False),
    ("¬Likes(max, max)", False),
])
def test_a_negation_stands_only_before_a_negatable_atom(text, admitted):
    grammar = fol_grammar(_PREDICATES, ["max"], max_depth=3, negatable=["Shy"])
    assert _accepts(fol_grammar(_PREDICATES, ["max"], max_depth=3), text)  # the plain grammar has them all
    assert _accepts(grammar, text) == admitted


def test_with_negation_required_the_formula_negates_a_negatable_atom():
    grammar = fol_grammar(_PREDICATES, ["max"], max_depth=3, negation=True, negatable=["Shy"], restrictors=True)
    assert _accepts(grammar, "∀x (Jompus(x) → ¬Shy(x))")
    assert not _accepts(grammar, "∀x (Jompus(x) → Shy(x))")
    assert not _accepts(grammar, "∀x (Jompus(x) ∧ ¬Shy(x))")  # with restrictors, too


@settings(max_examples=40, deadline=None)
@given(st.randoms(use_true_random=False))
def test_what_the_grammar_decodes_negates_only_negatable_atoms(rnd: random.Random):
    grammar = fol_grammar(_PREDICATES, ["max"], max_depth=3, max_width=3, negation=True, negatable=["Shy", "Likes"])
    operands = _negated(parse(_sample(grammar, rnd, stop_p=0.6)))
    assert operands and all(isinstance(a, Atom) and a.pred in ("Shy", "Likes") for a in operands)


def test_an_empty_list_admits_no_negation_and_unknown_names_are_refused():
    none = fol_grammar(_PREDICATES, ["max"], max_depth=3, negatable=[])
    assert _accepts(none, "Shy(max)") and not _accepts(none, "¬Shy(max)")
    with pytest.raises(ConfigError, match="a ¬ is required and may stand nowhere"):
        fol_grammar(_PREDICATES, ["max"], max_depth=3, negatable=[], negation=True)
    with pytest.raises(ConfigError, match=r"names predicates the grammar does not list \(\['Red'\]\)"):
        fol_grammar(_PREDICATES, ["max"], max_depth=3, negatable=["Red"])
    with pytest.raises(ConfigError, match="pass them in predicates too"):
        fol_grammar(None, None, negatable=["Shy"])
