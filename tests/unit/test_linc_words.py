"""LINC's ``translation="words"``: each sentence's grammar admits only its own words' names.

The names (``words_vocabularies``) are pinned on hand-made sentences; the graph runs on a scripted
parser that parses every reply with the request's own grammar (lark), so a test fails if a sentence
was sent a grammar that admits another sentence's names or a free variable.
"""

from __future__ import annotations

import asyncio
import functools

import lark
import pytest

from agentkit.backends.base import Choice, Generation, GenerationRequest, Usage
from agentkit.errors import ConfigError, InputError
from agentkit.graphs import linc
from agentkit.graphs._linc_grounding import says_not, words_vocabularies
from agentkit.graphs._linc_sentences import SENTENCE_SHOTS, WORDS_SHOTS, sentence_grammar
from agentkit.verifiers.fol import fol_grammar, parse

JOMPUS = linc.LogicProblem(premises=["Jompuses are not shy.", "Every yumpus is a jompus.", "Max is a yumpus."],
                           conclusion="Max is shy.")
RIGHT = {"Jompuses are not shy.": "∀x (Jompus(x) → ¬Shy(x))", "Every yumpus is a jompus.": "∀x (Yumpus(x) → Jompus(x))",
         "Max is a yumpus.": "Yumpus(max)", "Max is shy.": "Shy(max)"}  # premises ⊨ ¬conclusion: "False"


@functools.cache
def _lark(grammar: str) -> lark.Lark:
    return lark.Lark(grammar, parser="earley")


def _admits(grammar: str, text: str) -> bool:
    try:
        _lark(grammar).parse(text)
    except lark.exceptions.LarkError:
        return False
    return True


def _names(sentences: list[str]) -> list[list[str] | None]:
    return [None if v is None else [n for n, _ in v.predicates] for v in words_vocabularies(sentences)]


def test_each_sentence_gets_its_own_words_spelt_alike_in_every_sentence() -> None:
    vocabularies = words_vocabularies(JOMPUS.sentences)
    assert _names(JOMPUS.sentences) == [["Jompus", "Shy"], ["Yumpus", "Jompus"], ["Yumpus"], ["Shy"]]
    # plural and singular share the shortest spelling the problem uses; a name is never a constant
    assert [v.constants for v in vocabularies] == [[], [], ["max"], ["max"]]
    assert all(arity == 1 for v in vocabularies for _, arity in v.predicates)


def test_every_word_of_a_name_is_spelt_alike() -> None:
    sentences = ["Bonnie performs in school shows.", "If people perform in school shows, they are happy."]
    first, second = _names(sentences)
    assert "PerformInSchool" in first and "PerformInSchool" in second
    assert "PerformsInSchool" not in first


def test_constants_are_the_sentences_own_unless_a_pronoun_may_name_one() -> None:
    vocabularies = words_vocabularies(["The cat chases the mouse.", "Every cat is fast.", "It is fast.",
                                       "If something is fast then it is happy."])
    assert vocabularies[0].constants == ["cat", "mouse"] and "ChasesMouse" in _names(["The cat chases the mouse."])[0]
    assert vocabularies[1].constants == []  # "Every cat is fast" cannot become Fast(cat)
    assert vocabularies[2].constants == ["cat", "mouse"]
    assert vocabularies[3].constants == []  # its "it" is the something: the formula must quantify


def test_a_sentence_without_a_name_word_is_marked() -> None:
    assert _names(["Max is a yumpus.", "It is so."]) == [["Yumpus"], None]


def test_the_worked_examples_use_only_their_sentences_names() -> None:
    for pairs in WORDS_SHOTS:
        vocabularies = words_vocabularies([s for s, _ in pairs])
        for (sentence, fol), vocabulary in zip(pairs, vocabularies, strict=True):
            grammar = sentence_grammar(vocabulary, max_depth=4, max_width=4, words=True)
            assert _admits(grammar, fol), (sentence, fol, vocabulary)


