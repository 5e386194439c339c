"""Reducers: merge rules and tie-breaking are deterministic."""

from __future__ import annotations

from agentkit.reducers import Collect, MajorityVote, MaxScore, Scored, Tally


def test_collect_accepts_items_and_lists() -> None:
    c = Collect()
    assert c(c(None, "a"), ["b", "c"]) == ["a", "b", "c"]
    before = ["x"]
    c(before, "y")
    assert before == ["x"], "reducers must not mutate their inputs"


def test_majority_vote_counts_and_breaks_ties_by_first_seen() -> None:
    v = MajorityVote()
    t = v(Tally(), ["b", "a"])
    t = v(t, "a")
    assert t.counts == {"b": 1, "a": 2}
    assert t.winner == "a"
    tie = v(Tally(), ["x", "y", "y", "x"])
    assert tie.winner == "x"
    assert tie.agreement == 0.5
    assert v(tie, Tally(counts={"y": 1})).winner == "y"


def test_empty_tally_has_no_winner() -> None:
    assert Tally().winner is None
    assert Tally().agreement == 0.0


def test_max_score_keeps_best_and_first_on_ties() -> None:
    m = MaxScore()
    best = m(None, [Scored(score=0.2, value="a"), Scored(score=0.9, value="b")])
    best = m(best, Scored(score=0.9, value="c"))
    assert best.value == "b"
    assert m(best, Scored(score=1.0, value="d")).value == "d"
