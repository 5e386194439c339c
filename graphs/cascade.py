"""Cascade: a small model answers by default, a larger one on demand (SLM agentic-systems survey, 2025).

  1. run_tier   - run the task (any agent or graph, on the tier's own backend) on the cheapest
                  tier not tried yet.
  2. score      - schema-valid? an answer at all? hard verifiers pass? confidence >= threshold?
  3. escalate   - if not, hand the same input to the next tier (any number of tiers), recording
                  why. The last tier's answer stands even when it fails the checks; the output
                  says so (``confident=False``).
  4. calibrate  - pick the threshold on a dev split: the cheapest one reaching a target accuracy,
                  or the one minimising cost per successful task (``calibrate``; the math is in
                  ``_calibration``; our implementation of the survey's recipe).
Approval: with ``approve_escalation=True`` the run pauses before each escalation (a checkpointed
run; ``CompiledGraph.aresume(thread, "approve"|"reject")``), showing the reason and an estimated cost
(``_cascade_approval``); a rejection keeps the lower tier's answer. The output's ``escalation`` says
``none|approved|rejected|automatic``. Unattended runs (eval) set ``"auto-approve"|"auto-reject"``.
Accounting: the eval summary's ``pattern_metrics`` hold the escalation rate, the reasons counted,
and each tier's answered/accuracy/cost per success (``_cascade_accounting``); ``tier_patterns`` runs
each tier alone, as ``agentkit eval cascade --baselines`` does.
Our choices: confidence is the tier output's ``agreement`` (MC-CoT, MAJ) or ``confidence`` unless
the tier supplies a function, and a tier with no confidence fails any threshold; a backend error
escalates too ("backend_error"), so a dead endpoint degrades to the next tier; if the last tier
gives no answer, the latest earlier answer is returned, unconfident. Cost is each tier's token usage
priced by ``agentkit.pricing.Prices`` (relative units unless real prices are given).
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from agentkit.graphs import _calibration, _cascade_accounting, _cascade_approval, mccot
from agentkit.graphs._cascade_approval import Policy
from agentkit.verifiers.answer import answers_match
from agentkit.verifiers.base import Verdict, Verifier
from pydantic import BaseModel, Field, NonNegativeFloat, PositiveInt, create_model

from agentkit import stats, tracing
from agentkit._pattern_spans import CASCADE_ESCALATION_REASON, CASCADE_TIER
from agentkit.agent import Agent
from agentkit.backends import make_backend
from agentkit.backends.base import Backend
from agentkit.errors import BackendError, ConfigError, SchemaViolation
from agentkit.graph import END, START, CompiledGraph, Graph
from agentkit.pattern import Pattern, checked_knobs
from agentkit.pricing import ModelUsage, Prices, Usage, example_cost
from agentkit.reducers import Collect
from agentkit.vocab import AnswerKind, Example, Question, question_text

Reason = Literal["schema_violation", "backend_error", "no_answer", "verifier_failed", "low_confidence"]
Escalation = Literal["none", "approved", "rejected", "automatic"]


@dataclass
class Tier:
    """One rung: a task (Graph, CompiledGraph or Agent) plus, optionally, its backend, hard/soft
    verifiers (``verify(output, {"answer": ..., **inputs})``), and how to read answer and confidence."""

    name: str
    task: Graph[Any] | CompiledGraph[Any] | Agent[Any, Any]
    backend: Backend | None = None
    verifiers: Sequence[Verifier] = ()
    answer: Callable[[Any], Any] | None = None
    confidence: Callable[[Any], float | None] | None = None
    model: str | None = None  # prices the tier before it runs (approval estimate); default: backend's model
    _compiled: CompiledGraph[Any] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.name):
            raise ConfigError(f"tier name {self.name!r} must be an identifier (letters, digits, _)")
        if not isinstance(self.task, Graph | CompiledGraph | Agent):
            raise ConfigError(f"tier {self.name!r}: task must be a Graph, CompiledGraph or Agent, "
                              f"got {type(self.task).__name__}")
        if isinstance(self.task, CompiledGraph) and self.backend is not None:
            raise ConfigError(f"tier {self.name!r}: a compiled graph has its backend already; pass the Graph")

    async def run(self, inputs: Mapping[str, Any]) -> Any:
        if isinstance(self.task, Agent):
            return (await self.task.arun(dict(inputs), backend=self.backend)).output
        if self._compiled is None:
            task = self.task
            self._compiled = task if isinstance(task, CompiledGraph) else task.compile(backend=self.backend)
        return await self._compiled.ainvoke(dict(inputs))


class TierAttempt(BaseModel):
    tier: str
    models: list[str] = Field(default_factory=list)
    answer: str | None = None
    confidence: float | None = None
    verdicts: dict[str, Verdict] = Field(default_factory=dict)
    passed: bool = False
    failure: Reason | None = None  # why it did not pass (set even on the last tier)
    detail: str = ""
    escalated: bool = False  # failed with a tier above; a rejected escalation shows in the result's escalation
    usage: Usage = Field(default_factory=Usage)
    cost: float = 0.0
    latency_s: float = 0.0
    output: dict[str, Any] | None = None


class CascadeResult(BaseModel):
    """Output (the graph state adds the input's fields)."""

    answer: str | None = None
    answered_by: str | None = None
    confident: bool = False
    threshold: float | None = None
    attempts: Annotated[list[TierAttempt], Collect()] = Field(default_factory=list)
    cost: float = 0.0
    escalation: Escalation = "none"


def _answer_of(output: Any) -> str | None:
    value = getattr(output, "answer", None)
    return None if value is None or not str(value).strip() else str(value)


def _confidence_of(output: Any) -> float | None:
    for name in ("agreement", "confidence"):
        value = getattr(output, name, None)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


async def run_tier(tier: Tier, inputs: Mapping[str, Any], *, threshold: float | None,
                   prices: Prices | None = None) -> TierAttempt:
    """Steps 1-2 for one tier: run it, then score it (``threshold=None`` skips the confidence gate)."""
    start = time.perf_counter()
    output: Any = None
    failed: tuple[Reason, str] | None = None
    with stats.collect(forward=True) as used:  # the tier's calls also count for the enclosing run
        try:
            output = await tier.run(inputs)
        except SchemaViolation as exc:
            failed = "schema_violation", str(exc).splitlines()[0]
        except BackendError as exc:
            if isinstance(exc, ConfigError):  # e.g. a replay cassette miss: the caller's mistake, not the tier's
                raise
            failed = "backend_error", f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    usage = Usage(input_tokens=used.usage.input_tokens, output_tokens=used.usage.output_tokens,
                  cached_tokens=used.usage.cached_tokens,
                  by_model={m: ModelUsage.model_validate(u) for m, u in used.by_model.items()})
    attempt = TierAttempt(tier=tier.name, models=sorted(used.by_model), usage=usage,
                          cost=example_cost(usage, prices or Prices()), latency_s=time.perf_counter() - start)
    failure, detail = failed or await _score(tier, output, inputs, threshold, attempt)
    attempt.failure, attempt.detail, attempt.passed = failure, detail, failure is None
    return attempt


async def _score(tier: Tier, output: Any, inputs: Mapping[str, Any], threshold: float | None,
                 attempt: TierAttempt) -> tuple[Reason | None, str]:
    """Step 2: record answer, confidence and verdicts on ``attempt``; say why it fails, if it does."""
    attempt.output = output.model_dump(mode="json") if isinstance(output, BaseModel) else None
    attempt.answer = (tier.answer or _answer_of)(output)
    attempt.confidence = (tier.confidence or _confidence_of)(output)
    context = {"answer": attempt.answer, **inputs}
    rejected = []
    for v in tier.verifiers:
        attempt.verdicts[v.name] = verdict = await asyncio.to_thread(v.verify, output, context)
        if v.hard and verdict.ok is False:
            rejected.append(f"{v.name}: {verdict.reason}")
    if attempt.answer is None:
        return "no_answer", "the tier returned no answer"
    if rejected:
        return "verifier_failed", "; ".join(rejected)
    if threshold is not None and (attempt.confidence is None or attempt.confidence < threshold):
        return "low_confidence", f"confidence {attempt.confidence} < threshold {threshold}"
    return None, ""


def default_tiers(
    backend: Backend | None, *, k: int, answer_kind: AnswerKind, seed: int | None,
    large_backend: Backend | str | None, large_model: str | None, large_base_url: str | None, large_k: int | None,
) -> list[Tier]:
    """Small tier: MC-CoT with k samples on ``backend``. Large tier: MC-CoT on the large backend (an
    OpenAI-compatible endpoint given by ``large_base_url``, or any backend); without one, the same
    small model with 3k samples, so the cascade still runs offline (tier named ``small_more_samples``)."""
    if backend is None:
        raise ConfigError("cascade: pass a backend for the small tier, or tiers=[Tier(...), ...]")
    if isinstance(large_backend, str) or (large_backend is None and large_base_url is not None):
        large_backend = make_backend(large_backend or "openai", model=large_model, base_url=large_base_url)
    small_model = getattr(backend, "model", None)
    small = Tier(name="small", task=mccot.build(backend, k=k, answer_kind=answer_kind, seed=seed), model=small_model)
    if not _has_large(large_backend, large_base_url):
        wide = mccot.build(backend, k=large_k or 3 * k, answer_kind=answer_kind, seed=seed)
        return [small, Tier(name="small_more_samples", task=wide, model=small_model)]
    large = mccot.build(large_backend, k=large_k or k, answer_kind=answer_kind, seed=seed)
    return [small, Tier(name="large", task=large, model=getattr(large_backend, "model", None))]


def _has_large(large_backend: Backend | str | None, large_base_url: str | None) -> bool:
    return large_backend is not None or large_base_url is not None


#: The knobs ``default_tiers`` reads; ``tiers_for`` and the per-tier patterns take exactly these.
_TIER_KNOBS = ("k", "answer_kind", "large_backend", "large_model", "large_base_url", "large_k", "seed")


def _tier_knobs(knobs: Mapping[str, Any]) -> dict[str, Any]:
    defaults = {name: PATTERN.knobs[name].default for name in _TIER_KNOBS}
    return {**defaults, **{name: value for name, value in knobs.items() if name in _TIER_KNOBS}}


def tiers_for(backend: Backend | None, knobs: Mapping[str, Any]) -> list[Tier]:
    """The tiers ``build(backend, **knobs)`` would run: ``knobs["tiers"]``, else ``default_tiers``."""
    if knobs.get("tiers") is not None:
        return list(knobs["tiers"])
    return default_tiers(backend, **_tier_knobs(knobs))


def tier_names(knobs: Mapping[str, Any]) -> list[str]:
    """The tier names ``build(**knobs)`` uses, known without a backend (no model is loaded)."""
    if knobs.get("tiers") is not None:
        return [t.name for t in knobs["tiers"]]
    chosen = _tier_knobs(knobs)
    return ["small", "large" if _has_large(chosen["large_backend"], chosen["large_base_url"]) else "small_more_samples"]


@checked_knobs
def build(
    backend: Backend | None = None,
    *,
    tiers: Sequence[Tier] | None = None,
    threshold: NonNegativeFloat | None = 0.6,
    k: PositiveInt = 3,
    answer_kind: AnswerKind = "text",
    large_backend: Backend | str | None = None,
    large_model: str | None = None,
    large_base_url: str | None = None,
    large_k: PositiveInt | None = None,
    seed: int | None = None,
    prices: Prices | None = None,
    input_type: type[BaseModel] = Question,
    calibration: dict[str, Any] | None = None,
    approve_escalation: Policy = False,
) -> Graph[Any]:
    """``tiers`` (cheapest first) default to ``default_tiers``; every tier receives the input's fields.
    ``calibration`` says how ``threshold`` was chosen (``agentkit eval --calibrate-on`` fills it, so
    run.json keeps it); the graph does not read it. ``approve_escalation``: see the module doc (True
    needs a checkpointer at compile)."""
    tiers = list(tiers) if tiers is not None else default_tiers(
        backend, k=k, answer_kind=answer_kind, seed=seed, large_backend=large_backend,
        large_model=large_model, large_base_url=large_base_url, large_k=large_k)
    names = [t.name for t in tiers]
    if not tiers or len(set(names)) != len(names):
        raise ConfigError(f"cascade needs at least one tier and unique tier names, got {names}")
    fields = list(input_type.model_fields)
    state = create_model("CascadeState", __base__=CascadeResult,  # type: ignore[call-overload]
                         **{f: (info.annotation, info) for f, info in input_type.model_fields.items()})

    def step(tier: Tier, last: bool) -> Callable[[Any], Awaitable[dict[str, Any]]]:
        async def run_and_score(s: Any) -> dict[str, Any]:
            attempt = await run_tier(tier, {f: getattr(s, f) for f in fields}, threshold=threshold, prices=prices)
            attempt.escalated = not attempt.passed and not last
            tracing.annotate({CASCADE_TIER: tier.name, "agentkit.cascade.passed": attempt.passed,
                              "agentkit.cascade.confidence": attempt.confidence,
                              CASCADE_ESCALATION_REASON: attempt.failure if attempt.escalated else None})
            return {"attempts": [attempt]}

        return run_and_score

    def final_answer(s: Any) -> dict[str, Any]:
        chosen = next((a for a in reversed(s.attempts) if a.answer is not None), None)
        escalation = s.escalation if s.escalation != "none" else \
            "automatic" if any(a.escalated for a in s.attempts) else "none"
        return {"answer": chosen.answer if chosen else None, "answered_by": chosen.tier if chosen else None,
                "confident": chosen is not None and chosen.passed, "threshold": threshold,
                "cost": sum(a.cost for a in s.attempts), "escalation": escalation}

    def escalate(s: Any) -> str:
        return "accept" if s.attempts[-1].passed else "escalate"

    graph = Graph("cascade", state, inputs=fields, output=state)
    for i, tier in enumerate(tiers):
        graph.add_node(f"run_{tier.name}", step(tier, last=i == len(tiers) - 1), reads=fields, writes=["attempts"])
    asked = ["escalation"] if approve_escalation is not False and len(tiers) > 1 else []  # approvals write it
    graph.add_node("final_answer", final_answer, reads=["attempts", *asked],
                   writes=["answer", "answered_by", "confident", "threshold", "cost", "escalation"])
    graph.add_edge(START, f"run_{names[0]}")
    for upper, (here, nxt) in zip(tiers[1:], itertools.pairwise(names), strict=True):
        gate = f"run_{nxt}"
        if approve_escalation is not False:  # ask first: approve_<tier> decides, its outcome routes
            gate = f"approve_{nxt}"
            _add_approval(graph, gate, upper, prices or Prices(), approve_escalation)
            graph.add_route(gate, _decided, {"approved": f"run_{nxt}", "rejected": "final_answer"})
        graph.add_route(f"run_{here}", escalate, {"accept": "final_answer", "escalate": gate})
    graph.add_edge(f"run_{names[-1]}", "final_answer")
    graph.add_edge("final_answer", END)
    return graph


def _add_approval(graph: Graph[Any], name: str, upper: Tier, prices: Prices, policy: Policy) -> None:
    model = upper.model or getattr(upper.backend, "model", None)

    def facts(s: Any) -> dict[str, Any]:
        return _cascade_approval.details(s.attempts[-1], upper.name, model, prices)

    graph.add_approval(name, lambda s: _cascade_approval.question(facts(s)), details=facts, reads=["attempts"],
                       output="escalation", auto=_cascade_approval.auto_decision(policy))


def _decided(s: Any) -> str:
    return str(s.escalation)


# -- step 4: calibration on a dev split ------------------------------------------------------------


async def collect_dev_records(
    tiers: Sequence[Tier], dev: Sequence[Example], *, answer_kind: AnswerKind = "text",
    to_input: Callable[[Example], BaseModel] | None = None, prices: Prices | None = None,
    done: Mapping[str, _calibration.DevRecord] | None = None,
    on_record: Callable[[_calibration.DevRecord], None] | None = None,
) -> list[_calibration.DevRecord]:
    """Run every tier once on every dev example (no threshold) and grade its answer. A calibration on
    a small model runs for an hour or more: ``on_record`` sees each record as it is made, so the caller
    can persist it, and ``done`` hands back the ones an interrupted calibration made (reused when they
    cover these tiers)."""
    names = [tier.name for tier in tiers]
    records = []
    for example in dev:
        kept = (done or {}).get(example.id)
        if kept is not None and [t.tier for t in kept.tiers] == names:
            records.append(kept)
            continue
        inputs = (to_input or input_from)(example).model_dump()
        outcomes = []
        for tier in tiers:
            a = await run_tier(tier, inputs, threshold=None, prices=prices)
            outcomes.append(_calibration.TierOutcome(
                tier=tier.name, passed_checks=a.passed, answered=a.answer is not None, confidence=a.confidence,
                correct=a.answer is not None and answers_match(a.answer, example.label, answer_kind), cost=a.cost))
        record = _calibration.DevRecord(id=example.id, tiers=outcomes)
        if on_record is not None:
            on_record(record)
        records.append(record)
    return records


async def calibrate(
    tiers: Sequence[Tier], dev: Sequence[Example], *, target_accuracy: float | None = None,
    answer_kind: AnswerKind = "text", to_input: Callable[[Example], BaseModel] | None = None,
    prices: Prices | None = None, done: Mapping[str, _calibration.DevRecord] | None = None,
    on_record: Callable[[_calibration.DevRecord], None] | None = None,
) -> _calibration.Calibration:
    """Pick ``threshold`` for ``build(tiers=tiers, threshold=...)`` on dev examples, e.g. the dev half
    of ``agentkit.eval.dev_test_split``; see ``_calibration.calibrate`` for the two objectives and
    ``collect_dev_records`` for ``done`` and ``on_record`` (resuming an interrupted calibration)."""
    records = await collect_dev_records(tiers, dev, answer_kind=answer_kind, to_input=to_input, prices=prices,
                                        done=done, on_record=on_record)
    return _calibration.calibrate(records, target_accuracy=target_accuracy)


# -- evaluation (agentkit eval) ------------------------------------------------------------------


def input_from(example: Example) -> Question:
    return Question(question=question_text(example))


def prediction(output: CascadeResult) -> str | None:
    return output.answer


def extras(output: CascadeResult) -> dict[str, object]:
    """Which tier answered, how confident, and each tier's outcome and cost: what the summary's
    per-tier accounting (``_cascade_accounting``) is computed from."""
    kept = output.escalation == "rejected"  # the last attempt wanted to escalate; a person said no
    last = len(output.attempts) - 1
    return {"answered_by": output.answered_by, "confident": output.confident, "escalation": output.escalation,
            "tiers": [{"tier": a.tier, "failure": a.failure, "escalated": a.escalated and not (kept and i == last),
                       "confidence": a.confidence, "cost": a.cost} for i, a in enumerate(output.attempts)]}


PATTERN = Pattern("cascade", build, Question, samples_knob="k", input_from=input_from, prediction=prediction,
                  extras=extras, summarize=_cascade_accounting.summarize,
                  description="a small tier answers; escalate on failure or low confidence")
PATTERNS = [PATTERN]


# -- each tier alone (the cascade's own baselines) ------------------------------------------------


def _tier_extras(output: Any) -> dict[str, object]:
    return {"confidence": _confidence_of(output)}


def tier_pattern(name: str) -> Pattern:
    """Tier ``name`` of the cascade run alone, as pattern ``tier-<name>``: what the cascade's routing
    is compared with. Its knobs are the ones that shape the tiers (``k``, ``large_*``, ``seed``, ...)."""

    @checked_knobs
    def build_tier(
        backend: Backend | None = None,
        *,
        k: PositiveInt = 3,
        answer_kind: AnswerKind = "text",
        large_backend: Backend | str | None = None,
        large_model: str | None = None,
        large_base_url: str | None = None,
        large_k: PositiveInt | None = None,
        seed: int | None = None,
    ) -> Graph[Any]:
        knobs = {"k": k, "answer_kind": answer_kind, "large_backend": large_backend, "large_model": large_model,
                 "large_base_url": large_base_url, "large_k": large_k, "seed": seed}
        tier = next((t for t in tiers_for(backend, knobs) if t.name == name), None)
        if tier is None or not isinstance(tier.task, Graph) or tier.backend is not None:
            raise ConfigError(f"cascade tier {name!r} cannot run alone with these knobs; tiers: "
                              f"{', '.join(tier_names(knobs))}")
        return tier.task

    return Pattern(f"tier-{name}", build_tier, Question, input_from=input_from, prediction=_answer_of,
                   extras=_tier_extras, description=f"the cascade's {name!r} tier alone")


def tier_patterns(knobs: Mapping[str, Any]) -> list[tuple[Pattern, dict[str, Any]]]:
    """Each tier of the cascade ``knobs`` describe, as (pattern, its knobs), for default tiers only:
    a ``tiers=[...]`` list is Python objects the command line cannot rebuild."""
    if knobs.get("tiers") is not None:
        raise ConfigError("cascade: per-tier baselines need the default tiers; run custom tiers alone yourself")
    return [(tier_pattern(name), {k: v for k, v in knobs.items() if k in _TIER_KNOBS}) for name in tier_names(knobs)]
