"""Baselines every pattern is reported against: the same model, no pattern.

The procedures the papers compare with (LINC's "naive", "chain-of-thought" and its K-sample vote):
  direct         - answer_directly: one call, the model gives only the final answer.
  cot            - think_then_answer: one call, the model reasons in 'reasoning', then answers.
  sc             - self-consistency (Wang et al., 2023): K chains of thought in ONE request (n=K,
                   temperature 0.8 by default), majority vote. Matched to a pattern's budget, it
                   says whether the pattern beats simply sampling as much.
  majority-label - no model call: the most frequent label of a split the run is not scored on,
                   predicted for every row; what "always answer Uncertain" scores.
direct and cot are greedy by default, so a report can say what a pattern's extra calls buy.
The answer is constrained like the pattern's would be: a number for numeric sets, and one of the
dataset's labels (an enum in the JSON schema) when the label set is known, so a weak model's
misspelt label is not what separates it from the pattern. Our choices: one worked example (ours)
for numeric answers, none otherwise, since an arithmetic example misleads on logic sets; sc votes
on normalised answers (``normalize_answer``) with ties to the earliest sample, as MC-CoT does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from agentkit.verifiers.answer import normalize_answer
from pydantic import BaseModel, Field, NonNegativeFloat, PositiveInt, create_model

from agentkit import tracing
from agentkit.agent import Agent
from agentkit.backends.base import Backend, Sampling
from agentkit.errors import ConfigError
from agentkit.graph import END, START, Graph
from agentkit.pattern import Pattern, checked_knobs
from agentkit.reducers import Tally
from agentkit.vocab import AnswerKind, Example, Question, number_answer, question_text

Style = Literal["direct", "cot"]

INSTRUCTIONS: dict[str, str] = {
    "direct": "Answer the question. Give only the final answer in 'answer'.",
    "cot": "Answer the question. First think step by step in 'reasoning', then give only the final answer in 'answer'.",
}

#: (question, reasoning, answer), shown before numeric questions only.
NUMBER_EXAMPLE = (
    ("A shop sells pens at 4 dollars each. Ann buys 6 pens and pays with a 50 dollar note. How much change "
     "does she get?"),
    "6 pens cost 6 * 4 = 24 dollars. The change is 50 - 24 = 26 dollars.",
    "26",
)


class Reply(BaseModel):
    answer: str


class BaselineResult(BaseModel):
    """Graph state and output: the question and the model's one reply."""

    question: str
    answer: str | None = None
    reasoning: str | None = None
    style: str = ""


def _checked_labels(labels: Sequence[str] | None) -> list[str] | None:
    if labels is not None and (isinstance(labels, str) or not all(isinstance(x, str) and x for x in labels)):
        raise ConfigError(f"baseline labels must be a list of non-empty strings, got {labels!r}")
    return list(labels) if labels else None


def _agent(node: str, style: Style, backend: Backend | None, answer_kind: AnswerKind, labels: Sequence[str] | None,
           *, n: int, max_reasoning_chars: int, sampling: Sampling) -> tuple[type[Reply], Agent[Any, Any]]:
    """The one model call of direct/cot (n=1) and sc (n=K): same prompt, shots and answer constraint."""
    out = reply_type(style, answer_kind, _checked_labels(labels), max_reasoning_chars)
    shots = []
    if answer_kind == "number" and not labels:
        q, r, a = NUMBER_EXAMPLE
        shots = [(Question(question=q), out(**({"reasoning": r} if style == "cot" else {}), answer=a))]
    agent = Agent(node, instructions=INSTRUCTIONS[style], input_type=Question, output_type=out, examples=shots,
                  backend=backend, n=n, sampling=sampling)
    return out, agent


def reply_type(style: Style, answer_kind: AnswerKind, labels: Sequence[str] | None,
               max_reasoning_chars: int) -> type[Reply]:
    """The constrained reply: bounded text, and the answer shaped by what the dataset expects."""
    answer: Any
    if labels:
        answer = (Literal[tuple(labels)], Field(description="one of: " + ", ".join(labels)))
    elif answer_kind == "number":
        answer = (str, number_answer())
    else:
        answer = (str, Field(min_length=1, max_length=64, description="the final answer only"))
    fields: dict[str, Any] = {}
    if style == "cot":
        fields["reasoning"] = (str, Field(max_length=max_reasoning_chars, description="step-by-step reasoning"))
    fields["answer"] = answer  # after the reasoning: the answer is conditioned on it
    name = "CoTReply" if style == "cot" else "DirectReply"
    return create_model(name, __base__=Reply, **fields)  # type: ignore[call-overload,no-any-return]


