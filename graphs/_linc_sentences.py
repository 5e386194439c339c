"""LINC's per-sentence translation: our variant of the paper's semantic parsing, in two steps.

The paper's parser writes the whole program in one go. A 135M parser doing that drifts off the
text and copies the conclusion (issue 17), so this variant splits the work:

1. vocabulary - one guided request (n=K) names the problem's predicates, with arity, and its
   constants (layout and grammar in ``_linc_grounding``; grounded in the input's words when asked);
2. sentences  - every premise and the conclusion is translated on its own, shown with a few worked
   one-sentence examples and its sample's vocabulary; its grammar admits exactly that vocabulary.
   Sample i of every sentence uses vocabulary i, so the K programs stay consistent.

``translation="words"`` drops step 1: each sentence's grammar admits only the names made of that
sentence's own words (``words_vocabularies``), the same for all K samples, so every sentence is one
request with n=K and a problem takes as many calls as it has sentences.

A request with n=K carries one grammar, and the K vocabularies usually differ, so samples that
declared the same vocabulary share one request (n = how many declared it) and the rest go as
concurrent requests: per sentence, one request per distinct vocabulary. All of them are sent at
once (the llama.cpp backend batches concurrent requests; vLLM serves them in parallel), and every
request with the same vocabulary has the same grammar, which the backend's grammar cache compiles
once. Calls per problem: 1 + sentences x distinct vocabularies (:func:`request_count`).

Program i is assembled from vocabulary i and the i-th formula of every sentence; a sample whose
vocabulary or any sentence failed validation is an Error sample, with the sentence named.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from pydantic import BaseModel, Field

from agentkit._text_outputs import TextOutput
from agentkit.agent import Agent, AgentResult, Retry
from agentkit.backends.base import Backend, Sampling, Usage
from agentkit.errors import ConfigError, InputError
from agentkit.graphs._linc_grounding import (
    VARIABLES,
    Grounding,
    Vocabulary,
    read_vocabulary,
    render_vocabulary,
    says_not,
    vocabulary_grammar,
    vocabulary_of,
    words_vocabularies,
)
from agentkit.graphs._linc_types import FOLProgram, LogicProblem
from agentkit.verifiers.fol import FOLSyntaxError, fol_grammar, parse, to_str

VOCABULARY_INSTRUCTIONS = (
    "List the vocabulary needed to translate every sentence of the problem into first-order logic: "
    "the predicates, each with its number of arguments, and the constants (named individuals, "
    "lowercase). Name each property or relation once, with a word from the sentences, and reuse that "
    "name every time a sentence mentions it."
)
SENTENCE_INSTRUCTIONS = (
    "Translate the sentence into one first-order logic formula, using only the predicates (with the "
    "number of arguments given) and the constants of the VOCABULARY. Use ∀x (...), ∃x (...), ¬, ∧, ∨, "
    "→, ↔ and ⊕ (either-or)."
)

#: Our worked problems for this variant, (sentence, FOL) pairs with the conclusion last. Every name
#: is grounded in its own sentences (tests/unit/test_linc_sentences.py checks it), so the examples
#: show the model exactly the kind of vocabulary the grounded grammar admits.
SENTENCE_SHOTS: list[list[tuple[str, str]]] = [
    [
        ("Every student who studies hard passes the exam.", "∀x ((Student(x) ∧ StudiesHard(x)) → Passes(x, exam))"),
        ("Mia is a student who studies hard.", "Student(mia) ∧ StudiesHard(mia)"),
        ("Anyone who passes the exam gets a certificate.", "∀x (Passes(x, exam) → GetsCertificate(x))"),
        ("Mia gets a certificate.", "GetsCertificate(mia)"),
    ],
    [
        ("Lizards are not furry.", "∀x (Lizard(x) → ¬Furry(x))"),
        ("Each pet is a cat or a lizard.", "∀x (Pet(x) → (Cat(x) ∨ Lizard(x)))"),
        ("Tom is a furry pet.", "Furry(tom) ∧ Pet(tom)"),
        ("Tom is a lizard.", "Lizard(tom)"),
    ],
]

#: The worked problems of ``translation="words"``: every name is one of its sentence's own word
#: names (``words_vocabularies``; the test checks it), unary, so a relation shows as ChasesMouse(x).
WORDS_SHOTS: list[list[tuple[str, str]]] = [
    [
        ("Every student who studies hard passes the exam.", "∀x ((Student(x) ∧ StudiesHard(x)) → PassesExam(x))"),
        ("Mia is a student who studies hard.", "Student(mia) ∧ StudiesHard(mia)"),
        ("Anyone who passes the exam gets a certificate.", "∀x (PassesExam(x) → GetsCertificate(x))"),
        ("Mia gets a certificate.", "GetsCertificate(mia)"),
    ],
    SENTENCE_SHOTS[1],
    [
        ("The cat chases the mouse.", "ChasesMouse(cat)"),
        ("If something chases the mouse then it is fast.", "∀x (ChasesMouse(x) → Fast(x))"),
        ("The cat is not fast.", "¬Fast(cat)"),
    ],
]
WORDS_INSTRUCTIONS = (
    "Translate the sentence into one first-order logic formula, using only the predicates and the "
    "constants of the VOCABULARY, which are the sentence's own words. Every predicate takes one argument; "
    "a relation to a named thing is part of the name, as in ChasesMouse(x). Use ∀x (...), ∃x (...), ¬, ∧, "
    "∨, →, ↔ and ⊕ (either-or)."
)


class VocabularyInput(BaseModel):
    """The problem and the names its vocabulary may use."""

    premises: list[str]
    conclusion: str
    grounding: Grounding = Grounding()


class SentenceInput(BaseModel):
    vocabulary: Vocabulary
    sentence: str


class SentenceFOL(BaseModel):
    fol: str


class TranslationInput(BaseModel):
    """What the sentence step reads: the problem and the K samples' valid vocabularies."""

    premises: list[str]
    conclusion: str
    vocabularies: list[Vocabulary] = Field(default_factory=list)


