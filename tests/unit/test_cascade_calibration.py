"""Threshold calibration on hand-made dev results, where the right answer can be worked out by hand."""

from __future__ import annotations

import math

import pytest

from agentkit.errors import ConfigError
from agentkit.graphs._calibration import DevRecord, TierOutcome, calibrate, candidate_thresholds, simulate


def _rec(i: int, small: tuple[float | None, bool], large_correct: bool, *, small_cost: float = 1.0,
         large_cost: float = 3.0, small_ok: bool = True, large_answered: bool = True) -> DevRecord:
    conf, correct = small
    return DevRecord(id=f"e{i}", tiers=[
        TierOutcome(tier="small", passed_checks=small_ok, answered=small_ok, confidence=conf, correct=correct,
                    cost=small_cost),
        TierOutcome(tier="large", passed_checks=large_answered, answered=large_answered, confidence=None,
                    correct=large_correct and large_answered, cost=large_cost),
    ])


# The small tier is right when sure (0.9) and wrong when unsure (0.4); the large tier is always right.
# threshold 0.4:      all stay small        -> 1/4 right, cost 4       -> CPS 4.0
# threshold 0.9:      three escalate        -> 4/4 right, cost 1+3*4=13 -> CPS 3.25
# threshold 0.9+eps:  everything escalates  -> 4/4 right, cost 16       -> CPS 4.0
RECORDS = [_rec(0, (0.9, True), True)] + [_rec(i, (0.4, False), True) for i in (1, 2, 3)]


def test_the_curve_replays_the_cascade_at_each_candidate_threshold() -> None:
    assert candidate_thresholds(RECORDS) == [0.4, 0.9, math.nextafter(0.9, math.inf)]
    low, mid, high = (simulate(RECORDS, t) for t in candidate_thresholds(RECORDS))
    assert (low.accuracy, low.mean_cost, low.cost_per_success, low.answered_by) == (0.25, 1.0, 4.0, {"small": 4})
    assert (mid.accuracy, mid.mean_cost, mid.cost_per_success) == (1.0, 13 / 4, 3.25)
    assert mid.answered_by == {"small": 1, "large": 3}
    assert (high.accuracy, high.mean_cost, high.answered_by) == (1.0, 4.0, {"large": 4})


def test_cost_per_success_objective_picks_the_middle_threshold() -> None:
    result = calibrate(RECORDS)
    assert result.objective == "cost_per_success" and result.threshold == 0.9
    assert result.chosen.cost_per_success == 3.25 and len(result.curve) == 3


@pytest.mark.parametrize(("target", "threshold"), [(0.25, 0.4), (0.5, 0.9), (1.0, 0.9)])
def test_target_accuracy_objective_picks_the_cheapest_threshold_reaching_it(target: float, threshold: float) -> None:
    result = calibrate(RECORDS, target_accuracy=target)
    assert result.threshold == threshold and result.reached_target is True
    assert result.chosen.accuracy >= target


def test_an_unreachable_target_returns_the_most_accurate_and_says_so() -> None:
    records = [_rec(0, (0.9, True), False), _rec(1, (0.4, False), True), _rec(2, (0.4, False), False)]
    # 0.4: 1/3 right (cost 3); 0.9: 2/3 right (cost 1+4+4); above: 1/3 right (cost 12)
    result = calibrate(records, target_accuracy=0.9)
    assert result.reached_target is False and result.threshold == 0.9 and result.chosen.accuracy == 2 / 3


def test_no_confidence_never_passes_a_threshold_and_failed_checks_always_escalate() -> None:
    records = [_rec(0, (None, True), False), _rec(1, (0.95, True), False, small_ok=False)]
    point = simulate(records, 0.0)
    assert point.answered_by == {"large": 2} and point.accuracy == 0.0 and point.mean_cost == 4.0
    assert candidate_thresholds(records) == [0.95, math.nextafter(0.95, math.inf)]


def test_a_last_tier_without_an_answer_falls_back_to_the_earlier_answer() -> None:
    records = [_rec(0, (0.3, True), True, large_answered=False)]
    point = simulate(records, 0.5)
    assert point.answered_by == {"small": 1} and point.accuracy == 1.0 and point.mean_cost == 4.0


def test_bad_calibration_inputs() -> None:
    with pytest.raises(ConfigError, match="at least one dev record"):
        calibrate([])
    with pytest.raises(ConfigError, match=r"target_accuracy must be in \[0, 1\]"):
        calibrate(RECORDS, target_accuracy=80)
    hopeless = [_rec(0, (0.5, False), False)]
    with pytest.raises(ConfigError, match="cost per success is undefined"):
        calibrate(hopeless)
