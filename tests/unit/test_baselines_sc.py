"""The sc baseline (self-consistency): K chain-of-thought samples in one request, a majority vote, never
greedy; and K read off a finished run as ceil(mean samples per example)."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path

import pytest

from agentkit.cli._eval_baselines import Planned, sc_budget, settle_sc
from agentkit.errors import ConfigError
from agentkit.eval.metrics import ExampleResult
from agentkit.eval.runner import evaluate, select_dataset
from agentkit.graphs import baselines, get_pattern
from tests.unit.fake_answers import FakeAnswers


def _run_sc(backend, **knobs):
    graph = get_pattern("sc").graph(backend, **knobs).compile()
    return asyncio.run(graph.ainvoke({"question": "Is the sky green?"}))


def test_sc_samples_k_chains_in_one_request_and_votes() -> None:
    backend = FakeAnswers(["False", "True", "False", "True", "False"])
    out = _run_sc(backend, k=5, labels=["True", "False", "Uncertain"], seed=3)
    (request,) = backend.requests
    assert request.n == 5 and request.sampling.temperature == 0.8 and request.sampling.seed == 3
    schema = request.constraint.value
    assert schema["properties"]["answer"]["enum"] == ["True", "False", "Uncertain"]  # constrained like cot
    assert "reasoning" in schema["properties"]
    assert out.answer == "False" and out.votes.counts == {"false": 3, "true": 2}
    assert out.agreement == pytest.approx(3 / 5) and out.k == 5 and len(out.answers) == 5


def test_a_tie_goes_to_the_earliest_answer_and_numbers_vote_by_value() -> None:
    out = _run_sc(FakeAnswers(["7", "12", "12.0", "7"]), k=4, answer_kind="number")
    assert out.votes.counts == {"7": 2, "12": 2} and out.answer == "7"  # "12" and "12.0" are one vote key
    out = _run_sc(FakeAnswers(["1,200", "1200", "5"]), k=3, answer_kind="number")
    assert out.answer == "1,200" and out.votes.counts == {"1200": 2, "5": 1}  # the winner as first spelt


def test_sc_uses_the_patterns_temperature_when_given() -> None:
    backend = FakeAnswers("4")
    _run_sc(backend, k=2, temperature=0.5, answer_kind="number")
    assert backend.requests[0].sampling.temperature == 0.5


def test_sc_never_runs_greedy() -> None:
    backend = FakeAnswers("4")
    with pytest.raises(ConfigError, match="temperature 0 makes every sample the greedy one"):
        get_pattern("sc").graph(backend, k=5, temperature=0)
    with pytest.raises(ConfigError, match="temperature 0"):
        baselines.build_sc(backend, k=3, temperature=0.0)
    assert backend.requests == []


def test_sc_is_a_registered_pattern_with_a_samples_knob() -> None:
    sc = get_pattern("sc")
    assert sc is baselines.SC and sc.samples_knob == "k" and sc.evaluable
    assert {"k", "temperature", "labels", "answer_kind", "budget"} <= set(sc.knobs)


def _result(i: int, samples: object) -> ExampleResult:
    return ExampleResult(id=str(i), label="x", extra={} if samples is None else {"samples": samples})


@pytest.mark.parametrize(("samples", "k"), [([5, 5, 5], 5), ([3, 4, 4], 4), ([6, 1, 1, 1], 3), ([2, 3], 3)])
def test_k_is_the_ceiling_of_the_mean_samples_per_example(samples: list[int], k: int) -> None:
    derived = sc_budget([_result(i, s) for i, s in enumerate(samples)], "daslam")
    assert derived is not None
    got, how = derived
    assert got == k == math.ceil(sum(samples) / len(samples))
    assert how == {"pattern": "daslam", "rule": "ceil(mean samples per example)",
                   "mean_samples": round(sum(samples) / len(samples), 4), "examples": len(samples)}


def test_k_ignores_results_that_did_not_record_samples_and_is_none_without_any() -> None:
    assert sc_budget([_result(0, None), _result(1, 4), _result(2, True)], "p") == (4, {
        "pattern": "p", "rule": "ceil(mean samples per example)", "mean_samples": 4.0, "examples": 1})
    assert sc_budget([_result(0, None)], "p") is None


def test_k_is_derived_from_a_finished_run_of_the_pattern(tmp_path: Path) -> None:
    """mccot at k=3 on 3 examples: every example used 3 samples (one request, n=3), so sc gets K=3."""
    data = select_dataset("gsm8k", limit=3)
    out = tmp_path / "mccot"
    backend = FakeAnswers("18")
    outcome = evaluate("mccot", data, backend, out, knobs={"k": 3, "temperature": 0.6})
    assert outcome.complete and [r.n for r in backend.requests] == [3, 3, 3]
    run = Planned(get_pattern("sc"), tmp_path / "baseline-sc", None, "sc")
    settled, note = settle_sc(run, get_pattern("mccot"), {"k": 3, "temperature": 0.6}, out, data, resume=False)
    assert note == "" and settled is not None
    assert settled.knobs["k"] == 3 and settled.knobs["temperature"] == 0.6  # the pattern's temperature (> 0)
    assert settled.knobs["budget"] == {"pattern": "mccot", "rule": "ceil(mean samples per example)",
                                       "mean_samples": 3.0, "examples": 3}
    assert settled.label.startswith("sc (K=3")
    # only the examples selected now count: a resumed run with --limit 1 reads one result
    one = data.model_copy(update={"examples": data.examples[:1]})
    settled_one, _ = settle_sc(run, get_pattern("mccot"), {}, out, one, resume=False)
    assert settled_one is not None and settled_one.knobs["budget"]["examples"] == 1
    assert settled_one.knobs["temperature"] == 0.8  # mccot's default temperature is 0.8 too

    sc_out = evaluate(settled.pattern, data, FakeAnswers("18"), settled.out_dir, knobs=settled.knobs)
    assert sc_out.summary.accuracy is not None
    manifest = json.loads((settled.out_dir / "run.json").read_text())
    assert manifest["knobs"]["k"] == 3 and manifest["knobs"]["budget"]["rule"] == "ceil(mean samples per example)"


def test_a_greedy_single_call_pattern_gets_no_sc(tmp_path: Path) -> None:
    data = select_dataset("gsm8k", limit=2)
    evaluate("direct", data, FakeAnswers("18"), tmp_path / "d")
    run = Planned(get_pattern("sc"), tmp_path / "baseline-sc", None, "sc")
    settled, note = settle_sc(run, get_pattern("direct"), {}, tmp_path / "d", data, resume=False)
    assert settled is None and "K=1" in note