@checked_knobs
def build(
    backend: Backend | None = None,
    *,
    style: Style = "direct",
    answer_kind: AnswerKind = "text",
    labels: Sequence[str] | None = None,
    temperature: NonNegativeFloat = 0.0,
    max_tokens: PositiveInt = 256,
    max_reasoning_chars: PositiveInt = 400,
    seed: int | None = None,
) -> Graph[BaselineResult]:
    """``labels`` (e.g. ["True", "False", "Uncertain"]) restricts the answer to those strings."""
    if style not in INSTRUCTIONS:
        raise ConfigError(f"baseline style must be 'direct' or 'cot', got {style!r}")
    node = "answer_directly" if style == "direct" else "think_then_answer"
    out, agent = _agent(node, style, backend, answer_kind, labels, n=1, max_reasoning_chars=max_reasoning_chars,
                        sampling=Sampling(temperature=temperature, max_tokens=max_tokens, seed=seed))

    def record(state: Any) -> dict[str, object]:
        reply = state.reply
        return {"answer": reply.answer, "reasoning": getattr(reply, "reasoning", None), "style": style}

    state = create_model(f"{style.capitalize()}State", __base__=BaselineResult, reply=(out | None, None))
    graph = Graph(style, state, inputs=["question"], output=BaselineResult)
    graph.add_agent(node, agent, inputs=["question"], output="reply", many=False)
    graph.add_node("record", record, reads=["reply"], writes=["answer", "reasoning", "style"])
    graph.add_edge(START, node)
    graph.add_edge(node, "record")
    graph.add_edge("record", END)
    return graph


@checked_knobs
def build_direct(
    backend: Backend | None = None,
    *,
    answer_kind: AnswerKind = "text",
    labels: Sequence[str] | None = None,
    temperature: NonNegativeFloat = 0.0,
    max_tokens: PositiveInt = 128,
    seed: int | None = None,
) -> Graph[BaselineResult]:
    """The "direct" pattern: the model answers in one call, no reasoning."""
    return build(backend, style="direct", answer_kind=answer_kind, labels=labels, temperature=temperature,
                 max_tokens=max_tokens, seed=seed)


@checked_knobs
def build_cot(
    backend: Backend | None = None,
    *,
    answer_kind: AnswerKind = "text",
    labels: Sequence[str] | None = None,
    temperature: NonNegativeFloat = 0.0,
    max_tokens: PositiveInt = 256,
    max_reasoning_chars: PositiveInt = 400,
    seed: int | None = None,
) -> Graph[BaselineResult]:
    """The "cot" pattern: plain chain of thought, one call."""
    return build(backend, style="cot", answer_kind=answer_kind, labels=labels, temperature=temperature,
                 max_tokens=max_tokens, max_reasoning_chars=max_reasoning_chars, seed=seed)


# -- sc: self-consistency, K chains of thought and a vote ---------------------------------------------

#: sc's default sampling temperature (self-consistency's and LINC's); any value above 0 will do.
SC_TEMPERATURE = 0.8


class SCResult(BaseModel):
    """sc's output: each sample's answer, the vote, and the winner as the model spelt it."""

    question: str
    k: int = 0
    answer: str | None = None
    votes: Tally = Tally()
    agreement: float = 0.0
    answers: list[str] = Field(default_factory=list)


