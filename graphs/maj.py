"""MAJ: a board of small-model judges decides whether a candidate answer is correct (JudgeBoard, 2025).

  1. independent_judgments - every judge profile (the paper's Deductive, Logical and Robust
                             Reasoners by default; profiles are data) judges the candidate alone.
                             The judges are parallel branches: k judges cost one round trip.
  2. deliberation          - each judge sees the others' verdicts and rationales from the round
                             before, critiques them and may revise. Up to ``max_rounds`` rounds
                             (default 2, our choice); the loop stops early once the panel is unanimous.
  3. aggregation           - majority verdict; a tie goes to the side with the higher summed
                             confidence, and an exact tie to the verdict of the earliest-listed judge
                             (our choice, stated).
Our choices where the paper is silent: a judge draws ``samples`` samples in one request and speaks
with the first that validates (a guard against a malformed sample, not a vote); a judge with no valid
sample abstains that round: it neither votes nor blocks unanimity, and at aggregation it stands by its
last valid verdict from an earlier round; with a ``seed``, each judge samples with a seed of its own,
derived from the seed and its name (judges whose prompts differ only in the last line would draw
near-identical samples from one seed; a name, not a position, so listing order changes nothing).
Output: verdict as ``answer`` ("correct"/"incorrect"), the full per-judge per-round transcript,
deliberation rounds used, agreement.
Prompt layout (``layout``): "prefix-first" (default) gives every judge the same leading text (board
instructions and the output format, the case, and in deliberation the board's transcript with judges
named) and puts only the judge's own profile last, so an engine's prefix cache serves the case to
judges 2..k; "profile-first" is the earlier layout, profile inside the system prompt before the case
(kept for comparison).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveInt,
    ValidationError,
    create_model,
)

from agentkit import tracing
from agentkit.agent import Agent
from agentkit.backends.base import Backend, Sampling
from agentkit.errors import ConfigError, SchemaViolation
from agentkit.graph import END, START, Graph
from agentkit.pattern import Pattern, checked_knobs
from agentkit.reducers import Tally
from agentkit.vocab import Example, first_error

Verdict = Literal["correct", "incorrect"]

BOARD_INSTRUCTIONS = (
    "You are one judge on a board that decides whether a candidate solution to a question reaches the "
    "correct final answer. {profile} Write a short rationale first, then the verdict "
    "('correct' or 'incorrect') and your confidence from 0 to 1."
)
#: prefix-first: the part every judge shares; its profile comes after the case (JUDGE_TASK)
BOARD_SHARED_INSTRUCTIONS = (
    "You are one judge on a board that decides whether a candidate solution to a question reaches the "
    "correct final answer. Each judge has its own reasoning profile, given after the case. Write a short "
    "rationale first, then the verdict ('correct' or 'incorrect') and your confidence from 0 to 1."
)
JUDGE_TASK = "You are the judge {name}. {profile}"
MAJLayout = Literal["prefix-first", "profile-first"]
DELIBERATION_INSTRUCTIONS = (
    "The board's verdicts from the previous round are shown. Critique the other judges' reasoning "
    "where it is wrong, then give your own verdict again: keep it or change it."
)


class JudgeProfile(BaseModel):
    """One judge: a name (also its graph node), its reasoning profile, and optionally its own model."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)
    name: str = Field(min_length=1, max_length=64)
    instructions: str = Field(min_length=1)
    backend: Backend | None = None


DEDUCTIVE = JudgeProfile(
    name="deductive_reasoner",
    instructions=(
        "You are a Deductive Reasoner: start from the facts the question gives and derive the answer step "
        "by step yourself, then check that the candidate's final answer is the one those facts force."
    ),
)
LOGICAL = JudgeProfile(
    name="logical_reasoner",
    instructions=(
        "You are a Logical Reasoner: check that every step of the candidate's solution follows from the "
        "question and the steps before it, that no condition of the question is ignored or misread, and "
        "that the final answer answers what was asked."
    ),
)
ROBUST = JudgeProfile(
    name="robust_reasoner",
    instructions=(
        "You are a Robust Reasoner: be sceptical. Hunt for arithmetic slips, wrong units and misread "
        "quantities, and check the candidate's final answer by a different route, such as estimating it."
    ),
)
DEFAULT_JUDGES: tuple[JudgeProfile, ...] = (DEDUCTIVE, LOGICAL, ROBUST)


class JudgeInput(BaseModel):
    question: str = Field(min_length=1)
    candidate: str = Field(min_length=1)


class Judgment(BaseModel):
    """What a judge writes; the rationale comes first so the verdict follows from it."""

    rationale: str = Field(max_length=240, description="short reasoning about the candidate")
    verdict: Verdict = Field(description="'correct' or 'incorrect'")
    confidence: float = Field(ge=0.0, le=1.0, description="confidence in the verdict, 0 to 1")


