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
                           paper's Counter.most_common). If all K samples are Errors the answer is
                           Uncertain with error_count=K (our choice; the paper scores such
                           problems as wrong).
Output: answer (the label), each sample's FOL and verdict, the vote tally, the error count.
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
from agentkit.errors import InputError
from agentkit.graph import END, START, Graph
from agentkit.pattern import Pattern, ScoredExample, checked_knobs
from agentkit.reducers import Tally
from agentkit.verifiers.fol import FOLSyntaxError, check, fol_grammar, parse
from agentkit.vocab import Example, first_error

Label = Literal["True", "False", "Uncertain"]

INSTRUCTIONS = (
    "Translate each sentence into first-order logic so that a theorem prover can decide whether the "
    "conclusion follows from the premises. After each TEXT line write its FOL formula. Use ∀x (...), "
    "∃x (...), ¬, ∧, ∨, →, ↔ and ⊕ (either-or), predicates like Student(x) or Likes(x, y), lowercase "
    "constants like mia, and the same predicate name every time a sentence repeats a property."
)

#: Our own few-shot problems in FOLIO's notation: (premise, FOL) pairs, then the conclusion's pair.
EXAMPLES: list[tuple[list[tuple[str, str]], tuple[str, str]]] = [
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


class LincResult(BaseModel):
    """Graph state and output."""

    premises: list[str]
    conclusion: str
    k: int = 0
    programs: list[FOLProgram] = Field(default_factory=list)
    invalid_samples: list[str] = Field(default_factory=list)
    samples: list[SampleVerdict] = Field(default_factory=list)
    votes: Tally = Tally()
    answer: Label | None = None
    agreement: float = 0.0
    error_count: int = 0


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
        return SampleVerdict(**fol, label="Error", reason=f"the prover could not decide: {result.reason}")
    return SampleVerdict(**fol, label=result.label, reason=result.reason)


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
    examples: list[tuple[list[tuple[str, str]], tuple[str, str]]] | None = None,
) -> Graph[LincResult]:
    """``examples`` are few-shot problems as ((sentence, FOL) pairs, (conclusion, FOL)); default two
    of ours, [] for none. ``max_depth``/``max_width`` bound each formula (see verifiers.fol)."""
    shots = []
    for pairs, (conclusion, conclusion_fol) in EXAMPLES if examples is None else examples:
        problem = LogicProblem(premises=[p for p, _ in pairs], conclusion=conclusion)
        shots.append((problem, FOLProgram(premises_fol=[f for _, f in pairs], conclusion_fol=conclusion_fol)))
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
        examples=shots,
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
        agreement = votes.counts[winner] / k if winner is not None else 0.0
        return {"k": k, "votes": votes, "answer": winner or "Uncertain", "agreement": agreement, "error_count": errors}

    graph = Graph("linc", LincResult, inputs=["premises", "conclusion"])
    graph.add_agent("semantic_parsing", parser, inputs=["premises", "conclusion"], output="programs",
                    many=True, violations="invalid_samples")
    graph.add_node("symbolic_inference", symbolic_inference, reads=["programs", "invalid_samples"], writes=["samples"])
    graph.add_node("majority_vote", majority_vote, reads=["samples"],
                   writes=["k", "votes", "answer", "agreement", "error_count"])
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


def prediction(output: LincResult) -> str | None:
    return output.answer


def extras(output: LincResult) -> dict[str, object]:
    """Errors and the tally per example, and the share of samples the prover decided (the summary's
    prover success rate, LINC's measure of how often the parse is executable)."""
    decided = (output.k - output.error_count) / output.k if output.k else None
    return {"error_count": output.error_count, "k": output.k, "votes": dict(output.votes.counts),
            "prover_success_rate": decided}


def summarize(results: Sequence[ScoredExample]) -> dict[str, object]:
    """The prover success rate: the mean, over examples, of the share of samples the prover decided."""
    rates = [float(r.extra["prover_success_rate"]) for r in results
             if isinstance(r.extra.get("prover_success_rate"), int | float)
             and not isinstance(r.extra.get("prover_success_rate"), bool)]
    return {"prover_success_rate": sum(rates) / len(rates) if rates else None}


PATTERN = Pattern("linc", build, LogicProblem, samples_knob="k", input_from=input_from, prediction=prediction,
                  extras=extras, summarize=summarize,
                  description="the model parses premises and conclusion into FOL, z3 decides, K samples vote")
PATTERNS = [PATTERN]
