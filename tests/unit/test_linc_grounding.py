"""The input-grounded vocabulary grammar (graphs/_linc_grounding.py): which names it admits, that it is
bounded, and that an input it cannot ground falls back to the open grammar and says why."""

from __future__ import annotations

import re

import lark
import pytest

from agentkit.errors import InputError
from agentkit.eval import load_dataset
from agentkit.graphs import _linc_grounding as g
from agentkit.graphs._linc_sentences import SENTENCE_SHOTS


def _prontoqa_1() -> list[str]:
    (example,) = [e for e in load_dataset("prontoqa") if e.id == "ProntoQA_1"]
    return [*example.fields["premises"], example.fields["conclusion"]]


def _words(sentences: list[str]) -> set[str]:
    return {w.lower() for s in sentences for w in re.findall(r"[^\W_]+", s)}


def _parser(grounding: g.Grounding, **bounds) -> lark.Lark:
    bounds = {"max_predicates": 8, "max_constants": 4, **bounds}
    return lark.Lark(g.vocabulary_grammar(grounding, **bounds), parser="earley")


def test_prontoqa_1_candidates_are_joins_of_its_own_words() -> None:
    sentences = _prontoqa_1()
    grounding = g.ground(sentences)
    assert grounding.grounded and grounding.fallback is None
    assert {"Jompus", "Jompuses", "Shy", "Yumpus", "Sour", "Dumpus", "Wooden"} <= set(grounding.predicates)
    assert grounding.constants == ["max"]  # "Jompuses are ..." is a plural noun, not a name
    words = _words(sentences)
    for name in grounding.predicates:
        parts = [p.lower() for p in re.findall(r"[A-Z][a-z]*", name)]
        stems = [p for p in parts[:-1]] + [parts[-1]]
        assert all(p in words for p in stems[:-1]), name
        assert any(v.lower() in words for v in g.number_variants(stems[-1])) or stems[-1] in words, name
    # what the sample used comes from no word of the input, and is not admitted
    assert "Jumbouses" not in grounding.predicates and "Yellus" not in grounding.predicates


def test_clause_words_never_make_a_name() -> None:
    names = g.predicate_candidates(["Tumpuses are not sour.", "If the cat is big then it likes the dog."])
    assert "Sour" in names and "Big" in names and "Likes" in names and "LikesDog" in names
    assert not any(re.search(r"(Are|Not|Is|If|Then)(?=[A-Z]|$)", n) for n in names), names


def test_articles_are_dropped_and_numbers_varied() -> None:
    names = g.predicate_candidates(["Anyone who passes the exam gets a certificate."])
    assert {"PassesExam", "GetsCertificate", "Certificates"} <= set(names)
    assert g.number_variants("lizards") == ["lizards", "lizard"]
    assert g.number_variants("yumpus") == ["yumpus", "yumpuses"]
    assert g.number_variants("berry") == ["berry", "berries"]


def test_constants_are_lowercased_names_and_nouns_after_the() -> None:
    consts = g.constant_candidates(["The bear likes the cat.", "The Lumina APV is a van.", "Max is a yumpus."])
    assert {"bear", "cat", "lumina", "luminaAPV", "max"} <= set(consts)
    assert "the" not in consts and "x" not in g.constant_candidates(["Then X is red."])


def test_the_grounded_grammar_admits_exactly_the_candidates() -> None:
    parser = _parser(g.ground(_prontoqa_1()))
    parser.parse("PREDICATES: Jompus(1), Shy(1), Yumpus(1)\nCONSTANTS: max")
    parser.parse("PREDICATES: Sour(1)\nCONSTANTS: none")
    for bad in ["PREDICATES: Jumbouses(1)\nCONSTANTS: max",      # the invented name
                "PREDICATES: Yum(1)\nCONSTANTS: max",
                "PREDICATES: Sour(1)\nCONSTANTS: bob",           # a constant from nowhere
                "PREDICATES: Sour(4)\nCONSTANTS: max",           # arity bounded
                "PREDICATES: \nCONSTANTS: max"]:                 # at least one predicate
        with pytest.raises(lark.exceptions.LarkError):
            parser.parse(bad)


def test_the_grammar_is_bounded_in_length() -> None:
    parser = _parser(g.ground(_prontoqa_1()), max_predicates=3, max_constants=1)
    parser.parse("PREDICATES: Sour(1), Shy(1), Red(1)\nCONSTANTS: max")
    with pytest.raises(lark.exceptions.LarkError):
        parser.parse("PREDICATES: Sour(1), Shy(1), Red(1), Small(1)\nCONSTANTS: max")


def test_the_open_grammar_admits_any_name() -> None:
    parser = _parser(g.Grounding())
    parser.parse("PREDICATES: Jumbouses(1), Yellus(2)\nCONSTANTS: bob, luminaAPV")


def test_an_ungroundable_input_falls_back_and_says_why() -> None:
    nothing = g.ground(["It is not.", "If it is, then it is."])
    assert not nothing.grounded and "no sentence" in nothing.fallback
    many = g.ground([" ".join(f"w{i}x{j}" for j in range(40)) for i in range(40)])
    assert not many.grounded and "exceed" in many.fallback


def test_read_and_render_round_trip_and_repeats_are_dropped() -> None:
    text = "PREDICATES: Yumpus(2), Yumpus(1), Yumpus(1)\nCONSTANTS: max, x, max"
    vocabulary = g.read_vocabulary(text)
    assert vocabulary.predicates == [("Yumpus", 2), ("Yumpus", 1)] and vocabulary.constants == ["max"]
    assert g.read_vocabulary(g.render_vocabulary(vocabulary)) == vocabulary
    assert g.read_vocabulary("PREDICATES: Sour(1)\nCONSTANTS: none").constants == []
    with pytest.raises(InputError):
        g.read_vocabulary("Sour(1)")


def test_the_sentence_shots_are_grounded_in_their_own_sentences() -> None:
    for pairs in SENTENCE_SHOTS:
        vocabulary = g.vocabulary_of(f for _, f in pairs)
        grounding = g.ground([s for s, _ in pairs])
        assert {name for name, _ in vocabulary.predicates} <= set(grounding.predicates)
        assert set(vocabulary.constants) <= set(grounding.constants)
        _parser(grounding, max_predicates=12).parse(g.render_vocabulary(vocabulary))
