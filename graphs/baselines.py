"""Baselines every pattern is reported against: the same model, one call, no pattern.

Two procedures, the ones the papers compare with (LINC's "naive" and "chain-of-thought"):
  direct - answer_directly: the model gives only the final answer.
  cot    - think_then_answer: the model reasons step by step in 'reasoning', then answers.
Both are one request (n=1), greedy by default, so a report can say what a pattern's extra calls buy.
The answer is constrained like the pattern's would be: a number for numeric sets, and one of the
dataset's labels (an enum in the JSON schema) when the label set is known, so a weak model's
misspelt label is not what separates it from the pattern. Our choices: one worked example (ours)
for numeric answers, none otherwise, since an arithmetic example misleads on logic sets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field, NonNegativeFloat, PositiveInt, create_model

from agentkit.agent import Agent
from agentkit.backends.base import Backend, Sampling
from agentkit.errors import ConfigError
from agentkit.graph import END, START, Graph
from agentkit.pattern import Pattern, checked_knobs
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
    if labels is not None and (isinstance(labels, str) or not all(isinstance(x, str) and x for x in labels)):
        raise ConfigError(f"baseline labels must be a list of non-empty strings, got {labels!r}")
    out = reply_type(style, answer_kind, list(labels) if labels else None, max_reasoning_chars)
    shots = []
    if answer_kind == "number" and not labels:
        q, r, a = NUMBER_EXAMPLE
        shots = [(Question(question=q), out(**({"reasoning": r} if style == "cot" else {}), answer=a))]
    node = "answer_directly" if style == "direct" else "think_then_answer"
    agent = Agent(
        node,
        instructions=INSTRUCTIONS[style],
        input_type=Question,
        output_type=out,
        examples=shots,
        backend=backend,
        n=1,
        sampling=Sampling(temperature=temperature, max_tokens=max_tokens, seed=seed),
    )

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


def input_from(example: Example) -> Question:
    """Every dataset: premises/context, question, options, or the candidate to judge (questions.py)."""
    return Question(question=question_text(example))


def prediction(output: BaselineResult) -> str | None:
    return output.answer


DIRECT = Pattern("direct", build_direct, Question, description="baseline: one call, the answer only",
                 input_from=input_from, prediction=prediction)
COT = Pattern("cot", build_cot, Question, description="baseline: one call, chain of thought then the answer",
              input_from=input_from, prediction=prediction)
PATTERNS = [DIRECT, COT]