def _problem_prompt(inp: VocabularyInput) -> str:
    return "PREMISES:\n" + "\n".join(inp.premises) + f"\nCONCLUSION:\n{inp.conclusion}"


def _sentence_prompt(inp: SentenceInput) -> str:
    return f"VOCABULARY:\n{render_vocabulary(inp.vocabulary)}\nTEXT: {inp.sentence}"


def sentence_grammar(vocabulary: Vocabulary, *, max_depth: int, max_width: int, words: bool = False,
                     negation: bool | None = None, restrictors: bool = False, negation_scope: bool = False) -> str:
    """One formula over exactly this vocabulary (variables x, y, z, w stay free to use). ``words``
    (a sentence's own names): the one variable x, and a sentence that names no individual must be
    quantified, so its x is bound. ``negation`` (``polarity``): whether the formula must (True) or
    must not (False) hold a ¬; None leaves it to the model. ``restrictors``: no ∀ over a ∧ body,
    no ∃ over an → body. ``negation_scope``: a ¬ only directly before a name of the words after the
    sentence's negation word (``vocabulary.negatable``), so none where it has none."""
    negatable = vocabulary.negatable if negation_scope else None
    if negatable == []:
        negation = False
    return fol_grammar(vocabulary.predicates, vocabulary.constants, max_depth=max_depth, max_width=max_width,
                       variables=("x",) if words else VARIABLES, max_arity=max(a for _, a in vocabulary.predicates),
                       quantified=words and not vocabulary.constants, negation=negation, restrictors=restrictors,
                       negatable=negatable)


def _read_formula(text: str, inp: SentenceInput) -> SentenceFOL:
    try:
        return SentenceFOL(fol=to_str(parse(text)))
    except FOLSyntaxError as exc:
        raise InputError(f"FOL for {inp.sentence!r}: {exc}") from None


