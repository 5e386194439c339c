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
import re
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, Field, NonNegativeFloat, PositiveFloat, PositiveInt, ValidationError, field_validator

from agentkit._text_outputs import TextOutput
from agentkit.agent import Agent
from agentkit.backends.base import Backend, Sampling
from agentkit.errors import InputError, NoValidSample
from agentkit.graph import END, START, Graph
from agentkit.graphs._linc_shots import FOLIO8
from agentkit.pattern import Pattern, ScoredExample, checked_knobs
from agentkit.reducers import Tally
from agentkit.verifiers.fol import FOLSyntaxError, check, fol_grammar, parse
from agentkit.vocab import Example, first_error

Label = Literal["True", "False", "Uncertain"]
ShotSet = Literal["ours2", "folio8"]
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


class LogicProblem(BaseModel):
    """Natural-language premises and a conclusion; each is one line (whitespace runs become a space)."""

    premises: list[str] = Field(min_length=1, max_length=64)
    conclusion: str

    @field_validator("premises", mode="after")
    @classmethod
    def _one_line_each(cls, premises: list[str]) -> list[str]:
        return [_one_line(p, f"premises[{i}]") for i, p in enumerate(premises)]

    @field_validator("conclusion", mode="after")
    @classmethod
    def _one_line_conclusion(cls, conclusion: str) -> str:
        return _one_line(conclusion, "conclusion")


class FOLProgram(BaseModel):
    """One semantic parse: a formula per premise, in order, and one for the conclusion."""

    premises_fol: list[str]
    conclusion_fol: str


class SampleVerdict(BaseModel):
    """One sample's FOL (None when the sample failed validation) and what the prover made of it."""

    premises_fol: list[str] | None = None
    conclusion_fol: str | None = None
    label: Literal["True", "False", "Uncertain", "Error"]
    reason: str
    premises_consistent: bool | None = None  # False: the premises entail everything (label "True")


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


def _one_line(text: str, field: str) -> str:
    if re.search(r"[\x00-\x08\x0e-\x1f\x7f]", text):
        raise ValueError(f"{field} contains control characters; pass plain sentences")
    line = " ".join(text.split())
    if not line:
        raise ValueError(f"{field} is empty; every premise and the conclusion need a sentence")
    return line


def _sentences(problem: LogicProblem) -> list[str]:
    return [*problem.premises, problem.conclusion]


def _leads(problem: LogicProblem) -> list[str]:
    """The fixed text before each formula: the sentence it translates, as in the paper's prompt."""
    return [("\n" if i else "") + f"TEXT: {s}\nFOL: " for i, s in enumerate(_sentences(problem))]


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


def _prove(program: FOLProgram, timeout_s: float) -> SampleVerdict:
    fol = {"premises_fol": program.premises_fol, "conclusion_fol": program.conclusion_fol}
    try:
        result = check(program.premises_fol, program.conclusion_fol, timeout_s=timeout_s)
    except FOLSyntaxError as exc:  # validation parsed these already; kept so a slip is an Error, not a crash
        return SampleVerdict(**fol, label="Error", reason=str(exc))
    if not result.conclusive:
        return SampleVerdict(**fol, label="Error", reason=f"the prover could not decide: {result.reason}",
                             premises_consistent=result.premises_consistent)
    return SampleVerdict(**fol, label=result.label, reason=result.reason,
                         premises_consistent=result.premises_consistent)


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
) -> Graph[LincResult]:
    """``shots`` names the few-shot set: "ours2" (default) or "folio8", the paper's 8 FOLIO-train
    stories. ``examples`` replaces it with your own problems as ((sentence, FOL) pairs, (conclusion,
    FOL)), [] for none. ``max_depth``/``max_width`` bound each formula (see verifiers.fol)."""
    shot_pairs = []
    for pairs, (conclusion, conclusion_fol) in SHOT_SETS[shots] if examples is None else examples:
        problem = LogicProblem(premises=[p for p, _ in pairs], conclusion=conclusion)
        shot_pairs.append((problem, FOLProgram(premises_fol=[f for _, f in pairs], conclusion_fol=conclusion_fol)))
    parser = Agent(
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
        sampling=Sampling(temperature=temperature, max_tokens=max_tokens, seed=seed),
        min_valid=0,  # a failed sample is an Error vote, not a failed run
    )

    async def symbolic_inference(state: LincResult) -> dict[str, object]:
        proved = await asyncio.to_thread(lambda: [_prove(p, timeout_s) for p in state.programs])
        failed = [SampleVerdict(label="Error", reason=v) for v in state.invalid_samples]
        return {"samples": proved + failed}

    def majority_vote(state: LincResult) -> dict[str, object]:
        votes = Tally().add(s.label for s in state.samples if s.label != "Error")
        winner = votes.winner
        errors = sum(s.label == "Error" for s in state.samples)
        inconsistent = sum(s.premises_consistent is False for s in state.samples)
        agreement = votes.counts[winner] / k if winner is not None else 0.0
        return {"k": k, "votes": votes, "answer": winner, "agreement": agreement, "error_count": errors,
                "inconsistent_count": inconsistent}

    graph = Graph("linc", LincResult, inputs=["premises", "conclusion"])
    graph.add_agent("semantic_parsing", parser, inputs=["premises", "conclusion"], output="programs",
                    many=True, violations="invalid_samples")
    graph.add_node("symbolic_inference", symbolic_inference, reads=["programs", "invalid_samples"], writes=["samples"])
    graph.add_node("majority_vote", majority_vote, reads=["samples"],
                   writes=["k", "votes", "answer", "agreement", "error_count", "inconsistent_count"])
    graph.add_edge(START, "semantic_parsing")
    graph.add_edge("semantic_parsing", "symbolic_inference")
    graph.add_edge("symbolic_inference", "majority_vote")
    graph.add_edge("majority_vote", END)
    return graph


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
    how often the parse is executable) and the share whose premises were inconsistent."""
    decided = (output.k - output.error_count) / output.k if output.k else None
    inconsistent = output.inconsistent_count / output.k if output.k else None
    return {"error_count": output.error_count, "k": output.k, "votes": dict(output.votes.counts),
            "prover_success_rate": decided, "inconsistent_count": output.inconsistent_count,
            "inconsistent_rate": inconsistent}


def _mean_of(results: Sequence[ScoredExample], key: str) -> float | None:
    values = [float(v) for v in (r.extra.get(key) for r in results)
              if isinstance(v, int | float) and not isinstance(v, bool)]
    return sum(values) / len(values) if values else None


def summarize(results: Sequence[ScoredExample]) -> dict[str, object]:
    """Means over the examples that report them: the share of the K samples the prover decided, and
    the share whose premises were inconsistent (a "True" that proves nothing)."""
    return {"prover_success_rate": _mean_of(results, "prover_success_rate"),
            "inconsistent_rate": _mean_of(results, "inconsistent_rate")}


PATTERN = Pattern("linc", build, LogicProblem, samples_knob="k", input_from=input_from, prediction=prediction,
                  extras=extras, summarize=summarize,
                  description="the model parses premises and conclusion into FOL, z3 decides, K samples vote")
PATTERNS = [PATTERN]