class JudgeTurn(BaseModel):
    """One judge's say in one round (round 0 = independent judgments); verdict None = abstained."""

    round: int
    judge: str
    verdict: Verdict | None = None
    rationale: str | None = None
    confidence: float | None = None
    error: str | None = Field(None, description="why the judge abstained: its first failed sample")


class MAJResult(BaseModel):
    question: str
    candidate: str
    answer: Verdict | None = None
    votes: Tally = Tally()
    agreement: float = 0.0
    unanimous: bool = False
    rounds_used: int = 0
    transcript: list[JudgeTurn] = Field(default_factory=list)


class MAJState(MAJResult):
    round: int = 0


class _JudgeView(BaseModel):
    """What a judge reads: the case, and the board's transcript so far (empty in round 0)."""

    question: str
    candidate: str
    round: int
    transcript: list[JudgeTurn]


def _describe(turn: JudgeTurn) -> str:
    if turn.verdict is None:
        return "gave no valid verdict"
    return f"{turn.verdict} (confidence {turn.confidence:.2f}): {turn.rationale}"


def _judge_prompt(name: str, layout: MAJLayout) -> Callable[[_JudgeView], str]:
    """prefix-first names every judge, itself included, so the transcript reads the same for all judges."""

    def prompt(view: _JudgeView) -> str:
        text = f"Question: {view.question}\nCandidate solution: {view.candidate}"
        previous = [t for t in view.transcript if t.round == view.round - 1]
        if view.round == 0 or not previous:
            return text
        me = "You" if layout == "profile-first" else name
        lines = [f"- {me if t.judge == name else t.judge}: {_describe(t)}" for t in previous]
        return f"{text}\nRound {view.round - 1} verdicts:\n" + "\n".join(lines) + f"\n{DELIBERATION_INSTRUCTIONS}"

    return prompt


def _profiles(judges: Sequence[JudgeProfile | Mapping[str, Any]]) -> list[JudgeProfile]:
    profiles = []
    for i, judge in enumerate(judges):
        try:
            profiles.append(judge if isinstance(judge, JudgeProfile) else JudgeProfile.model_validate(judge))
        except ValidationError as exc:
            raise ConfigError(f"{first_error(exc, f'maj: judge {i}: ')}; a judge needs a name and instructions") from None
    if not profiles:
        raise ConfigError("maj: judges is empty; give at least one JudgeProfile(name=..., instructions=...)")
    names = [p.name for p in profiles]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"maj: judge names must be unique (they name graph nodes); repeated: {duplicates}")
    return profiles


def _judge_seed(seed: int | None, name: str) -> int | None:
    return None if seed is None else seed + zlib.crc32(name.encode()) % 65536


def majority_verdict(turns: Sequence[JudgeTurn]) -> tuple[Tally, str | None]:
    """Majority; ties by summed confidence, then by the earliest judge (Tally keeps first-seen order)."""
    votes = Tally().add(t.verdict for t in turns if t.verdict is not None)
    weight = {v: sum(t.confidence or 0.0 for t in turns if t.verdict == v) for v in votes.counts}
    best = max(votes.counts.values(), default=0)
    tied = [v for v, c in votes.counts.items() if c == best]
    winner = max(tied, key=lambda v: (weight[v], -tied.index(v))) if tied else None
    return votes, winner