def vocabulary_agent(*, k: int, sampling: Sampling, max_predicates: int, max_constants: int,
                     backend: Backend | None = None) -> Agent[VocabularyInput, Vocabulary]:
    shots = []
    for pairs in SENTENCE_SHOTS:
        problem = VocabularyInput(premises=[s for s, _ in pairs[:-1]], conclusion=pairs[-1][0])
        shots.append((problem, vocabulary_of(f for _, f in pairs)))
    return Agent(
        "vocabulary", instructions=VOCABULARY_INSTRUCTIONS, input_type=VocabularyInput, output_type=Vocabulary,
        text_output=TextOutput(
            kind="grammar",
            constraint=lambda inp: vocabulary_grammar(inp.grounding, max_predicates=max_predicates,
                                                      max_constants=max_constants),
            parse=lambda text, _: read_vocabulary(text),
            render=lambda _, out: render_vocabulary(out),
            hint="Reply with a PREDICATES line of Name(arity) entries, then a CONSTANTS line (or 'none').",
        ),
        prompt=_problem_prompt, examples=shots, backend=backend, n=k, sampling=sampling, min_valid=0,
    )


def sentence_agent(*, sampling: Sampling, max_depth: int, max_width: int,
                   words: bool = False, polarity: bool = False, restrictors: bool = False,
                   negation_scope: bool = False) -> Agent[SentenceInput, SentenceFOL]:
    """The sentence step's agent; ``words`` shows each shot with its sentence's own names
    (``translation="words"``) instead of its problem's vocabulary; ``polarity`` gives a sentence
    with a negation word a formula with a ¬, and one without a formula without; ``restrictors``
    keeps ∀ off ∧ bodies and ∃ off → bodies; ``negation_scope`` puts a ¬ only before what the
    sentence's "not" negates."""
    shots = []
    for pairs in WORDS_SHOTS if words else SENTENCE_SHOTS:
        if words:
            vocabularies = words_vocabularies([s for s, _ in pairs])
        else:
            vocabularies = [vocabulary_of(f for _, f in pairs)] * len(pairs)
        shots += [(SentenceInput(vocabulary=v, sentence=s), SentenceFOL(fol=f))
                  for (s, f), v in zip(pairs, vocabularies, strict=True) if v is not None]
    return Agent(
        "sentence", instructions=WORDS_INSTRUCTIONS if words else SENTENCE_INSTRUCTIONS,
        input_type=SentenceInput, output_type=SentenceFOL,
        text_output=TextOutput(
            kind="grammar",
            constraint=lambda inp: sentence_grammar(inp.vocabulary, max_depth=max_depth, max_width=max_width,
                                                    words=words, restrictors=restrictors,
                                                    negation_scope=negation_scope,
                                                    negation=says_not(inp.sentence) if polarity else None),
            parse=_read_formula,
            render=lambda _, out: out.fol,
            hint="Reply with the formula only.",
        ),
        prompt=_sentence_prompt, examples=shots, sampling=sampling, min_valid=0,
    )


def sentence_names(sentences: Sequence[str]) -> tuple[Grounding, list[Vocabulary]]:
    """``translation="words"``'s names: each sentence's own (``words_vocabularies``); a sentence with
    no word a name can be built from gets every sentence's (``Grounding.fallback`` says which)."""
    own = words_vocabularies(sentences)
    if not any(own):
        raise InputError("linc translation='words': no sentence has a word a predicate name can be built "
                         "from; use translation='paper' for this problem")
    everyone = Vocabulary(predicates=list(dict.fromkeys(p for v in own if v for p in v.predicates)),
                          constants=list(dict.fromkeys(c for v in own if v for c in v.constants)))
    bare = [i for i, v in enumerate(own) if v is None]
    fallback = f"sentences {bare} have no word a name can be built from: they get every sentence's names"
    grounding = Grounding(predicates=[n for n, _ in everyone.predicates], constants=everyone.constants,
                          fallback=fallback if bare else None)
    return grounding, [everyone if v is None else v for v in own]