@checked_knobs
def build_sc(
    backend: Backend | None = None,
    *,
    k: PositiveInt = 5,
    temperature: NonNegativeFloat = SC_TEMPERATURE,
    answer_kind: AnswerKind = "text",
    labels: Sequence[str] | None = None,
    max_tokens: PositiveInt = 256,
    max_reasoning_chars: PositiveInt = 400,
    seed: int | None = None,
    budget: dict[str, Any] | None = None,
) -> Graph[SCResult]:
    """The "sc" pattern: ``k`` CoT samples in one request (n=k), majority vote.

    ``budget`` says how ``k`` was chosen (``agentkit eval --baselines`` matches it to the pattern's
    samples per example); the graph does not read it, run.json keeps it with the other knobs.
    """
    if temperature == 0:
        raise ConfigError("sc: temperature 0 makes every sample the greedy one, so the vote would count one "
                          f"answer k times; use a temperature above 0 (default {SC_TEMPERATURE})")
    out, agent = _agent("sample_chains", "cot", backend, answer_kind, labels, n=k,
                        max_reasoning_chars=max_reasoning_chars,
                        sampling=Sampling(temperature=temperature, max_tokens=max_tokens, seed=seed))

    def vote(state: Any) -> dict[str, object]:
        answers = [s.answer for s in state.samples]
        keys = [normalize_answer(a, answer_kind) for a in answers]
        votes = Tally().add(key for key in keys if key)  # "" means no answer was found: not a vote
        tracing.annotate_vote(votes.counts, samples=k)
        winner = votes.winner
        spelt = next((a for a, key in zip(answers, keys, strict=True) if key == winner), None)
        return {"k": k, "votes": votes, "answer": spelt if winner else None, "answers": answers,
                "agreement": votes.counts[winner] / k if winner else 0.0}

    state = create_model("SCState", __base__=SCResult, samples=(list[out], Field(default_factory=list)))  # type: ignore[call-overload,valid-type]
    graph = Graph("sc", state, inputs=["question"], output=SCResult)
    graph.add_agent("sample_chains", agent, inputs=["question"], output="samples", many=True)
    graph.add_node("vote", vote, reads=["samples"], writes=["k", "votes", "answer", "answers", "agreement"])
    graph.add_edge(START, "sample_chains")
    graph.add_edge("sample_chains", "vote")
    graph.add_edge("vote", END)
    return graph


# -- majority-label: a constant prediction, no model call ------------------------------------------

LabelSource = Literal["train", "dev", "oracle"]


class ConstantResult(BaseModel):
    question: str
    answer: str | None = None


def majority_label(labels: Iterable[str]) -> str:
    """The most frequent label; a tie goes to the label first in sorted order, so reruns agree."""
    counts = Counter(labels)
    if not counts:
        raise ConfigError("majority-label: no labelled rows to count")
    return min(counts, key=lambda label: (-counts[label], label))


@checked_knobs
def build_majority_label(
    backend: Backend | None = None,
    *,
    label: str | None = None,
    source: LabelSource | None = None,
    labels: Sequence[str] | None = None,
) -> Graph[ConstantResult]:
    """The "majority-label" pattern: ``label`` for every row (``backend`` is never called).

    ``source`` records where the label was counted: a ``train`` or ``dev`` split other than the one
    scored, or ``oracle`` when it was counted on the scored rows themselves (then the baseline has
    seen the test labels, and the report says so). ``agentkit eval`` fills both from the dataset.
    """
    if not label:
        raise ConfigError("majority-label: knob 'label' is not set; `agentkit eval` sets it from the dataset, "
                          "or pass -o label=LABEL")
    if labels and label not in labels:
        raise ConfigError(f"majority-label: label {label!r} is not one of the dataset's labels: {', '.join(labels)}")

    def predict_majority(state: ConstantResult) -> dict[str, object]:
        return {"answer": label}

    graph = Graph("majority-label", ConstantResult, inputs=["question"])
    graph.add_node("predict_majority", predict_majority, reads=["question"], writes=["answer"])
    graph.add_edge(START, "predict_majority")
    graph.add_edge("predict_majority", END)
    return graph


# -- evaluation ------------------------------------------------------------------------------------


def input_from(example: Example) -> Question:
    """Every dataset: premises/context, question, options, or the candidate to judge (questions.py)."""
    return Question(question=question_text(example))


def prediction(output: BaselineResult | SCResult | ConstantResult) -> str | None:
    return output.answer


def sc_extras(output: SCResult) -> dict[str, object]:
    return {"agreement": output.agreement, "votes": dict(output.votes.counts)}


DIRECT = Pattern("direct", build_direct, Question, description="baseline: one call, the answer only",
                 input_from=input_from, prediction=prediction)
COT = Pattern("cot", build_cot, Question, description="baseline: one call, chain of thought then the answer",
              input_from=input_from, prediction=prediction)
SC = Pattern("sc", build_sc, Question, samples_knob="k", input_from=input_from, prediction=prediction,
             extras=sc_extras, description="baseline: k chains of thought in one request, majority vote")
MAJORITY_LABEL = Pattern("majority-label", build_majority_label, Question, input_from=input_from,
                         prediction=prediction, description="baseline: the most frequent label, no model call")
PATTERNS = [DIRECT, COT, SC, MAJORITY_LABEL]