def test_quantified_grammar_binds_the_variable() -> None:
    grammar = fol_grammar([("Shy", 1)], [], max_depth=2, max_width=2, variables=("x",), quantified=True)
    assert _admits(grammar, "∀x (Shy(x))") and _admits(grammar, "∃x (¬Shy(x))")
    assert not _admits(grammar, "Shy(x)") and not _admits(grammar, "¬Shy(x)")
    with pytest.raises(ConfigError, match="max_depth >= 1"):
        fol_grammar([("Shy", 1)], [], max_depth=0, quantified=True)


def test_sentence_grammar_of_a_sentence_naming_nobody_must_quantify() -> None:
    none, some = words_vocabularies(["Jompuses are not shy.", "Max is shy."])
    universal = sentence_grammar(none, max_depth=2, max_width=2, words=True)
    assert _admits(universal, "∀x (Jompuses(x) → ¬Shy(x))") and not _admits(universal, "¬Shy(x)")
    assert not _admits(universal, "∀y (Jompuses(y) → ¬Shy(y))")  # one variable: x
    named = sentence_grammar(some, max_depth=2, max_width=2, words=True)
    assert _admits(named, "Shy(max)") and not _admits(named, "Jompuses(max)")


class Parser:
    """Replies to each sentence request with a scripted formula, parsed with the request's grammar."""

    provider = "scripted"
    model = "scripted"

    def __init__(self, formulas: dict[str, list[str]]) -> None:
        self.formulas = formulas  # sentence -> one formula per sample
        self.requests: list[GenerationRequest] = []

    async def generate(self, request: GenerationRequest) -> Generation:
        self.requests.append(request)
        sentence = request.messages[-1].content.rpartition("\nTEXT: ")[2]
        texts = self.formulas[sentence][: request.n]
        for text in texts:
            assert _admits(request.constraint.value, text), (sentence, text)
        return Generation(choices=[Choice(text=t, finish_reason="stop") for t in texts],
                          usage=Usage(input_tokens=10, output_tokens=5), model=self.model)


def test_one_request_per_sentence_with_n_k_and_programs_assembled_by_sample() -> None:
    wrong = {**RIGHT, "Jompuses are not shy.": "∀x (Jompus(x) → Shy(x))"}  # drops the "not": "True"
    backend = Parser({s: [RIGHT[s], wrong[s]] for s in JOMPUS.sentences})
    out = asyncio.run(linc.build(backend, k=2, translation="words", max_depth=2, max_width=2).compile().ainvoke(JOMPUS))
    assert [r.n for r in backend.requests] == [2, 2, 2, 2] and out.calls == 4
    assert {r.messages[-1].content.rpartition("\nTEXT: ")[2] for r in backend.requests} == set(JOMPUS.sentences)
    assert [s.label for s in out.samples] == ["False", "True"] and out.degenerate_count == 0
    assert [parse(f) for f in out.samples[0].premises_fol] == [parse(RIGHT[s]) for s in JOMPUS.premises]
    extra = linc.extras(out)
    assert extra["grounding"] == "words" and extra["calls"] == 4
    # the conclusion's grammar admits only its own words: the premises' names are not on offer
    conclusion = next(r for r in backend.requests if r.messages[-1].content.endswith("TEXT: Max is shy."))
    assert '"Jompus("' not in conclusion.constraint.value and '"Shy("' in conclusion.constraint.value


def test_a_problem_without_a_name_word_is_refused_with_the_way_out() -> None:
    problem = linc.LogicProblem(premises=["It is so."], conclusion="It is.")
    with pytest.raises(InputError, match="translation='paper'"):
        asyncio.run(linc.build(Parser({}), k=1, translation="words").compile().ainvoke(problem))


def test_recording_into_an_empty_cassette_reaches_the_sentence_step(tmp_path) -> None:
    """An empty cassette has len 0: the graph must still hand the build's backend to the node (it
    once fell back to the compile's None, and the first example of a new words run failed)."""
    from agentkit.backends.replay import ReplayBackend

    recording = ReplayBackend(tmp_path / "words.cassette.jsonl", record_from=Parser({s: [RIGHT[s]] for s in JOMPUS.sentences}))
    assert len(recording) == 0
    out = asyncio.run(linc.build(recording, k=1, translation="words", max_depth=2, max_width=2).compile().ainvoke(JOMPUS))
    assert out.answer == "False" and len(recording) == len(JOMPUS.sentences)


