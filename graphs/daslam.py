"""DaSLaM: a decomposer model coordinates a solver model (Juneja et al., EMNLP 2023).

The paper fine-tunes a small decomposer with policy gradient and treats the solver as a black box
of any size; here both are prompted, and each role has its own backend, because the paper's point is
that the two models differ:
  1. initial_attempt - the solver answers the problem with a chain of thought.
  2. decomposition   - the decomposer reads the problem and the solver's initial attempt and writes
                       at most ``max_subquestions`` sub-questions, each needing fewer steps.
  3. sub_solving     - the solver answers the sub-questions in order, each with the earlier
                       sub-questions and their answers in context (a loop: pose, solve, record).
  4. final_answer    - the solver re-answers the problem with all sub-question/answer pairs.
Output: the final answer (``answer``), the sub-question/answer trace, and the initial answer, so a
report can count how often decomposition changed (and fixed) the answer. Our choices: greedy
decoding by default, the original problem stays in the solver's context while it answers
sub-questions (a small decomposer's sub-questions are rarely self-contained), and one worked example
(ours) shown to every step, since small models copy the format they are shown.
Prompt layout (``layout``): "prefix-first" (default) gives all four steps one system prompt and the
whole worked example as shared turns, then the problem, and the step's own instruction last, so an
engine's prefix cache serves everything up to the problem to every call after the first;
"instructions-first" is the earlier layout (each step its own system prompt and one-step example).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, PositiveInt, create_model

from agentkit import tracing
from agentkit.agent import Agent
from agentkit.backends.base import Backend, Message, Sampling
from agentkit.graph import END, START, Graph
from agentkit.pattern import Pattern, checked_knobs
from agentkit.verifiers.answer import normalize_answer
from agentkit.vocab import AnswerKind, Example, Question, number_answer, question_text

SOLVE = "Solve the problem. First think step by step in 'rationale', then give only the final answer in 'answer'."
DECOMPOSE = (
    "You help a solver that may have made a mistake. Read the problem and the solver's first attempt, then "
    "break the problem into at most {m} simpler sub-questions, in the order they should be answered. Each "
    "sub-question asks for one quantity that takes one or two steps to find; the last one asks for the answer."
)
SOLVE_SUBQUESTION = (
    "Answer only the sub-question, using the problem and the answers to earlier sub-questions. "
    "Think briefly in 'rationale', then give the answer in 'answer'."
)
SOLVE_WITH_PAIRS = (
    "Solve the problem using the answered sub-questions. First think step by step in 'rationale', "
    "then give only the final answer in 'answer'."
)

#: prefix-first: the system prompt all four steps share; each step's instruction comes last
SHARED = (
    "You work on a math problem in steps: a solver makes a first attempt, a decomposer breaks the problem "
    "into simpler sub-questions, the solver answers them in order and then answers the problem again. "
    "The worked example shows every step. Do only the step asked for at the end of the last message."
)
DaSLaMLayout = Literal["prefix-first", "instructions-first"]


class Solution(BaseModel):
    # an instance of a build's bounded subclass is stored in state as this class, as a checkpoint
    # re-reads it, so a live output and its re-read copy are ==
    model_config = ConfigDict(revalidate_instances="subclass-instances")

    rationale: str
    answer: str


class SubStep(BaseModel):
    subquestion: str
    answer: str
    rationale: str = ""


class DaSLaMResult(BaseModel):
    question: str
    answer: str | None = None
    initial_answer: str | None = None
    changed: bool = False
    subquestions: list[str] = Field(default_factory=list)
    steps: list[SubStep] = Field(default_factory=list)
    initial: Solution | None = None
    final: Solution | None = None


class Decomposition(BaseModel):
    subquestions: list[str]


class DaSLaMState(DaSLaMResult):
    decomposition: Decomposition = Decomposition(subquestions=[])
    subquestion: str = ""
    sub_answer: Solution = Solution(rationale="", answer="")


class _Attempted(BaseModel):
    question: str
    initial: Solution


class _SubProblem(BaseModel):
    question: str
    steps: list[SubStep]
    subquestion: str


class _WithPairs(BaseModel):
    question: str
    steps: list[SubStep]


def _pairs(steps: list[SubStep]) -> str:
    return "\n".join(f"{i}. Q: {s.subquestion}\n   A: {s.answer}" for i, s in enumerate(steps, 1)) or "(none yet)"


def _ask(q: Question) -> str:
    return f"Problem: {q.question}"


def _ask_decomposer(x: _Attempted) -> str:
    return f"Problem: {x.question}\nFirst attempt: {x.initial.rationale}\nIts answer: {x.initial.answer}"


def _ask_subquestion(x: _SubProblem) -> str:
    return f"Problem: {x.question}\nAnswered sub-questions:\n{_pairs(x.steps)}\nSub-question: {x.subquestion}"


def _ask_with_pairs(x: _WithPairs) -> str:
    return f"Problem: {x.question}\nAnswered sub-questions:\n{_pairs(x.steps)}\nNow answer the problem."


# The worked example (ours): the first attempt forgets a quantity, and the decomposition recovers it.
_PROBLEM = "A baker makes 4 trays of 12 muffins. She sells 30 muffins and gives 5 to a friend. How many are left?"
_FIRST = Solution(rationale="4 * 12 = 48 muffins. She sells 30, so 48 - 30 = 18 are left.", answer="18")
_SUBQUESTIONS = ["How many muffins does the baker make?", "How many muffins does she sell or give away?",
                 "How many muffins are left?"]
_SUB_STEPS = [SubStep(subquestion=_SUBQUESTIONS[0], answer="48", rationale="4 trays * 12 = 48."),
              SubStep(subquestion=_SUBQUESTIONS[1], answer="35", rationale="30 sold + 5 given = 35.")]
_LEFT = SubStep(subquestion=_SUBQUESTIONS[2], answer="13", rationale="48 - 30 sold - 5 given = 13.")
_FINAL = Solution(rationale="She makes 48 and 35 leave, so 48 - 35 = 13 are left.", answer="13")


def _solution_type(name: str, answer_kind: AnswerKind, max_rationale_chars: int) -> type[Solution]:
    """Bounded fields, so a small model cannot ramble past max_tokens; numbers are constrained as numbers."""
    answer = (
        number_answer()
        if answer_kind == "number"
        else Field(max_length=64, description="the final answer only")
    )
    return create_model(  # type: ignore[call-overload,no-any-return]
        name, __base__=Solution,
        rationale=(str, Field(max_length=max_rationale_chars, description="step-by-step reasoning")),
        answer=(str, answer),
    )


def decomposition_type(max_subquestions: int) -> type[Decomposition]:
    """Bounded twice: how many sub-questions, and how long each may be."""
    return create_model(  # type: ignore[call-overload,no-any-return]
        "Decomposition", __base__=Decomposition,
        subquestions=(list[Annotated[str, Field(min_length=1, max_length=160)]],
                      Field(min_length=1, max_length=max_subquestions, description="the sub-questions, in order")),
    )


@checked_knobs
def build(
    solver_backend: Backend | None = None,
    decomposer_backend: Backend | None = None,
    *,
    max_subquestions: PositiveInt = 3,
    answer_kind: AnswerKind = "text",
    temperature: NonNegativeFloat = 0.0,
    max_tokens: PositiveInt = 256,
    max_rationale_chars: PositiveInt = 360,
    seed: int | None = None,
    layout: DaSLaMLayout = "prefix-first",
) -> Graph[DaSLaMState]:
    """The decomposer falls back to the solver's backend, and both to the one given to ``compile``.

    ``layout`` orders every step's prompt (module docstring): "instructions-first" is the earlier layout.
    """
    sampling = Sampling(temperature=temperature, max_tokens=max_tokens, seed=seed)
    attempt_type = _solution_type("Attempt", answer_kind, max_rationale_chars)
    sub_answer_type = _solution_type("SubAnswer", answer_kind, max_rationale_chars // 2)
    plan_type = decomposition_type(max_subquestions)
    shot_subquestions = _SUBQUESTIONS if max_subquestions >= len(_SUBQUESTIONS) else [
        *_SUBQUESTIONS[: max_subquestions - 1], _SUBQUESTIONS[-1]]

    # (name, instructions, input type, output type, prompt, backend, worked example): the paper's four steps
    # prefix-first shows one conversation, so its sub-steps follow the decomposition it shows
    known = {w.subquestion: w for w in (*_SUB_STEPS, _LEFT)}
    worked = [known[q] for q in shot_subquestions]
    sub_shot, final_steps = ((_SubProblem(question=_PROBLEM, steps=_SUB_STEPS[:1], subquestion=_SUBQUESTIONS[1]),
                              _SUB_STEPS[1]), _SUB_STEPS) if layout == "instructions-first" else (
        (_SubProblem(question=_PROBLEM, steps=worked[:-1], subquestion=worked[-1].subquestion), worked[-1]), worked)
    steps: list[tuple[str, str, type[BaseModel], type[BaseModel], Any, Backend | None, tuple[BaseModel, BaseModel]]] = [
        ("initial_attempt", SOLVE, Question, attempt_type, _ask, solver_backend, (Question(question=_PROBLEM), _FIRST)),
        ("decomposition", DECOMPOSE.format(m=max_subquestions), _Attempted, plan_type, _ask_decomposer,
         decomposer_backend or solver_backend,
         (_Attempted(question=_PROBLEM, initial=_FIRST), plan_type(subquestions=shot_subquestions))),
        ("sub_solving", SOLVE_SUBQUESTION, _SubProblem, sub_answer_type, _ask_subquestion, solver_backend,
         (sub_shot[0], Solution(rationale=sub_shot[1].rationale, answer=sub_shot[1].answer))),
        ("final_answer", SOLVE_WITH_PAIRS, _WithPairs, attempt_type, _ask_with_pairs, solver_backend,
         (_WithPairs(question=_PROBLEM, steps=final_steps), _FINAL)),
    ]

    def agent(step: tuple[Any, ...], shared_turns: tuple[Any, ...] = ()) -> Agent[Any, Any]:
        name, instructions, input_type, output_type, prompt, step_backend, (shot_in, shot_out) = step
        shot = (shot_in, output_type.model_validate(shot_out.model_dump()))
        common = {"input_type": input_type, "output_type": output_type, "prompt": prompt, "backend": step_backend,
                  "sampling": sampling}
        if layout == "instructions-first":
            return Agent(name, instructions=instructions, examples=[shot], **common)
        if not shared_turns:  # a first pass that only renders this step's worked example
            return Agent(name, instructions=SHARED, task=instructions, layout="prefix-first", examples=[shot], **common)
        return Agent(name, instructions=SHARED, task=instructions, layout="prefix-first", shared_turns=shared_turns,
                     **common)

    # prefix-first: every step sees the whole worked example, each exchange as its own step shows it
    shared: tuple[Message, ...] = ()
    if layout == "prefix-first":
        for step in steps:
            alone = agent(step)
            shared += alone.exchange(*alone.examples[0])
    initial_attempt, decomposer, sub_solver, final_answer = (agent(step, shared) for step in steps)

    def pose_subquestion(s: DaSLaMState) -> dict[str, object]:
        return {"subquestion": s.decomposition.subquestions[len(s.steps)]}

    def record_answer(s: DaSLaMState) -> dict[str, object]:
        step = SubStep(subquestion=s.subquestion, answer=s.sub_answer.answer, rationale=s.sub_answer.rationale)
        return {"steps": [*s.steps, step]}

    def next_subquestion_or_final(s: DaSLaMState) -> str:
        return "pose_subquestion" if len(s.steps) < len(s.decomposition.subquestions) else "final_answer"

    def conclude(s: DaSLaMState) -> dict[str, object]:
        assert s.initial is not None and s.final is not None  # both agents ran before this node
        changed = normalize_answer(s.final.answer, answer_kind) != normalize_answer(s.initial.answer, answer_kind)
        tracing.annotate({"agentkit.daslam.subquestions": len(s.decomposition.subquestions),
                          "agentkit.daslam.changed": changed})
        return {"answer": s.final.answer, "initial_answer": s.initial.answer, "changed": changed,
                "subquestions": list(s.decomposition.subquestions)}

    graph = Graph("daslam", DaSLaMState, inputs=["question"], output=DaSLaMResult)
    graph.add_agent("initial_attempt", initial_attempt, inputs=["question"], output="initial")
    graph.add_agent("decomposition", decomposer, inputs=["question", "initial"], output="decomposition")
    graph.add_node("pose_subquestion", pose_subquestion, reads=["decomposition", "steps"], writes=["subquestion"])
    graph.add_agent("sub_solving", sub_solver, inputs=["question", "steps", "subquestion"], output="sub_answer")
    graph.add_node("record_answer", record_answer, reads=["subquestion", "sub_answer", "steps"], writes=["steps"])
    graph.add_agent("final_answer", final_answer, inputs=["question", "steps"], output="final")
    graph.add_node("conclude", conclude, reads=["initial", "final", "decomposition"],
                   writes=["answer", "initial_answer", "changed", "subquestions"])
    graph.add_edge(START, "initial_attempt")
    graph.add_edge("initial_attempt", "decomposition")
    graph.add_route("decomposition", next_subquestion_or_final, ["pose_subquestion", "final_answer"])
    graph.add_edge("pose_subquestion", "sub_solving")
    graph.add_edge("sub_solving", "record_answer")
    graph.add_route("record_answer", next_subquestion_or_final, ["pose_subquestion", "final_answer"])
    graph.add_edge("final_answer", "conclude")
    graph.add_edge("conclude", END)
    return graph


# -- evaluation: how a dataset row becomes a problem and the result an answer (agentkit eval) ------


def input_from(example: Example) -> Question:
    """The shared question text, so DaSLaM and the baselines read the same words (gsm8k, math500, ...)."""
    return Question(question=question_text(example))


def prediction(output: DaSLaMResult) -> str | None:
    return output.answer


def extras(output: DaSLaMResult) -> dict[str, object]:
    """The initial answer beside the final one: how often decomposition changed (and fixed) the answer."""
    return {"initial_answer": output.initial_answer, "changed": output.changed,
            "subquestions": len(output.subquestions)}


PATTERN = Pattern("daslam", build, Question, input_from=input_from, prediction=prediction, extras=extras,
                  description="solver attempts, a decomposer writes sub-questions, the solver answers them")
PATTERNS = [PATTERN]
