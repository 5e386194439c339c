"""Metrics on hand-made results whose answers were worked out by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentkit.eval import (
    EnergyTable,
    ExampleResult,
    Prices,
    ResultsError,
    Summary,
    Usage,
    read_results,
    summarize,
)
from agentkit.eval.metrics import example_cost, example_energy

SMALL = "SmolLM2-135M-Instruct"
LARGE = "Qwen3-8B"


def _r(i: int, *, label: str = "x", correct: bool | None = True, latency: float = 1.0, **kw: object) -> ExampleResult:
    return ExampleResult(id=f"e{i}", prediction="p", label=label, correct=correct, latency_s=latency, **kw)


def _usage(model: str, tokens_in: int, tokens_out: int) -> Usage:
    return Usage(input_tokens=tokens_in, output_tokens=tokens_out,
                 by_model={model: {"input_tokens": tokens_in, "output_tokens": tokens_out}})


@pytest.fixture
def five() -> list[ExampleResult]:
    return [
        _r(1, latency=1.0, schema_valid=True, calls=1, usage=_usage(SMALL, 1000, 500)),
        _r(2, correct=False, latency=2.0, schema_valid=False, calls=2, usage=_usage(LARGE, 2000, 1000)),
        _r(3, latency=3.0, calls=3, usage=Usage(input_tokens=500, output_tokens=0)),  # unattributed -> default
        _r(4, correct=None, latency=4.0, error="schema broke", error_type="SchemaViolation", calls=1),
        _r(5, correct=True, latency=10.0, error="took too long", error_type="TimeoutError", calls=3),
    ]


def test_summary_on_hand_made_results(five: list[ExampleResult]) -> None:
    s = summarize(five)
    assert s.n == 5 and s.correct == 2
    assert s.accuracy == pytest.approx(0.4)  # e5 says correct but errored: errors count as wrong
    assert s.errors == 2 and s.errors_by_type == {"SchemaViolation": 1, "TimeoutError": 1}
    assert s.schema_validity == pytest.approx(0.5)  # known for e1 (ok) and e2 (bad) only
    # latencies sorted [1, 2, 3, 4, 10]: p50 = 3; p95 at rank 0.95 * 4 = 3.8 -> 4 + 0.8 * (10 - 4) = 8.8
    assert s.latency_p50_s == pytest.approx(3.0)
    assert s.latency_p95_s == pytest.approx(8.8)
    assert (s.input_tokens, s.output_tokens) == (3500, 1500)
    assert s.calls_per_example == pytest.approx(10 / 5)
    # cost: e1 1.5k tokens * 0.135 = 0.2025; e2 3k * 8 = 24; e3 0.5k * default 1.0 = 0.5
    assert s.cost == pytest.approx(0.2025 + 24 + 0.5)
    assert s.cost_per_success == pytest.approx((0.2025 + 24 + 0.5) / 2)
    # energy: 0.05 J/token per B params; e1 1500 * 0.00675, e2 3000 * 0.4, e3 500 * 0.05 (default)
    assert s.energy_j == pytest.approx(1500 * 0.00675 + 3000 * 0.4 + 500 * 0.05)
    assert s.energy_per_example_j == pytest.approx(s.energy_j / 5)
    assert s.pattern_metrics == {}  # the harness adds no pattern's figures of its own
    assert s.balanced_accuracy is None  # one label class only
    lo, hi = s.accuracy_ci95
    assert 0.0 <= lo <= 0.4 <= hi <= 1.0 and lo < hi
    assert "not dollars" in s.cost_unit


def test_summary_json_has_the_cli_contract_fields(five: list[ExampleResult]) -> None:
    data = json.loads(summarize(five).model_dump_json())
    for key in ("n", "accuracy", "errors", "schema_validity", "latency_p50_s", "latency_p95_s",
                "input_tokens", "output_tokens", "cost_per_success", "accuracy_ci95", "errors_by_type",
                "balanced_accuracy", "pattern_metrics", "calls_per_example", "cost", "energy_j",
                "balanced_accuracy_ci95", "confusion"):
        assert key in data


def test_accuracy_ci_is_wilson_and_never_degenerate() -> None:
    results = [_r(i, correct=i < 70) for i in range(100)]
    lo, hi = summarize(results).accuracy_ci95
    # Wilson 70/100: centre (70 + 1.920729)/103.841459 = 0.692601; half 1.959964 · sqrt(21 + 0.960365)/103.841459
    # = 1.959964 · 4.686189/103.841459 = 9.184747/103.841459 = 0.088450 -> 0.604151 .. 0.781051
    assert lo == pytest.approx(0.604151, abs=2e-6) and hi == pytest.approx(0.781051, abs=2e-6)
    lo, hi = summarize([_r(i, correct=False) for i in range(30)]).accuracy_ci95
    assert lo == 0.0 and hi == pytest.approx(0.113513, abs=2e-6)  # z²/(30 + z²); the old bootstrap said 0-0
    lo, hi = summarize([_r(i) for i in range(10)]).accuracy_ci95
    assert hi == 1.0 and lo == pytest.approx(1 - 3.841459 / 13.841459, abs=2e-6)


def test_balanced_accuracy_for_a_judging_set() -> None:
    results = [
        _r(1, label="correct", correct=True), _r(2, label="correct", correct=False),
        _r(3, label="correct", correct=False), _r(4, label="incorrect", correct=True),
    ]
    s = summarize(results)
    assert s.accuracy == pytest.approx(0.5)
    assert s.balanced_accuracy == pytest.approx((1 / 3 + 1) / 2)
    # adjusted Wald, C = 2: (1 + 1)/(3 + 2) = 0.4 and (1 + 1)/(1 + 2) = 0.666667; centre 0.533333;
    # var = (0.4·0.6/5 + 0.666667·0.333333/3)/4 = (0.048 + 0.074074)/4 = 0.030519; half = 1.959964 · 0.174696
    # = 0.342398 -> 0.190935 .. 0.875732
    lo, hi = s.balanced_accuracy_ci95
    assert lo == pytest.approx(0.190935, abs=2e-6) and hi == pytest.approx(0.875732, abs=2e-6)
    assert summarize([_r(1)]).balanced_accuracy_ci95 is None  # no balanced accuracy, no interval


def test_balanced_accuracy_multiclass_only_when_asked() -> None:
    results = [_r(1, label="True"), _r(2, label="False", correct=False), _r(3, label="Uncertain"),
               _r(4, label="Uncertain", correct=False)]
    assert summarize(results).balanced_accuracy is None
    assert summarize(results, classes=["True", "False", "Uncertain"]).balanced_accuracy == pytest.approx(
        (1 + 0 + 0.5) / 3)


def test_linc_prover_success_rate_is_a_mean_over_reporting_examples() -> None:
    from agentkit.graphs import linc

    results = [_r(1, extra={"prover_success_rate": 1.0}), _r(2, extra={"prover_success_rate": 0.5}), _r(3)]
    assert linc.summarize(results)["prover_success_rate"] == pytest.approx(0.75)
    assert linc.summarize([_r(4)])["prover_success_rate"] is None


def test_confusion_matrix_for_labelled_sets() -> None:
    labels = ["True", "False", "Uncertain"]
    results = [
        ExampleResult(id="e1", prediction="True", label="True", correct=True),
        ExampleResult(id="e2", prediction="true", label="True", correct=True),  # graded right: the gold column
        ExampleResult(id="e3", prediction="uncertain", label="True", correct=False),  # named as its label
        ExampleResult(id="e4", prediction="Unknown", label="False", correct=False),  # a synonym of Uncertain
        ExampleResult(id="e5", prediction=None, label="False", correct=False, error="x", error_type="NoValidSample"),
        ExampleResult(id="e6", prediction="False", label="False", correct=None, error="x", error_type="Boom"),
        ExampleResult(id="e7", prediction="maybe so", label="Uncertain", correct=False),
    ]
    s = summarize(results, labels=labels)
    assert s.confusion == {
        "False": {"(none)": 2, "Uncertain": 1},  # no prediction and an errored example are both "(none)"
        "True": {"True": 2, "Uncertain": 1},
        "Uncertain": {"(other)": 1},
    }
    diagonal = sum(row.get(gold, 0) for gold, row in s.confusion.items())
    assert diagonal == s.correct == 2
    assert sum(sum(row.values()) for row in s.confusion.values()) == s.n
    assert summarize(results).confusion is None  # open-ended sets have none
    assert Summary.model_validate_json(s.model_dump_json()) == s


def test_zero_correct_and_empty() -> None:
    s = summarize([_r(1, correct=False, usage=Usage(input_tokens=1000))])
    assert s.accuracy == 0.0 and s.cost == pytest.approx(1.0) and s.cost_per_success is None
    empty = summarize([])
    assert empty.n == 0 and empty.accuracy is None and empty.accuracy_ci95 is None
    assert empty.balanced_accuracy_ci95 is None and empty.n_clusters is None
    assert empty.latency_p50_s is None and empty.calls_per_example is None


def test_price_table_matches_model_names() -> None:
    p = Prices()
    assert p.price_for("HuggingFaceTB/SmolLM2-135M-Instruct") == (0.135, 0.135)
    assert p.price_for("smollm2-360m") == (0.36, 0.36)
    assert p.price_for("SmolLM2-1.7B-Instruct") == (1.7, 1.7)
    assert p.price_for("Qwen3-8B") == (8.0, 8.0)
    assert p.price_for("llama-3.1-8b-instruct") == (8.0, 8.0)
    assert p.price_for("some-1.8b-model") == (1.0, 1.0)  # "8b" inside "1.8b" is not an 8B model
    assert p.price_for("Qwen3-38B") == (1.0, 1.0)
    assert p.price_for("gpt-4o") == (1.0, 1.0)
    custom = Prices(per_model={"8b": (8, 8), "qwen3-8b": (0.2, 0.6)}, default=(5, 5))
    assert custom.price_for("Qwen3-8B") == (0.2, 0.6)  # the longer, more specific key wins
    assert example_cost(Usage(input_tokens=2000, output_tokens=1000,
                              by_model={"qwen3-8b": {"input_tokens": 1000, "output_tokens": 1000}}),
                        custom) == pytest.approx(1 * 0.2 + 1 * 0.6 + 1 * 5)  # 1k unattributed at default
    assert example_energy(Usage(input_tokens=10, output_tokens=10, by_model={SMALL: {"input_tokens": 10,
                          "output_tokens": 10}}), EnergyTable(per_model={"135m": 2.0})) == pytest.approx(40.0)


def test_usage_accepts_backend_usage_objects() -> None:
    class BackendUsage:  # what the runtime's stats hold: attributes, not a dict
        input_tokens = 7
        output_tokens = 3
        cached_tokens = 0

    u = Usage(input_tokens=7, output_tokens=3, by_model={SMALL: BackendUsage()})
    assert u.by_model[SMALL].output_tokens == 3


# --------------------------------------------------------------------------- reading results.jsonl


def _line(i: int, prediction: str = "p", **kw: object) -> str:
    return json.dumps({"id": f"e{i}", "prediction": prediction, "label": "p", "correct": prediction == "p",
                       "usage": {"input_tokens": 1, "output_tokens": 1}, "latency_s": 0.1, "error": None, **kw})


def test_read_results_tolerates_a_partial_trailing_line(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    path.write_text(_line(1) + "\n" + _line(2) + "\n" + _line(3) + "\n" + _line(4)[:25])
    got = read_results(path)
    assert list(got) == ["e1", "e2", "e3"]


def test_read_results_last_result_wins(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    path.write_text("\n".join([_line(1, "wrong"), _line(2), _line(1, "p"), ""]))
    got = read_results(path)
    assert set(got) == {"e1", "e2"}
    assert got["e1"].prediction == "p" and got["e1"].correct is True
    s = summarize(got)
    assert s.n == 2 and s.accuracy == 1.0


def test_read_results_complete_last_line_without_newline_counts(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    path.write_text(_line(1) + "\n" + _line(2, unknown_future_key=1))
    assert list(read_results(path)) == ["e1", "e2"]


def test_read_results_corrupt_middle_line_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    path.write_text(_line(1) + "\n{broken\n" + _line(3) + "\n")
    with pytest.raises(ResultsError, match=r"results.jsonl:2: .*--resume"):
        read_results(path)
    path.write_text(_line(1) + "\n" + json.dumps({"id": "e2"}) + "\n")  # valid JSON, no label
    with pytest.raises(ResultsError, match=r":2: "):
        read_results(path)
    with pytest.raises(ResultsError, match="not found"):
        read_results(tmp_path / "missing.jsonl")


def test_summary_round_trips_through_json(five: list[ExampleResult]) -> None:
    s = summarize(five)
    assert Summary.model_validate_json(s.model_dump_json()) == s