@pytest.mark.parametrize(("sentence", "negated"), [
    ("Jompuses are not shy.", True), ("No reptile has fur.", True), ("Tom isn't furry.", True),
    ("Nothing is both.", True), ("It cannot fly.", True), ("Jompuses are shy.", False),
    ("Notable people are nice.", False), ("Nobel won.", False),
])
def test_a_sentence_says_not_by_its_words(sentence, negated) -> None:
    assert says_not(sentence) is negated


def test_polarity_gives_a_negated_sentence_a_negated_formula_and_no_other() -> None:
    backend = Parser({s: [RIGHT[s]] for s in JOMPUS.sentences})
    out = asyncio.run(linc.build(backend, k=1, translation="words", polarity=True, max_depth=2, max_width=2)
                      .compile().ainvoke(JOMPUS))
    assert out.answer == "False"  # the right program is admitted sentence by sentence
    grammars = {r.messages[-1].content.rpartition("\nTEXT: ")[2]: r.constraint.value for r in backend.requests}
    assert not _admits(grammars["Jompuses are not shy."], "∀x (Jompuses(x) → Shy(x))")  # the dropped "not"
    assert not _admits(grammars["Max is shy."], "¬Shy(max)")
    for pairs in [*WORDS_SHOTS, *SENTENCE_SHOTS]:  # the worked examples obey it too
        assert all(("¬" in fol) == says_not(sentence) for sentence, fol in pairs)


def test_polarity_needs_a_per_sentence_translation() -> None:
    with pytest.raises(ConfigError, match="polarity=true needs a per-sentence translation"):
        linc.build(None, polarity=True)


def test_restrictors_refuse_the_universal_conjunction_in_every_sentence_grammar() -> None:
    backend = Parser({s: [RIGHT[s]] for s in JOMPUS.sentences})
    out = asyncio.run(linc.build(backend, k=1, translation="words", polarity=True, restrictors=True, max_depth=3,
                                 max_width=2).compile().ainvoke(JOMPUS))
    assert out.answer == "False"  # the right program is still admitted sentence by sentence
    grammars = {r.messages[-1].content.rpartition("\nTEXT: ")[2]: r.constraint.value for r in backend.requests}
    assert not _admits(grammars["Every yumpus is a jompus."], "∀x (Yumpus(x) ∧ Jompus(x))")
    assert not _admits(grammars["Every yumpus is a jompus."], "∃x (Yumpus(x) → Jompus(x))")
    assert _admits(grammars["Every yumpus is a jompus."], "∃x (Yumpus(x) ∧ Jompus(x))")
    assert not _admits(grammars["Jompuses are not shy."], "∀x (Jompus(x) ∧ ¬Shy(x))")
    for pairs in WORDS_SHOTS:  # the worked examples obey it too
        vocabularies = words_vocabularies([s for s, _ in pairs])
        for (sentence, fol), vocabulary in zip(pairs, vocabularies, strict=True):
            grammar = sentence_grammar(vocabulary, max_depth=4, max_width=4, words=True, restrictors=True,
                                       negation=says_not(sentence))
            assert _admits(grammar, fol), (sentence, fol)


def test_restrictors_need_a_per_sentence_translation() -> None:
    with pytest.raises(ConfigError, match="restrictors=true needs a per-sentence translation"):
        linc.build(None, restrictors=True)


def test_the_negated_names_are_those_after_the_negation_word() -> None:
    sentences = ["Jompuses are not shy.", "If something is not red then it is big.", "No cats are dogs.",
                 "Max is sour.", "Every dumpus is not wooden."]
    assert [v.negatable for v in words_vocabularies(sentences)] == [
        ["Shy"], ["Red", "Big"], ["Cats", "Dogs"], [], ["Wooden"]]


