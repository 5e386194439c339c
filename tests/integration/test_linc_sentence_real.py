"""LINC's per-sentence variant with the input-grounded grammar on the real SmolLM2 (issue 17's "done
when"): on ProntoQA_1, every predicate of every program comes from the input's words, by
construction; and ``translation="words"`` gives each formula only its own sentence's names. The answer
is not asserted: a 135M parser translates poorly either way.

The knobs go through the same parsing as ``agentkit run linc -o translation='"sentence"' -o
grounded=true``; the backend is llama.cpp on one thread (the machine is shared), K=2 for time.
"""

from __future__ import annotations

import asyncio
import re

import pytest

from agentkit.eval import load_dataset
from agentkit.graphs import get_pattern, linc
from agentkit.graphs._linc_grounding import number_variants
from agentkit.verifiers._fol_parse import _children
from agentkit.verifiers.fol import (
    And,
    Atom,
    Exists,
    ForAll,
    Iff,
    Implies,
    Not,
    Or,
    Xor,
    parse,
)
from tests.helpers import Recording

pytestmark = pytest.mark.integration


def _atoms(f) -> list[Atom]:
    if isinstance(f, Atom):
        return [f]
    if isinstance(f, Not):
        return _atoms(f.arg)
    if isinstance(f, (ForAll, Exists)):
        return _atoms(f.body)
    if isinstance(f, (And, Or)):
        return [a for arg in f.args for a in _atoms(arg)]
    assert isinstance(f, (Xor, Implies, Iff))
    return _atoms(f.left) + _atoms(f.right)


def _subformulas(f) -> list:
    return [f, *(g for child in _children(f) for g in _subformulas(child))]


def _from_the_words(name: str, words: set[str]) -> bool:
    """``name`` is a CamelCase join of input words, the last one possibly in its other number."""
    parts = [p.lower() for p in re.findall(r"[A-Z][a-z0-9]*|[a-z0-9]+", name)]
    *head, last = parts
    return all(p in words for p in head) and any(v in words for v in number_variants(last))


def test_sentence_translation_with_the_grounded_grammar_uses_only_the_inputs_words() -> None:
    from agentkit.backends.llamacpp import LlamaCppBackend

    (example,) = [e for e in load_dataset("prontoqa") if e.id == "ProntoQA_1"]
    problem = linc.input_from(example)
    words = {w.lower() for s in problem.sentences for w in re.findall(r"[^\W_]+", s)}
    pattern = get_pattern("linc")
    knobs = dict(pattern.parse_option(o) for o in ['translation="sentence"', "grounded=true", "k=2", "seed=3"])
    backend = Recording(LlamaCppBackend(n_threads=1))
    out = asyncio.run(pattern.graph(backend, **knobs).compile().ainvoke(problem))

    assert out.grounding.grounded and out.vocabularies, (out.grounding, out.vocabulary_violations)
    vocabulary_request = backend.requests[0]
    assert vocabulary_request.n == 2 and "/[A-Z]" not in vocabulary_request.constraint.value  # grounded, not open
    assert len(backend.requests) == out.calls == 1 + len(problem.sentences) * len(
        {v.model_dump_json() for v in out.vocabularies})
    for vocabulary in out.vocabularies:
        assert all(_from_the_words(name, words) for name, _ in vocabulary.predicates), vocabulary
        assert all(c in words for c in vocabulary.constants), vocabulary
    programs = [s for s in out.samples if s.premises_fol is not None]
    assert programs, [s.reason for s in out.samples]  # guided decoding: the programs exist to be checked
    for sample in programs:
        formulas = [*sample.premises_fol, sample.conclusion_fol]
        assert len(formulas) == len(problem.sentences)
        for formula in formulas:
            for atom in _atoms(parse(formula)):
                assert _from_the_words(atom.pred, words), (atom.pred, formula)
        assert sample.label in ("True", "False", "Uncertain", "Error")
    assert out.k == 2 and len(out.samples) == 2
    # the sentence requests share their long prefix (instructions, shots, vocabulary): the batch reuses
    # it from the prefix cache instead of decoding every prompt whole (24% reused when admissions
    # evicted it, 94% since they wait; bench/engine.py --part e --arms wait)
    inner = backend.inner
    prompt_tokens = sum(len(inner._prompt_tokens(inner.format_prompt(r))) for r in backend.requests)
    assert inner._scheduler.reused_tokens >= 0.75 * prompt_tokens, (inner._scheduler.reused_tokens, prompt_tokens)


