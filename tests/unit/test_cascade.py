"""Cascade mechanics on replayed SmolLM2 generations (tests/cassettes/cascade_*.jsonl): each
escalation reason, no escalation when confident, the last tier answering unconfidently, cost and
stats accounting, spans, and the large tier behind an OpenAI-compatible endpoint (a local fake)."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel, Field

from agentkit import Agent, Sampling
from agentkit.errors import BackendUnavailable, ConfigError
from agentkit.eval import Example, Prices
from agentkit.graphs import cascade, get_pattern, mccot
from agentkit.graphs.cascade import Tier
from agentkit.verifiers import verifier
from agentkit.verifiers.base import Verdict
from tests.helpers import Flaky, Recording

QUESTION = "A farmer has 3 pens with 4 sheep in each pen. How many sheep are there in total?"


def _mccot(backend, k: int, **kw) -> object:
    return mccot.build(backend, k=k, answer_kind="number", seed=5, max_tokens=kw.pop("max_tokens", 200), **kw)


def _two_tiers(replay, *, small_kw=None, large_kw=None, small_backend=None):
    small = Recording(small_backend or replay("cascade_sheep"))
    large = Recording(replay("cascade_sheep"))
    tiers = [
        Tier(name="small", task=_mccot(small, 3), **(small_kw or {})),
        Tier(name="large", task=_mccot(large, 5), **(large_kw or {})),
    ]
    return tiers, small, large


def _run(tiers, threshold, **kw):
    graph = cascade.build(tiers=tiers, threshold=threshold, **kw).compile()
    return asyncio.run(graph.ainvoke_with_stats({"question": QUESTION}))


def test_confident_small_tier_answers_and_the_large_tier_never_runs(replay) -> None:
    tiers, small, large = _two_tiers(replay)
    out, run = _run(tiers, threshold=0.0)
    assert len(small.requests) == 1 and small.requests[0].n == 3 and large.requests == []
    (attempt,) = out.attempts
    assert attempt.tier == "small" and attempt.passed and attempt.failure is None and not attempt.escalated
    assert out.answered_by == "small" and out.confident is True and out.answer == attempt.answer is not None
    assert attempt.confidence == attempt.output["agreement"]  # MC-CoT's agreement is the confidence
    assert attempt.usage.output_tokens == run.usage.output_tokens > 0  # tier usage reaches the run's stats
    assert run.calls == 1 and attempt.models == ["SmolLM2-135M-Instruct.Q4_1"]  # the model that generated
    u = attempt.usage
    assert u.cached_tokens > 0  # llama.cpp's later samples reuse the prompt's KV cache
    assert out.cost == attempt.cost == pytest.approx(  # SmolLM2-135M's default price; cached input at a tenth
        (u.input_tokens + 0.1 * u.cached_tokens + u.output_tokens) / 1000 * 0.135)


def test_low_confidence_escalates_and_the_last_tier_answers_even_when_unconfident(replay) -> None:
    tiers, _, large = _two_tiers(replay)
    out, run = _run(tiers, threshold=1.01)  # agreement can never reach it
    first, second = out.attempts
    assert first.failure == "low_confidence" and first.escalated and not first.passed
    assert "< threshold 1.01" in first.detail
    assert second.tier == "large" and second.failure == "low_confidence" and not second.escalated
    assert len(large.requests) == 1 and large.requests[0].n == 5
    assert out.answered_by == "large" and out.answer == second.answer and out.confident is False
    assert run.calls == 2 and out.cost == pytest.approx(first.cost + second.cost)


def test_schema_failure_escalates(replay) -> None:
    small = Recording(replay("cascade_sheep_truncated"))
    tiers, _, _ = _two_tiers(replay)
    tiers[0] = Tier(name="small", task=_mccot(small, 2, max_tokens=8))  # every sample cut at max_tokens
    out, _ = _run(tiers, threshold=0.0)
    first, second = out.attempts
    assert first.failure == "schema_violation" and first.escalated and first.answer is None
    assert "2 of 2 samples failed validation" in first.detail
    assert first.usage.output_tokens > 0  # the failed tier's tokens are still paid for
    assert second.passed and out.answered_by == "large" and out.confident


def test_hard_verifier_failure_escalates_but_a_soft_one_does_not(replay) -> None:
    @verifier(hard=True)
    def answer_is_odd(output, context) -> Verdict:
        ok = int(context["answer"]) % 2 == 1
        parity = "odd" if ok else "even"
        return Verdict(ok=ok, label="pass" if ok else "fail", reason=f"{context['answer']} is {parity}")

    @verifier(hard=False)
    def never_happy(output) -> bool:
        return False

    tiers, _, _ = _two_tiers(replay, small_kw={"verifiers": [answer_is_odd, never_happy]})
    out, _ = _run(tiers, threshold=0.0)
    first = out.attempts[0]
    if int(first.answer) % 2 == 1:  # pragma: no cover - depends on the recording; the cassette gives an even answer
        pytest.fail(f"re-recorded cassette gave an odd answer {first.answer}; pick another verifier")
    assert first.failure == "verifier_failed" and "answer_is_odd:" in first.detail and "is even" in first.detail
    assert first.verdicts["never_happy"].ok is False and "never_happy" not in first.detail
    assert out.answered_by == "large"

    tiers, _, _ = _two_tiers(replay, small_kw={"verifiers": [never_happy]})
    out, _ = _run(tiers, threshold=0.0)
    assert out.answered_by == "small" and out.attempts[0].passed


def test_backend_error_escalates(replay) -> None:
    down = Flaky(replay("cascade_sheep"), failures=5, error=BackendUnavailable)
    tiers, _, _ = _two_tiers(replay, small_backend=down)
    out, _ = _run(tiers, threshold=0.0)
    assert out.attempts[0].failure == "backend_error" and "BackendUnavailable" in out.attempts[0].detail
    assert out.answered_by == "large"


def test_no_answer_escalates_and_a_failed_last_tier_falls_back_to_the_latest_answer(replay) -> None:
    tiers, _, _ = _two_tiers(replay, small_kw={"answer": lambda output: None})
    out, _ = _run(tiers, threshold=0.0)
    assert out.attempts[0].failure == "no_answer" and out.answered_by == "large"

    truncating = Recording(replay("cascade_sheep_truncated"))
    tiers, _, _ = _two_tiers(replay)
    tiers[1] = Tier(name="large", task=_mccot(truncating, 2, max_tokens=8))
    out, _ = _run(tiers, threshold=1.01)
    assert [a.failure for a in out.attempts] == ["low_confidence", "schema_violation"]
    assert out.answered_by == "small" and out.answer == out.attempts[0].answer and out.confident is False


class Direct(BaseModel):
    answer: str = Field(max_length=12, pattern=r"^[0-9]+$")


def test_an_agent_is_a_tier_and_no_confidence_fails_any_threshold(replay) -> None:
    direct = Agent("direct", instructions="Answer with the final number only.", input_type=mccot.Question,
                   output_type=Direct, sampling=Sampling(max_tokens=20, seed=3))
    tiers, _, _ = _two_tiers(replay)
    tiers[0] = Tier(name="direct", task=direct, backend=replay("cascade_sheep"))
    out, _ = _run(tiers, threshold=0.5)
    first = out.attempts[0]
    assert first.answer is not None and first.confidence is None
    assert first.failure == "low_confidence" and "confidence None" in first.detail
    out, _ = _run(tiers, threshold=None)  # no confidence gate at all
    assert out.answered_by == "direct" and out.confident


def test_spans_carry_tier_and_escalation_reason(replay, spans) -> None:
    tiers, _, _ = _two_tiers(replay)
    _run(tiers, threshold=1.01)
    nodes = {s.name: s for s in spans.get_finished_spans() if s.name.startswith("node run_")}
    assert nodes["node run_small"].attributes["agentkit.cascade.tier"] == "small"
    assert nodes["node run_small"].attributes["agentkit.cascade.escalation_reason"] == "low_confidence"
    assert "agentkit.cascade.escalation_reason" not in nodes["node run_large"].attributes
    inner = [s for s in spans.get_finished_spans() if s.name == "invoke_workflow mccot"]
    assert {s.parent.span_id for s in inner} == {n.context.span_id for n in nodes.values()}


def test_large_tier_behind_an_openai_compatible_endpoint(replay) -> None:
    from tests.unit.fake_openai_server import FakeOpenAI, Reply

    reply = '{"rationale":"3 pens times 4 sheep is 12.","answer":"12"}'
    with FakeOpenAI(default=Reply(texts=[reply] * 3), model="qwen3-8b") as server:
        graph = cascade.build(Recording(replay("cascade_sheep")), k=3, answer_kind="number", seed=5,
                              threshold=1.01, large_base_url=server.url, large_model="qwen3-8b").compile()
        out = asyncio.run(graph.ainvoke({"question": QUESTION}))
        (post,) = server.posts()
    assert post.body["n"] == 3 and post.body["model"] == "qwen3-8b"
    assert post.body["response_format"]["type"] == "json_schema"  # the large tier is guided too
    _, large = out.attempts
    assert large.tier == "large" and large.models == ["qwen3-8b"] and out.answer == "12"
    assert large.confidence == 1.0 and out.confident is False  # 3/3 agree, still under 1.01
    per_1k = (large.usage.input_tokens + 0.1 * large.usage.cached_tokens + large.usage.output_tokens) / 1000
    assert large.cost == pytest.approx(per_1k * 8.0)  # priced as an 8B model


def test_default_tiers_without_a_large_model_sample_more_from_the_small_one(replay) -> None:
    backend = Recording(replay("cascade_sheep"))
    graph = cascade.build(backend, k=3, answer_kind="number", seed=5, threshold=1.01)
    out = asyncio.run(graph.compile().ainvoke({"question": QUESTION}))
    assert [a.tier for a in out.attempts] == ["small", "small_more_samples"]
    assert [r.n for r in backend.requests] == [3, 9]


def test_build_errors_name_the_problem(replay) -> None:
    with pytest.raises(ConfigError, match="pass a backend for the small tier"):
        cascade.build()
    t = Tier(name="a", task=_mccot(replay("cascade_sheep"), 3))
    with pytest.raises(ConfigError, match="unique tier names"):
        cascade.build(tiers=[t, t])
    with pytest.raises(ConfigError, match="must be an identifier"):
        Tier(name="small tier", task=t.task)
    with pytest.raises(ConfigError, match="task must be a Graph, CompiledGraph or Agent"):
        Tier(name="x", task="gpt-4")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="compiled graph has its backend already"):
        Tier(name="x", task=t.task.compile(), backend=replay("cascade_sheep"))


def test_registered_for_the_cli_and_eval() -> None:
    spec = get_pattern("cascade")
    assert spec is cascade.PATTERN and spec.input_type is mccot.Question and spec.samples_knob == "k"
    example = Example(id="g1", fields={"question": QUESTION}, label="12")
    assert cascade.input_from(example) == mccot.Question(question=QUESTION)


# -- calibration on a dev split ---------------------------------------------------------------------


def test_calibrate_runs_every_tier_once_per_dev_example_and_picks_the_cheapest_reaching_target(replay) -> None:
    from agentkit.eval import load_dataset

    dev = load_dataset("gsm8k", limit=3)
    backend = Recording(replay("cascade_gsm8k_dev"))
    tiers = [Tier(name="small", task=_mccot(backend, 3)), Tier(name="large", task=_mccot(backend, 5))]
    records = asyncio.run(cascade.collect_dev_records(tiers, dev, answer_kind="number"))
    assert [r.id for r in records] == [e.id for e in dev] and len(backend.requests) == 6
    assert all([t.tier for t in r.tiers] == ["small", "large"] and all(t.cost > 0 for t in r.tiers) for r in records)
    result = asyncio.run(cascade.calibrate(tiers, dev, target_accuracy=0.0, answer_kind="number"))
    assert result.reached_target and result.chosen.mean_cost == min(p.mean_cost for p in result.curve)
    escalate_all = result.curve[-1]
    assert escalate_all.answered_by == {"large": 3}  # above every confidence: the large tier answers all


def test_cli_knobs_include_the_cascade_settings() -> None:
    from typer.testing import CliRunner

    from agentkit.cli import app

    r = CliRunner().invoke(app, ["run", "cascade", "--question", "hi", "-o", "treshold=0.5"])
    assert r.exit_code == 2 and "'treshold' is not a knob of cascade" in r.output
    for knob in ("threshold", "large_base_url", "large_model", "large_k"):
        assert knob in r.output


def test_prices_can_be_real_money(replay) -> None:
    tiers, _, _ = _two_tiers(replay)
    prices = Prices(per_model={"135m": (0.5, 2.0)}, unit="USD per 1k tokens")
    out, _ = _run(tiers, threshold=0.0, prices=prices)
    usage = out.attempts[0].usage
    assert out.cost == pytest.approx((usage.input_tokens + 0.1 * usage.cached_tokens) / 1000 * 0.5
                                     + usage.output_tokens / 1000 * 2.0)


def test_a_configuration_error_inside_a_tier_is_raised_not_escalated(replay) -> None:
    from agentkit.errors import CassetteMiss

    tiers, _, _ = _two_tiers(replay)
    tiers[0] = Tier(name="small", task=_mccot(replay("cascade_sheep"), 4))  # never recorded: a cassette miss
    with pytest.raises(CassetteMiss):
        _run(tiers, threshold=0.0)


def test_eval_harness_records_the_routing_of_each_example(replay, tmp_path) -> None:
    import json

    from agentkit.eval.runner import aevaluate, select_dataset

    data = select_dataset("gsm8k", limit=1)
    knobs = {"k": 2, "seed": 5, "threshold": 1.01}  # answer_kind=number comes from the dataset
    outcome = asyncio.run(aevaluate("cascade", data, replay("cascade_eval"), tmp_path / "run", knobs=knobs))
    (line,) = (tmp_path / "run" / "results.jsonl").read_text().splitlines()
    result = json.loads(line)
    assert result["extra"]["answered_by"] == "small_more_samples" and result["extra"]["confident"] is False
    assert [t["tier"] for t in result["extra"]["tiers"]] == ["small", "small_more_samples"]
    assert [t["failure"] for t in result["extra"]["tiers"]] == ["low_confidence", "low_confidence"]
    assert result["calls"] == 2 and result["extra"]["samples"] == 2 + 6  # both tiers' samples are counted
    assert outcome.summary.n == 1 and outcome.summary.cost_per_success in (None, pytest.approx(
        sum(t["cost"] for t in result["extra"]["tiers"])))
