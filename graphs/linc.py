"""LINC: the model parses, a prover decides (Olausson et al., EMNLP 2023).

  1. semantic_parsing    - the model writes one FOL formula per premise and one for the
                           conclusion, K samples in ONE request (n=K; paper: K=10, temperature 0.8).
                           As in the paper, each formula follows its sentence ("TEXT: ...",
                           "FOL: ..."); here the sentences are fixed literals of a Lark grammar and
                           the formulas come from verifiers.fol's FOL grammar, so a sample cannot
                           be a syntax error, skip a sentence or reorder them.
  2. symbolic_inference  - z3 (verifiers.fol) on each sample: True if premises ⊨ conclusion,
                           False if premises ⊨ ¬conclusion, else Uncertain. A sample that failed
                           validation (e.g. cut at max_tokens) or that the prover could not decide
                           (timeout / z3 unknown) is an Error (our reading of "prover failure").
  3. majority_vote       - plurality over the non-Error labels, ties to the earliest sample (as the
                           paper's Counter.most_common). If all K samples are Errors there is no
                           answer (None), and the eval hook raises NoValidSample, so the problem is
                           scored wrong, as the paper scores it.
Output: answer (the label), each sample's FOL and verdict, the vote tally, the error count, and how
many samples had inconsistent premises (they entail everything, so the prover says True; the vote
keeps them, as the paper's Prover9 run does, and the count makes them visible).

Variants (knobs; the paper's procedure above is the default, ``translation="paper"``):
  translation="sentence" - our variant of step 1, not the paper's: a vocabulary request (n=K), then
                           each sentence translated on its own under its sample's vocabulary
                           (``_linc_sentences``); calls per problem are recorded (``calls``).
  grounded=true          - the vocabulary may only use names built from the input's words
                           (``_linc_grounding``); per-sentence translation only.
  translation="words"    - per-sentence translation without the vocabulary step: each sentence's
                           grammar admits only unary names made of that sentence's own words, spelt
                           alike in every sentence that uses them (``words_vocabularies``), so two
                           sentences with different words cannot get the same formula.
  polarity=true          - per-sentence modes: a sentence with a negation word ("not", "no", "never",
                           "n't", ...) must get a formula with a ¬, and one without must not (the
                           135M parser was seen dropping the "not" of "Jompuses are not shy").
  restrictors=true       - per-sentence modes: a ∀ may not range over a conjunction nor an ∃ over an
                           implication (the parser wrote ∀x (Jompus(x) ∧ Yumpus(x)) for "Jompuses
                           are yumpuses"; ∃x (A(x) → B(x)) is the same slip the other way round).
  negation_scope=true    - words mode: a ¬ stands only directly before a name made of the words after
                           the sentence's negation word ("Jompuses are not shy": ¬Shy(x), never
                           ¬Jompus(x)); a sentence without one gets no ¬.
  vote="sentence"        - words mode: each sentence's most frequent formula across the K samples, then
                           the prover on the one program they make (``_linc_vote``), instead of
                           the vote over K programs that each break at a different link.
  checks=true            - samples whose conclusion is copied into the premises or that repeat a
                           premise are refused (Error), with the reason (``verifiers.fol_checks``).
  allow_inconsistent     - whether inconsistent premises (which "prove" anything) count: default
                           true in paper mode, as in the paper, false in the per-sentence variant.
What the checks find is recorded on every sample, refused or not (``degenerate_rate``).

Shots (``shots``): "folio8" is the paper's prompt, 8 FOLIO-train stories, each sentence followed by
its FOL (gold premise FOL, conclusion FOL ours and proved against the gold label; see _linc_shots).
It is about 2.1k prompt tokens with SmolLM2's chat template, more than a 2k context holds with the
problem and K samples on top (llama.cpp's default n_ctx is 8192). "ours2", the default, is two short
problems of our own (about 600 tokens) that fit any backend's context; pass ``shots="folio8"``
(``-o shots=folio8``) for the paper's setting.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, Field, NonNegativeFloat, PositiveFloat, PositiveInt, ValidationError

from agentkit import tracing
from agentkit._text_outputs import TextOutput
from agentkit.agent import Agent
from agentkit.backends.base import Backend, Sampling
from agentkit.errors import ConfigError, InputError, NoValidSample
from agentkit.graph import END, START, Graph
from agentkit.graphs import _linc_checks as checking
from agentkit.graphs._linc_grounding import Grounding, Vocabulary, ground
from agentkit.graphs._linc_sentences import (
    SentenceTranslation,
    request_count,
    sentence_agent,
    sentence_names,
    vocabulary_agent,
)
from agentkit.graphs._linc_shots import FOLIO8
from agentkit.graphs._linc_types import FOLProgram, LogicProblem, SampleVerdict
from agentkit.graphs._linc_vote import vote_sentences
from agentkit.pattern import Pattern, ScoredExample, checked_knobs
from agentkit.reducers import Tally
from agentkit.verifiers.fol import FOLSyntaxError, fol_grammar, parse
from agentkit.vocab import Example, first_error

Label = Literal["True", "False", "Uncertain"]
ShotSet = Literal["ours2", "folio8"]
Translation = Literal["paper", "sentence", "words"]
Vote = Literal["program", "sentence"]
Shots = list[tuple[list[tuple[str, str]], tuple[str, str]]]

INSTRUCTIONS = (
    "Translate each sentence into first-order logic so that a theorem prover can decide whether the "
    "conclusion follows from the premises. After each TEXT line write its FOL formula. Use ∀x (...), "
    "∃x (...), ¬, ∧, ∨, →, ↔ and ⊕ (either-or), predicates like Student(x) or Likes(x, y), lowercase "
    "constants like mia, and the same predicate name every time a sentence repeats a property."
)

#: Our own few-shot problems in FOLIO's notation: (premise, FOL) pairs, then the conclusion's pair.
EXAMPLES: Shots = [
    (
        [
            ("Every student who studies hard passes the exam.", "∀x ((Student(x) ∧ StudiesHard(x)) → PassesExam(x))"),
            ("Mia is a student who studies hard.", "Student(mia) ∧ StudiesHard(mia)"),
            ("Anyone who passes the exam gets a certificate.", "∀x (PassesExam(x) → GetsCertificate(x))"),
        ],
        ("Mia gets a certificate.", "GetsCertificate(mia)"),
    ),
    (
        [
            ("No reptile has fur.", "∀x (Reptile(x) → ¬HasFur(x))"),
            ("Every pet in the house is either a cat or a lizard.", "∀x (PetInHouse(x) → (Cat(x) ⊕ Lizard(x)))"),
            ("All lizards are reptiles.", "∀x (Lizard(x) → Reptile(x))"),
            ("Some cats like fish.", "∃x (Cat(x) ∧ Likes(x, fish))"),
            ("Tom is a pet in the house and has fur.", "PetInHouse(tom) ∧ HasFur(tom)"),
        ],
        ("Tom is not a cat.", "¬Cat(tom)"),
    ),
]


#: The named few-shot sets of the ``shots`` knob (see the module docstring).
SHOT_SETS: dict[str, Shots] = {
    "ours2": EXAMPLES,
    "folio8": [([*shot.premises], shot.conclusion) for shot in FOLIO8],
}


class LincResult(BaseModel):
    """Graph state and output."""

    premises: list[str]
    conclusion: str
    k: int = 0
    programs: list[FOLProgram] = Field(default_factory=list)
    invalid_samples: list[str] = Field(default_factory=list)
    samples: list[SampleVerdict] = Field(default_factory=list)
    votes: Tally = Tally()
    answer: Label | None = None  # None when every sample is an Error
    agreement: float = 0.0
    error_count: int = 0
    inconsistent_count: int = 0
    degenerate_count: int = 0  # samples with a copied conclusion or a repeated premise (refused or not)
    calls: int = 0  # backend requests this problem took
    translation: Translation = "paper"
    vote: Vote = "program"
    sentence_agreement: float | None = None  # vote="sentence": mean share of samples behind each chosen formula
    # per-sentence translation only
    grounding: Grounding = Grounding()
    vocabularies: list[Vocabulary] = Field(default_factory=list)  # one per sample; "words": one per sentence
    vocabulary_violations: list[str] = Field(default_factory=list)


def _leads(problem: LogicProblem) -> list[str]:
    """The fixed text before each formula: the sentence it translates, as in the paper's prompt."""
    return [("\n" if i else "") + f"TEXT: {s}\nFOL: " for i, s in enumerate(problem.sentences)]