def test_words_translation_gives_each_formula_only_its_own_sentences_names() -> None:
    """``-o translation='"words"' -o polarity=true -o restrictors=true -o negation_scope=true``:
    formula j of every program uses only sentence j's own names and constants, a sentence that names
    nobody comes back closed (a quantifier binds its x), a formula holds a ¬ exactly when its
    sentence says "not" and only before a name of the words after it, and no ∀ ranges over a ∧ nor
    ∃ over an →."""
    from agentkit.backends.llamacpp import LlamaCppBackend
    from agentkit.graphs._linc_grounding import says_not, words_vocabularies

    (example,) = [e for e in load_dataset("prontoqa") if e.id == "ProntoQA_1"]
    problem = linc.input_from(example)
    pattern = get_pattern("linc")
    options = ['translation="words"', "polarity=true", "restrictors=true", "negation_scope=true", "k=2", "seed=3"]
    knobs = dict(pattern.parse_option(o) for o in options)
    backend = Recording(LlamaCppBackend(n_threads=1))
    out = asyncio.run(pattern.graph(backend, **knobs).compile().ainvoke(problem))

    vocabularies = words_vocabularies(problem.sentences)
    assert len(backend.requests) == out.calls == len(problem.sentences)
    assert all(r.n == 2 for r in backend.requests)
    programs = [s for s in out.samples if s.premises_fol is not None]
    assert programs, [s.reason for s in out.samples]
    for sample in programs:
        formulas = [*sample.premises_fol, sample.conclusion_fol]
        for formula, vocabulary, sentence in zip(formulas, vocabularies, problem.sentences, strict=True):
            tree = parse(formula)
            assert ("¬" in formula) == says_not(sentence), (sentence, formula)
            names = {name for name, _ in vocabulary.predicates}
            for atom in _atoms(tree):
                assert atom.pred in names, (atom.pred, formula, names)
                assert all(a.name in ("x", *vocabulary.constants) for a in atom.args), (formula, vocabulary)
            if not vocabulary.constants:
                assert isinstance(tree, (ForAll, Exists)), formula
            for part in _subformulas(tree):
                assert not (isinstance(part, ForAll) and isinstance(part.body, And)), formula
                assert not (isinstance(part, Exists) and isinstance(part.body, Implies)), formula
                if isinstance(part, Not):
                    assert isinstance(part.arg, Atom) and part.arg.pred in vocabulary.negatable, formula


def test_the_sentence_vote_proves_each_sentences_most_frequent_formula() -> None:
    """``-o vote='"sentence"'`` (words mode, K=3): the one program proved holds, for each sentence,
    the formula most of the valid samples wrote for it (the earliest on a tie), read off the model's
    own replies."""
    from collections import Counter

    from agentkit.backends.llamacpp import LlamaCppBackend
    from agentkit.verifiers.fol import FOLSyntaxError, to_str

    (example,) = [e for e in load_dataset("prontoqa") if e.id == "ProntoQA_2"]
    problem = linc.input_from(example)
    pattern = get_pattern("linc")
    knobs = dict(pattern.parse_option(o) for o in ['translation="words"', 'vote="sentence"', "k=3", "seed=5"])
    backend = Recording(LlamaCppBackend(n_threads=1))
    out = asyncio.run(pattern.graph(backend, **knobs).compile().ainvoke(problem))

    def canonical(text: str) -> str | None:
        try:
            return to_str(parse(text))
        except FOLSyntaxError:
            return None

    replies = {r.messages[-1].content.rpartition("\nTEXT: ")[2]:
               [canonical(c.text) for c in backend.generations[i].choices] for i, r in enumerate(backend.requests)}
    columns = [replies[s] for s in problem.sentences]
    valid = [i for i in range(3) if all(column[i] is not None for column in columns)]
    assert valid, replies
    (proved,) = [s for s in out.samples if s.premises_fol is not None]
    assert [*proved.premises_fol, proved.conclusion_fol] == [
        Counter(column[i] for i in valid).most_common(1)[0][0] for column in columns]
    assert out.k == 3 and out.vote == "sentence" and 1 / 3 <= out.agreement <= 1
    assert out.answer == proved.label if proved.label != "Error" else out.answer is None