def _groups(vocabularies: Sequence[Vocabulary]) -> list[tuple[Vocabulary, list[int]]]:
    """Samples that declared the same vocabulary, in first-seen order: one request each."""
    by_key: dict[str, tuple[Vocabulary, list[int]]] = {}
    for i, v in enumerate(vocabularies):
        by_key.setdefault(v.model_dump_json(), (v, []))[1].append(i)
    return list(by_key.values())


def request_count(vocabularies: Sequence[Vocabulary], sentences: int) -> int:
    """Backend requests of one problem: the vocabulary request plus one per sentence and distinct vocabulary."""
    return 1 + sentences * len(_groups(vocabularies))


class SentenceTranslation:
    """The sentence step as a graph agent node: ``arun`` fans out the per-sentence requests and
    returns the assembled programs (``outputs``) and the samples that failed (``violations``).

    ``per_sentence``: ``vocabularies`` holds one vocabulary per *sentence* (``translation="words"``),
    and each sentence is one request with n=K; otherwise one per sample, grouped as above."""

    input_type = TranslationInput

    def __init__(self, agent: Agent[SentenceInput, SentenceFOL], *, k: int, backend: Backend | None = None,
                 per_sentence: bool = False) -> None:
        self.name = "sentence_translation"
        self.agent = agent
        self.backend = backend
        self.n = k
        self.per_sentence = per_sentence

    async def arun(self, inp: TranslationInput, *, backend: Backend | None = None,
                   retry: Retry | None = None) -> AgentResult[FOLProgram]:
        if backend is None:
            raise ConfigError("linc's sentence_translation has no backend; pass backend= to build or compile")
        problem = LogicProblem(premises=inp.premises, conclusion=inp.conclusion)
        if self.per_sentence:
            samples = self.n
            jobs = [(j, vocabulary, list(range(samples))) for j, vocabulary in enumerate(inp.vocabularies)]
        else:
            samples = len(inp.vocabularies)
            # vocabulary-major: consecutive requests then differ only in the sentence, the prompt's last
            # line, so llama.cpp's prefix cache (the last prompt started) serves the vocabulary too
            jobs = [(j, vocabulary, members) for vocabulary, members in _groups(inp.vocabularies)
                    for j in range(len(problem.sentences))]
        results = await asyncio.gather(*[
            self.agent.arun(SentenceInput(vocabulary=vocabulary, sentence=problem.sentences[j]), backend=backend,
                            n=len(members), retry=retry) for j, vocabulary, members in jobs])
        formulas: list[list[str | None]] = [[None] * len(problem.sentences) for _ in range(samples)]
        failures: dict[int, str] = {}
        usage = Usage()
        for (j, _, members), result in zip(jobs, results, strict=True):
            usage = usage + result.usage
            for slot, sample in enumerate(members):
                if slot < len(result.outputs):  # valid outputs first, in order: which sample got which is arbitrary
                    formulas[sample][j] = result.outputs[slot].fol
                else:
                    failures.setdefault(sample, f"{_which(j, problem)}: " + (
                        result.violations[slot - len(result.outputs)] if result.violations else "no sample returned"))
        outputs = [FOLProgram(premises_fol=list(f[:-1]), conclusion_fol=f[-1])  # type: ignore[arg-type]
                   for i, f in enumerate(formulas) if i not in failures]
        return AgentResult[FOLProgram](outputs=outputs, violations=[failures[i] for i in sorted(failures)],
                                       usage=usage, model=backend.model)


def _which(index: int, problem: LogicProblem) -> str:
    return "the conclusion" if index == len(problem.premises) else f"premise {index + 1}"