def _prompt(problem: LogicProblem) -> str:
    return "PREMISES:\n" + "\n".join(problem.premises) + f"\nCONCLUSION:\n{problem.conclusion}"


def _render(problem: LogicProblem, program: FOLProgram) -> str:
    formulas = [*program.premises_fol, program.conclusion_fol]
    return "".join(lead + f for lead, f in zip(_leads(problem), formulas, strict=True))


def program_grammar(problem: LogicProblem, *, max_depth: int = 4, max_width: int = 4) -> str:
    """Lark grammar of a whole LINC program for ``problem``: each sentence literal, then a formula."""
    formula = fol_grammar(max_depth=max_depth, max_width=max_width)
    if not formula.startswith("start: "):
        raise AssertionError("fol_grammar must begin with its start rule")
    rules = "formula: " + formula[len("start: ") :]
    body = " ".join(json.dumps(lead, ensure_ascii=False) + " formula" for lead in _leads(problem))
    return f"start: {body}\n{rules}"


def read_program(text: str, problem: LogicProblem) -> FOLProgram:
    """Read a sample back into formulas, checking the layout and parsing every formula."""
    formulas: list[str] = []
    pos = 0
    names = [f"premise {i + 1}" for i in range(len(problem.premises))] + ["the conclusion"]
    for name, lead in zip(names, _leads(problem), strict=True):
        if not text.startswith(lead, pos):
            raise InputError(f"expected {lead!r} at position {pos} of the sample")
        pos += len(lead)
        end = text.find("\n", pos)
        end = len(text) if end < 0 else end
        try:
            parse(text[pos:end])
        except FOLSyntaxError as exc:
            raise InputError(f"FOL for {name}: {exc}") from None
        formulas.append(text[pos:end])
        pos = end
    if text[pos:].strip():
        raise InputError(f"unexpected text after the conclusion's formula at position {pos}")
    return FOLProgram(premises_fol=formulas[:-1], conclusion_fol=formulas[-1])


