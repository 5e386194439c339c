"""The cascade's pattern_metrics: escalation rate and reasons, and per tier what it answered, how well,
and what it cost per success -- on a toy set whose routing is known in advance."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentkit.eval.metrics import ExampleResult
from agentkit.eval.runner import evaluate, select_dataset
from agentkit.graphs import cascade
from agentkit.graphs._cascade_accounting import summarize
from tests.unit.fake_answers import FakeAnswers

# sure: every sample says 12 (agreement 1, the small tier keeps it); unsure: samples 0 and 1 say 1 and 2,
# later ones 12 -- the small tier (k=2) agrees 0.5 < 0.6 and escalates, the wider tier (k=6) votes 12.
TOY = [("sure-right", "sure: what is 3*4?", "12"), ("sure-wrong", "sure: what is 2+3?", "5"),
       ("unsure-right", "unsure: what is 6+6?", "12"), ("unsure-wrong", "unsure: what is 1+2?", "3")]


def _script(question: str, i: int) -> str:
    return "12" if "sure:" in question and "unsure:" not in question else ("1", "2")[i] if i < 2 else "12"


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    path = tmp_path / "toy.jsonl"
    path.write_text("".join(json.dumps({"id": i, "question": q, "label": a}) + "\n" for i, q, a in TOY))
    return path


def test_pattern_metrics_on_a_toy_set(toy: Path, tmp_path: Path) -> None:
    data = select_dataset(toy, answer_kind="number")
    outcome = evaluate("cascade", data, FakeAnswers(_script), tmp_path / "run", knobs={"k": 2, "threshold": 0.6})
    metrics = outcome.summary.pattern_metrics
    small, wide = 0.135 * (100 + 0.1 * 100 + 20) / 1000, 0.135 * (100 + 0.1 * 500 + 60) / 1000  # per attempt
    assert metrics["escalation_rate"] == pytest.approx(0.5)
    assert metrics["escalation_reasons"] == {"low_confidence": 2}
    assert metrics["unrouted"] == 0
    assert list(metrics["tiers"]) == ["small", "small_more_samples"]
    s, w = metrics["tiers"]["small"], metrics["tiers"]["small_more_samples"]
    assert (s["attempts"], s["answered"], s["correct"], s["accuracy"]) == (4, 2, 1, 0.5)
    assert (w["attempts"], w["answered"], w["correct"], w["accuracy"]) == (2, 2, 1, 0.5)
    assert s["cost"] == pytest.approx(4 * small) and s["cost_per_success"] == pytest.approx(4 * small)
    assert w["cost"] == pytest.approx(2 * wide) and w["cost_per_success"] == pytest.approx(2 * wide)
    # the tiers' costs are the run's cost: nothing is lost or counted twice
    assert s["cost"] + w["cost"] == pytest.approx(outcome.summary.cost)
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())["pattern_metrics"]
    assert saved["tiers"]["small"]["answered"] == 2
    assert "escalation rate (pattern)" in (tmp_path / "run" / "report.md").read_text()


def _r(i: int, correct: bool, extra: dict) -> ExampleResult:
    return ExampleResult(id=str(i), label="x", prediction="x" if correct else "y", correct=correct, extra=extra)


def test_reasons_count_every_escalation_and_unrouted_examples_stay_out_of_the_rates() -> None:
    three = [{"tier": "a", "failure": "schema_violation", "escalated": True, "cost": 1.0},
             {"tier": "b", "failure": "verifier_failed", "escalated": True, "cost": 2.0},
             {"tier": "c", "failure": "low_confidence", "escalated": False, "cost": 4.0}]
    results = [
        _r(0, True, {"answered_by": "c", "tiers": three}),
        _r(1, True, {"answered_by": "a", "tiers": [{"tier": "a", "failure": None, "escalated": False, "cost": 1.0}]}),
        _r(2, False, {"samples": 0}),  # failed before any tier ran: no routing facts
        # written before "escalated" was recorded: every attempt but the last escalated
        _r(3, False, {"answered_by": "b", "tiers": [{"tier": "a", "failure": "no_answer", "cost": 1.0},
                                                     {"tier": "b", "failure": None, "cost": 2.0}]}),
    ]
    m = summarize(results)
    assert m["unrouted"] == 1 and m["escalation_rate"] == pytest.approx(2 / 3)
    assert m["escalation_reasons"] == {"no_answer": 1, "schema_violation": 1, "verifier_failed": 1}
    assert m["tiers"]["a"] == {"attempts": 3, "answered": 1, "correct": 1, "accuracy": 1.0, "cost": 3.0,
                               "cost_per_success": 3.0}
    assert m["tiers"]["b"]["accuracy"] == 0.0 and m["tiers"]["b"]["cost_per_success"] is None
    assert m["tiers"]["c"]["cost_per_success"] == 4.0


def test_no_results_give_no_rates() -> None:
    assert summarize([]) == {"escalation_rate": None, "escalation_reasons": {}, "tiers": {}, "unrouted": 0}


def test_the_hook_is_the_cascades() -> None:
    assert cascade.PATTERN.summarize is summarize


def test_each_tier_runs_alone_as_a_pattern(toy: Path, tmp_path: Path) -> None:
    data = select_dataset(toy, answer_kind="number")
    runs = cascade.tier_patterns({"k": 2, "threshold": 0.6, "seed": 1})
    assert [(p.name, k) for p, k in runs] == [("tier-small", {"k": 2, "seed": 1}),
                                              ("tier-small_more_samples", {"k": 2, "seed": 1})]
    backend = FakeAnswers(_script)
    outcome = evaluate(runs[1][0], data, backend, tmp_path / "wide", knobs=runs[1][1])
    assert [r.n for r in backend.requests] == [6] * 4  # the wide tier only: 3k samples, never the small one
    assert outcome.summary.accuracy == pytest.approx(0.5)
    assert [n for n in cascade.tier_names({"large_base_url": "http://x"})] == ["small", "large"]
