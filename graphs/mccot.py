"""MC-CoT: sample several chains of thought, vote on their answers (Tan et al., 2023).

The paper trains with it; this is its inference-time core, self-consistency with rationale
selection:
  1. sample_rationales - k (rationale, answer) pairs in ONE request (n=k, temperature ~0.8).
  2. vote              - normalise the answers and count them.
  3. (winner)          - the plurality answer; ties go to the earliest sample (our choice).
  4. select_rationale  - among samples with the winning answer, the one most similar to the
                         others by mean token Jaccard (our reading of "select by agreement").
Output: answer, rationale, vote tally, agreement = winner votes / k (the cascade's confidence).
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, PositiveInt, create_model

from agentkit import tracing
from agentkit.agent import Agent
from agentkit.backends.base import Backend, Sampling
from agentkit.graph import END, START, Graph
from agentkit.pattern import Pattern, checked_knobs
from agentkit.reducers import Tally
from agentkit.verifiers.answer import normalize_answer
from agentkit.vocab import AnswerKind, Example, Question, number_answer, question_text

__all__ = ["PATTERN", "PATTERNS", "AnswerKind", "MCCoTResult", "Question", "RationaleAnswer", "build"]

INSTRUCTIONS = (
    "Solve the problem. First think step by step in 'rationale', then give only the final answer in 'answer'."
)

#: One worked example (ours), shown before the question: small models copy the answer format.
EXAMPLE = (
    "Tom has 3 boxes with 5 apples in each box. He eats 2 apples. How many apples are left?",
    "There are 3 * 5 = 15 apples. After eating 2, 15 - 2 = 13 apples are left.",
    "13",
)


class RationaleAnswer(BaseModel):
    # an instance of a build's bounded subclass is stored in state as this class, as a checkpoint
    # re-reads it, so a live output and its re-read copy are ==
    model_config = ConfigDict(revalidate_instances="subclass-instances")

    rationale: str
    answer: str


class MCCoTResult(BaseModel):
    """Graph state and output: what was asked, what each sample said, and how the vote went."""

    question: str
    k: int = 0
    answer: str | None = None
    rationale: str | None = None
    votes: Tally = Tally()
    agreement: float = 0.0
    samples: list[RationaleAnswer] = Field(default_factory=list)


def sample_type(answer_kind: AnswerKind, max_rationale_chars: int) -> type[RationaleAnswer]:
    """The constrained output type: bounded fields so a small model cannot ramble past max_tokens."""
    answer_field = (number_answer() if answer_kind == "number"
                    else Field(max_length=48, description="the final answer only"))
    return create_model(  # type: ignore[call-overload,no-any-return]
        "Rationale",
        __base__=RationaleAnswer,
        rationale=(str, Field(max_length=max_rationale_chars, description="step-by-step reasoning")),
        answer=(str, answer_field),
    )


def _tokens(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


@checked_knobs
def build(
    backend: Backend | None = None,
    *,
    k: PositiveInt = 5,
    temperature: NonNegativeFloat = 0.8,
    answer_kind: AnswerKind = "text",
    max_tokens: PositiveInt = 256,
    max_rationale_chars: PositiveInt = 400,
    seed: int | None = None,
    examples: list[tuple[str, str, str]] | None = None,
) -> Graph[MCCoTResult]:
    """``examples`` are (question, rationale, answer) shots; default one worked example, [] for none."""
    output_type = sample_type(answer_kind, max_rationale_chars)
    shots = [EXAMPLE] if examples is None else examples
    solver = Agent(
        "sample_rationales",
        instructions=INSTRUCTIONS,
        input_type=Question,
        output_type=output_type,
        examples=[(Question(question=q), output_type(rationale=r, answer=a)) for q, r, a in shots],
        backend=backend,
        n=k,
        sampling=Sampling(temperature=temperature, max_tokens=max_tokens, seed=seed),
    )

    def vote(state: MCCoTResult) -> dict[str, object]:
        keys = (normalize_answer(s.answer, answer_kind) for s in state.samples)
        votes = Tally().add(key for key in keys if key)  # "" means no answer was found: not a vote
        tracing.annotate_vote(votes.counts, samples=k)
        winner = votes.winner
        agreement = votes.counts[winner] / k if winner is not None else 0.0
        return {"k": k, "votes": votes, "answer": winner, "agreement": agreement}

    def select_rationale(state: MCCoTResult) -> dict[str, object]:
        agreeing = [s for s in state.samples if normalize_answer(s.answer, answer_kind) == state.answer]
        if not agreeing:
            return {"rationale": None}
        bags = [_tokens(s.rationale) for s in agreeing]

        def support(i: int) -> float:
            others = [_jaccard(bags[i], b) for j, b in enumerate(bags) if j != i]
            return sum(others) / len(others) if others else 0.0

        best = max(range(len(agreeing)), key=lambda i: (support(i), -i))
        return {"rationale": agreeing[best].rationale}

    graph = Graph("mccot", MCCoTResult, inputs=["question"])
    graph.add_agent("sample_rationales", solver, inputs=["question"], output="samples", many=True)
    graph.add_node("vote", vote, reads=["samples"], writes=["k", "votes", "answer", "agreement"])
    graph.add_node("select_rationale", select_rationale, reads=["samples", "answer"], writes=["rationale"])
    graph.add_edge(START, "sample_rationales")
    graph.add_edge("sample_rationales", "vote")
    graph.add_edge("vote", "select_rationale")
    graph.add_edge("select_rationale", END)
    return graph


# -- evaluation: how a dataset row becomes a question and the result an answer (agentkit eval) ------


def input_from(example: Example) -> Question:
    """Any dataset: the shared question text (premises, question, options or candidate to judge)."""
    return Question(question=question_text(example))


def prediction(output: MCCoTResult) -> str | None:
    """The vote winner (a normalised answer key); None when no sample gave an answer."""
    return output.answer


def extras(output: MCCoTResult) -> dict[str, object]:
    """Agreement and the tally, per example: what a cascade threshold would be calibrated on."""
    return {"agreement": output.agreement, "votes": dict(output.votes.counts)}


PATTERN = Pattern("mccot", build, Question, description="k rationales in one request, majority vote",
                  samples_knob="k", input_from=input_from, prediction=prediction, extras=extras)
PATTERNS = [PATTERN]