_prove = checking.prove  # kept for callers of the old private name


@checked_knobs
def build(
    backend: Backend | None = None,
    *,
    k: PositiveInt = 10,
    temperature: NonNegativeFloat = 0.8,
    max_tokens: PositiveInt = 1024,
    seed: int | None = None,
    timeout_s: PositiveFloat = 10.0,
    max_depth: PositiveInt = 4,
    max_width: PositiveInt = 4,
    shots: ShotSet = "ours2",
    examples: Shots | None = None,
    translation: Translation = "paper",
    grounded: bool = False,
    checks: bool = False,
    allow_inconsistent: bool | None = None,
    polarity: bool = False,
    restrictors: bool = False,
    negation_scope: bool = False,
    vote: Vote = "program",
) -> Graph[LincResult]:
    """``shots`` names the few-shot set: "ours2" (default) or "folio8", the paper's 8 FOLIO-train
    stories. ``examples`` replaces it with your own problems as ((sentence, FOL) pairs, (conclusion,
    FOL)), [] for none. ``max_depth``/``max_width`` bound each formula (see verifiers.fol).

    ``translation="sentence"`` is our per-sentence variant (vocabulary, then one request per
    sentence; see the module docstring), ``grounded`` restricts its vocabulary to names built from
    the input's words; ``translation="words"`` gives each sentence the names of its own words instead;
    ``polarity`` makes each sentence's formula negated exactly when the sentence says "not";
    ``restrictors`` keeps each sentence's ∀ off a conjunction and its ∃ off an implication;
    ``negation_scope`` (words mode) lets a ¬ stand only before what the sentence's "not" negates;
    ``vote="sentence"`` (words mode) votes each sentence's formula before the prover runs.
    ``checks`` refuses samples with a copied conclusion or a repeated premise; ``allow_inconsistent``
    counts samples whose premises are inconsistent (default: yes in paper mode, as the paper does;
    no in the per-sentence variant)."""
    if grounded and translation == "paper":
        raise ConfigError("linc: grounded=true needs translation='sentence' (the grounded grammar is the "
                          "vocabulary step's); drop grounded or pass -o translation='\"sentence\"'")
    for knob, on in (("polarity", polarity), ("restrictors", restrictors)):
        if on and translation == "paper":
            raise ConfigError(f"linc: {knob}=true needs a per-sentence translation (it is a rule of each sentence's "
                              f"grammar); pass -o translation='\"words\"' or '\"sentence\"', or drop {knob}")
    for knob, on in (("negation_scope=true", negation_scope), ('vote="sentence"', vote == "sentence")):
        if on and translation != "words":
            raise ConfigError(f"linc: {knob} needs translation='words' (only there are a sentence's names its own "
                              "words, the same in every sample); pass -o translation='\"words\"', or drop it")
    allow = translation == "paper" if allow_inconsistent is None else allow_inconsistent
    sampling = Sampling(temperature=temperature, max_tokens=max_tokens, seed=seed)

    def grounding(state: LincResult) -> dict[str, object]:
        found = ground([*state.premises, state.conclusion]) if grounded else Grounding()
        tracing.annotate({"agentkit.linc.grounding": "input" if found.grounded else "open",
                          "agentkit.linc.grounding.fallback": found.fallback})
        return {"grounding": found}

    def name_words(state: LincResult) -> dict[str, object]:
        grounding, vocabularies = sentence_names([*state.premises, state.conclusion])
        tracing.annotate({"agentkit.linc.grounding": "words", "agentkit.linc.grounding.fallback": grounding.fallback})
        return {"grounding": grounding, "vocabularies": vocabularies}

    def sentence_vote(state: LincResult) -> dict[str, object]:
        if not state.programs:
            return {}
        program, agreement = vote_sentences(state.programs)
        tracing.annotate({"agentkit.linc.sentence_agreement": agreement})
        return {"programs": [program], "sentence_agreement": agreement}

    async def symbolic_inference(state: LincResult) -> dict[str, object]:
        proved = await asyncio.to_thread(lambda: [
            checking.judge(p, timeout_s, checks=checks, allow_inconsistent=allow) for p in state.programs])
        failed = [SampleVerdict(label="Error", reason=v) for v in [*state.vocabulary_violations, *state.invalid_samples]]
        checking.annotate(proved)
        return {"samples": proved + failed}

    def majority_vote(state: LincResult) -> dict[str, object]:
        votes = Tally().add(s.label for s in state.samples if s.label != "Error")
        winner = votes.winner
        sentences = len(state.premises) + 1
        calls = {"paper": 1, "words": sentences}.get(translation) or request_count(state.vocabularies, sentences)
        agreement = (0.0 if winner is None else votes.counts[winner] / k if state.sentence_agreement is None
                     else state.sentence_agreement)
        return {"k": k, "votes": votes, "answer": winner, "agreement": agreement,
                "error_count": sum(s.label == "Error" for s in state.samples),
                "inconsistent_count": sum(s.premises_consistent is False for s in state.samples),
                "degenerate_count": sum(bool(set(s.findings) - {"inconsistent_premises"}) for s in state.samples),
                "calls": calls, "translation": translation, "vote": vote}

    graph = Graph("linc", LincResult, inputs=["premises", "conclusion"])
    if translation == "paper":
        graph.add_agent("semantic_parsing", _paper_parser(backend, k, sampling, max_depth, max_width, shots, examples),
                        inputs=["premises", "conclusion"], output="programs", many=True, violations="invalid_samples")
        graph.add_edge(START, "semantic_parsing")
        graph.add_edge("semantic_parsing", "symbolic_inference")
    elif translation == "words":
        graph.add_node("name_words", name_words, reads=["premises", "conclusion"], writes=["grounding", "vocabularies"])
        words = sentence_agent(sampling=sampling.model_copy(update={"max_tokens": min(max_tokens, 256)}),
                               max_depth=max_depth, max_width=max_width, words=True, polarity=polarity,
                               restrictors=restrictors, negation_scope=negation_scope)
        graph.add_agent("sentence_translation", SentenceTranslation(words, k=k, backend=backend, per_sentence=True),  # type: ignore[arg-type]
                        inputs=["premises", "conclusion", "vocabularies"], output="programs", many=True,
                        violations="invalid_samples")
        graph.add_edge(START, "name_words")
        graph.add_edge("name_words", "sentence_translation")
        if vote == "sentence":
            graph.add_node("sentence_vote", sentence_vote, reads=["programs"],
                           writes=["programs", "sentence_agreement"])
            graph.add_edge("sentence_translation", "sentence_vote")
            graph.add_edge("sentence_vote", "symbolic_inference")
        else:
            graph.add_edge("sentence_translation", "symbolic_inference")
    else:
        sentences = sentence_agent(sampling=sampling.model_copy(update={"max_tokens": min(max_tokens, 256)}),
                                   max_depth=max_depth, max_width=max_width, polarity=polarity,
                                   restrictors=restrictors)
        graph.add_node("ground_names", grounding, reads=["premises", "conclusion"], writes=["grounding"])
        graph.add_agent("vocabulary", vocabulary_agent(k=k, sampling=sampling, backend=backend, max_constants=12,
                                                       max_predicates=48),
                        inputs=["premises", "conclusion", "grounding"], output="vocabularies", many=True,
                        violations="vocabulary_violations")
        graph.add_agent("sentence_translation", SentenceTranslation(sentences, k=k, backend=backend),  # type: ignore[arg-type]
                        inputs=["premises", "conclusion", "vocabularies"], output="programs", many=True,
                        violations="invalid_samples")
        graph.add_edge(START, "ground_names")
        graph.add_edge("ground_names", "vocabulary")
        graph.add_edge("vocabulary", "sentence_translation")
        graph.add_edge("sentence_translation", "symbolic_inference")
    sentence_keys = {"paper": [], "words": ["vocabularies"]}.get(translation, ["vocabularies", "vocabulary_violations"])
    graph.add_node("symbolic_inference", symbolic_inference,
                   reads=["programs", "invalid_samples", *sentence_keys], writes=["samples"])
    voted = ["sentence_agreement"] if vote == "sentence" else []
    graph.add_node("majority_vote", majority_vote, reads=["samples", *voted, *sentence_keys],
                   writes=["k", "votes", "answer", "agreement", "error_count", "inconsistent_count",
                           "degenerate_count", "calls", "translation", "vote"])
    graph.add_edge("symbolic_inference", "majority_vote")
    graph.add_edge("majority_vote", END)
    return graph