def test_negation_scope_puts_the_negation_on_what_the_sentence_negates() -> None:
    backend = Parser({s: [RIGHT[s]] for s in JOMPUS.sentences})
    out = asyncio.run(linc.build(backend, k=1, translation="words", polarity=True, restrictors=True,
                                 negation_scope=True, max_depth=3, max_width=2).compile().ainvoke(JOMPUS))
    assert out.answer == "False"  # the right program is still admitted sentence by sentence
    grammars = {r.messages[-1].content.rpartition("\nTEXT: ")[2]: r.constraint.value for r in backend.requests}
    assert not _admits(grammars["Jompuses are not shy."], "∀x (¬Jompus(x) → Shy(x))")
    assert not _admits(grammars["Jompuses are not shy."], "∀x (Jompus(x) → (Shy(x) ∨ ¬Jompus(x)))")
    assert not _admits(grammars["Every yumpus is a jompus."], "∀x (Yumpus(x) → ¬Jompus(x))")
    for pairs in WORDS_SHOTS:  # the worked examples obey it too
        vocabularies = words_vocabularies([s for s, _ in pairs])
        for (sentence, fol), vocabulary in zip(pairs, vocabularies, strict=True):
            grammar = sentence_grammar(vocabulary, max_depth=4, max_width=4, words=True, restrictors=True,
                                       negation=says_not(sentence), negation_scope=True)
            assert _admits(grammar, fol), (sentence, fol)


@pytest.mark.parametrize("translation", ["paper", "sentence"])
def test_negation_scope_needs_the_words_translation(translation: str) -> None:
    with pytest.raises(ConfigError, match="negation_scope=true needs translation='words'"):
        linc.build(None, translation=translation, negation_scope=True)


def test_vote_sentences_takes_each_sentences_most_frequent_formula() -> None:
    from agentkit.graphs._linc_types import FOLProgram
    from agentkit.graphs._linc_vote import vote_sentences

    programs = [FOLProgram(premises_fol=["A", "B"], conclusion_fol="C"),
                FOLProgram(premises_fol=["A", "b"], conclusion_fol="c"),
                FOLProgram(premises_fol=["a", "b"], conclusion_fol="C")]
    voted, agreement = vote_sentences(programs)
    assert voted == FOLProgram(premises_fol=["A", "b"], conclusion_fol="C") and agreement == pytest.approx(6 / 9)
    tie, _ = vote_sentences(programs[1:])  # one each: the earliest sample's formula
    assert tie == programs[1]
    with pytest.raises(ValueError, match="at least one program"):
        vote_sentences([])


def test_the_sentence_vote_proves_the_program_of_the_majority_formulas() -> None:
    # every sample breaks the chain at a different link, so each says "Uncertain" on its own; per
    # sentence the right formula has three of the four samples
    links = ["Jompuses are not shy.", "Every yumpus is a jompus.", "Max is a yumpus."]
    slips = {"Jompuses are not shy.": "∀x (Jompus(x) → Shy(x))",
             "Every yumpus is a jompus.": "∀x (Jompus(x) → Yumpus(x))",
             "Max is a yumpus.": "Yumpus(x)"}  # a free x reads as a constant: not max
    formulas = {s: [slips[s] if i == j else RIGHT[s] for j in range(4)] for i, s in enumerate(links)}
    formulas["Max is shy."] = [RIGHT["Max is shy."]] * 4
    programs = asyncio.run(linc.build(Parser(formulas), k=4, translation="words", max_depth=2, max_width=2)
                           .compile().ainvoke(JOMPUS))
    voted = asyncio.run(linc.build(Parser(formulas), k=4, translation="words", vote="sentence", max_depth=2,
                                   max_width=2).compile().ainvoke(JOMPUS))
    assert programs.answer != "False" and voted.answer == "False"
    assert voted.k == 4 and [s.label for s in voted.samples] == ["False"] and voted.votes.counts == {"False": 1}
    assert voted.agreement == pytest.approx(13 / 16)  # 3/4, 3/4, 3/4 and 4/4
    extra = linc.extras(voted)
    assert extra["k"] == 4 and extra["sentence_agreement"] == voted.agreement and extra["prover_success_rate"] == 1.0
    assert "sentence_agreement" not in linc.extras(programs)


def test_a_contracted_not_is_read_as_not() -> None:
    sentences = ["The bear doesn't chase the mouse.", "Tom can't swim.", "Tom swims."]
    assert _names(sentences) == [["Chase", "ChaseMouse"], ["Swim"], ["TomSwim", "Swim"]]  # no "DoesnTChase", no "Ca"
    assert [v.negatable for v in words_vocabularies(sentences)] == [["Chase", "ChaseMouse"], ["Swim"], []]