@checked_knobs
def build(
    backend: Backend | None = None,
    *,
    judges: Sequence[JudgeProfile | Mapping[str, Any]] = DEFAULT_JUDGES,
    max_rounds: NonNegativeInt = 2,
    samples: PositiveInt = 1,
    temperature: NonNegativeFloat = 0.0,
    max_tokens: PositiveInt = 200,
    seed: int | None = None,
    layout: MAJLayout = "prefix-first",
) -> Graph[MAJState]:
    """``backend`` serves every judge without a backend of its own; ``max_rounds`` counts deliberation rounds.

    ``layout`` orders each judge's prompt (module docstring): "profile-first" is the earlier layout.
    """
    profiles = _profiles(judges)
    # one ballot key (and one key for its failed samples) per judge: parallel judges never share a key
    ballot = {p.name: f"ballot_{i}" for i, p in enumerate(profiles)}
    flaws = {p.name: f"flaws_{i}" for i, p in enumerate(profiles)}
    state = create_model(  # type: ignore[call-overload]
        "MAJBoardState", __base__=MAJState,
        **{key: (list[Judgment], []) for key in ballot.values()}, **{key: (list[str], []) for key in flaws.values()},
    )
    graph = Graph("maj", state, inputs=["question", "candidate"], output=MAJResult)

    # 1. independent judgments (round 0) and, on later rounds, deliberation: the same judges, who
    #    now also read the previous round from the transcript.
    for p in profiles:
        sampling = Sampling(temperature=temperature, max_tokens=max_tokens, seed=_judge_seed(seed, p.name))
        if layout == "profile-first":
            ordering: dict[str, Any] = {"instructions": BOARD_INSTRUCTIONS.format(profile=p.instructions)}
        else:
            ordering = {"instructions": BOARD_SHARED_INSTRUCTIONS, "layout": "prefix-first", "shared_format": True,
                        "task": JUDGE_TASK.format(name=p.name, profile=p.instructions)}
        judge = Agent(
            p.name,
            **ordering,
            input_type=_JudgeView,
            output_type=Judgment,
            backend=backend if p.backend is None else p.backend,
            n=samples,
            sampling=sampling,
            prompt=_judge_prompt(p.name, layout),
            min_valid=0,  # a judge whose samples all fail abstains instead of failing the board
        )
        graph.add_agent(p.name, judge, inputs=list(_JudgeView.model_fields), output=ballot[p.name], many=True,
                        violations=flaws[p.name])

    def record_round(s: Any) -> dict[str, object]:
        def turn(name: str, said: list[Judgment], failed: list[str]) -> JudgeTurn:
            if said:  # the first valid sample speaks for the judge
                return JudgeTurn(round=s.round, judge=name, **said[0].model_dump())
            return JudgeTurn(round=s.round, judge=name, error=failed[0] if failed else "no samples returned")

        turns = [turn(p.name, getattr(s, ballot[p.name]), getattr(s, flaws[p.name])) for p in profiles]
        verdicts = {t.verdict for t in turns if t.verdict is not None}
        tracing.annotate({"agentkit.maj.round": s.round, "agentkit.maj.unanimous": len(verdicts) == 1,
                          "agentkit.maj.abstained": sum(t.verdict is None for t in turns)})
        return {"transcript": [*s.transcript, *turns], "unanimous": len(verdicts) == 1, "rounds_used": s.round}

    def deliberate_or_aggregate(s: Any) -> str:
        return "aggregate" if s.unanimous or s.round >= max_rounds else "deliberate"

    def deliberate(s: Any) -> dict[str, object]:
        return {"round": s.round + 1}

    # 3. aggregation over each judge's latest valid verdict
    def aggregate(s: Any) -> dict[str, object]:
        latest = {t.judge: t for t in s.transcript if t.verdict is not None}
        if not latest:
            raise SchemaViolation(
                f"maj: no judge returned a valid verdict in {s.round + 1} round(s); raise max_tokens or samples"
            )
        votes, winner = majority_verdict([latest[p.name] for p in profiles if p.name in latest])
        agreement = votes.counts[winner] / votes.total
        tracing.annotate({tracing.VOTE_COUNTS: votes.counts, tracing.VOTE_WINNER: winner,
                          tracing.VOTE_TOTAL: votes.total, tracing.VOTE_AGREEMENT: agreement})
        return {"answer": winner, "votes": votes, "agreement": agreement}

    names = [p.name for p in profiles]
    graph.add_node("record_round", record_round, reads=[*ballot.values(), *flaws.values(), "round", "transcript"],
                   writes=["transcript", "unanimous", "rounds_used"])
    graph.add_node("deliberate", deliberate, reads=["round"], writes=["round"])
    graph.add_node("aggregate", aggregate, reads=["transcript", "round"], writes=["answer", "votes", "agreement"])
    graph.add_edge(START, names)
    graph.add_edge(names, "record_round")
    graph.add_route("record_round", deliberate_or_aggregate, ["deliberate", "aggregate"])
    graph.add_edge("deliberate", names)
    graph.add_edge("aggregate", END)
    return graph


# -- evaluation: how a dataset row becomes a case and the result a verdict (agentkit eval) ---------


def input_from(example: Example) -> JudgeInput:
    """gsm8k-judge rows carry the question and the candidate solution to judge."""
    missing = [k for k in ("question", "candidate") if not str(example.fields.get(k) or "").strip()]
    if missing:
        raise ConfigError(f"maj judges a candidate solution, but example {example.id!r} has no {' or '.join(missing)} "
                          "text; evaluate it on a judging set such as gsm8k-judge")
    return JudgeInput(question=example.fields["question"], candidate=example.fields["candidate"])


def prediction(output: MAJResult) -> str | None:
    return output.answer


def extras(output: MAJResult) -> dict[str, object]:
    """How the board got there, per example: agreement and deliberation are what JudgeBoard analyses."""
    return {"agreement": output.agreement, "unanimous": output.unanimous, "rounds_used": output.rounds_used,
            "votes": dict(output.votes.counts)}


PATTERN = Pattern("maj", build, JudgeInput, samples_knob="samples", input_from=input_from, prediction=prediction,
                  extras=extras, description="a board of judges with reasoning profiles, deliberation rounds, vote")
PATTERNS = [PATTERN]