def _paper_parser(backend: Backend | None, k: int, sampling: Sampling, max_depth: int, max_width: int,
                  shots: str, examples: Shots | None) -> Agent[LogicProblem, FOLProgram]:
    """The paper's semantic parser: the whole program, sentence by sentence, in one request (n=K)."""
    shot_pairs = []
    for pairs, (conclusion, conclusion_fol) in SHOT_SETS[shots] if examples is None else examples:
        problem = LogicProblem(premises=[p for p, _ in pairs], conclusion=conclusion)
        shot_pairs.append((problem, FOLProgram(premises_fol=[f for _, f in pairs], conclusion_fol=conclusion_fol)))
    return Agent(
        "semantic_parsing",
        instructions=INSTRUCTIONS,
        input_type=LogicProblem,
        output_type=FOLProgram,
        text_output=TextOutput(
            kind="grammar",
            constraint=lambda p: program_grammar(p, max_depth=max_depth, max_width=max_width),
            parse=lambda text, p: read_program(text, p),
            render=_render,
            hint="Reply with a TEXT line and a FOL line for every premise, then for the conclusion.",
        ),
        prompt=_prompt,
        examples=shot_pairs,
        backend=backend,
        n=k,
        sampling=sampling,
        min_valid=0,  # a failed sample is an Error vote, not a failed run
    )


# -- evaluation (agentkit eval): FOLIO and ProofWriter rows carry premises and conclusion -----------


def input_from(example: Example) -> LogicProblem:
    premises, conclusion = example.fields.get("premises"), example.fields.get("conclusion")
    if not isinstance(premises, list) or not isinstance(conclusion, str):
        raise InputError(f"example {example.id!r}: LINC needs a 'premises' list and a 'conclusion' string")
    try:
        return LogicProblem(premises=premises, conclusion=conclusion)
    except ValidationError as exc:
        raise InputError(first_error(exc, f"example {example.id!r}: ")) from None


def prediction(output: LincResult) -> str:
    """The voted label; with every sample an Error there is none, and the problem is scored wrong."""
    if output.answer is None:
        raise NoValidSample(f"all {output.k} LINC samples failed (parse or prover); the problem has no answer")
    return output.answer


def extras(output: LincResult) -> dict[str, object]:
    """Errors and the tally per example, the share of samples the prover decided (LINC's measure of
    how often the parse is executable), the shares with inconsistent premises and with a degenerate
    program, each sample's findings and the requests the problem took (``calls``). Under
    ``vote="sentence"`` the shares are of the programs proved (the voted one, and the failed samples)."""
    k, n = output.k, len(output.samples) if output.vote == "sentence" else output.k
    refused: dict[str, int] = {}
    for s in output.samples:
        for reason in s.refused:
            refused[reason] = refused.get(reason, 0) + 1
    return {"error_count": output.error_count, "k": k, "votes": dict(output.votes.counts),
            "prover_success_rate": sum(s.decided for s in output.samples) / n if n else None,
            "inconsistent_count": output.inconsistent_count,
            "inconsistent_rate": output.inconsistent_count / n if n else None,
            "degenerate_count": output.degenerate_count,
            "degenerate_rate": output.degenerate_count / n if n else None,
            "invalid": refused, "sample_findings": [s.findings for s in output.samples], "calls": output.calls,
            "grounding": "words" if output.translation == "words"
            else None if not output.vocabularies and not output.vocabulary_violations
            else ("input" if output.grounding.grounded else "open"),
            **({"sentence_agreement": output.sentence_agreement} if output.vote == "sentence" else {})}


def _mean_of(results: Sequence[ScoredExample], key: str) -> float | None:
    values = [float(v) for v in (r.extra.get(key) for r in results)
              if isinstance(v, int | float) and not isinstance(v, bool)]
    return sum(values) / len(values) if values else None


def summarize(results: Sequence[ScoredExample]) -> dict[str, object]:
    """Means over the examples that report them: the share of the K samples the prover decided, the
    share whose premises were inconsistent (a "True" that proves nothing), the share with a copied
    conclusion or a repeated premise, and the backend requests per problem."""
    return {"prover_success_rate": _mean_of(results, "prover_success_rate"),
            "inconsistent_rate": _mean_of(results, "inconsistent_rate"),
            "degenerate_rate": _mean_of(results, "degenerate_rate"),
            "calls_per_example": _mean_of(results, "calls")}


PATTERN = Pattern("linc", build, LogicProblem, samples_knob="k", input_from=input_from, prediction=prediction,
                  extras=extras, summarize=summarize,
                  description="the model parses premises and conclusion into FOL, z3 decides, K samples vote")
PATTERNS = [PATTERN]
