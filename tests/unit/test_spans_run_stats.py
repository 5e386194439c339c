"""Per-run accounting beside the spans' token rollups: merging RunStats, and nested collect blocks.

A cascade measures each tier in its own ``stats.collect`` block (the tier's cost) while the whole
run must still count every call; ``RunStats.absorb`` / ``collect(forward=True)`` are how.
"""

from __future__ import annotations

import pytest

from agentkit import stats
from agentkit.backends.base import Usage
from agentkit.stats import RunStats


def _stats(*calls: tuple[str, int, int, int, int, int]) -> RunStats:
    """RunStats after ``record``ing each (model, input, output, cached, samples, valid) call."""
    out = RunStats()
    for model, inp, outp, cached, samples, valid in calls:
        out.record(model, Usage(input_tokens=inp, output_tokens=outp, cached_tokens=cached), samples, valid)
    return out


def test_absorb_adds_every_count_model_by_model() -> None:
    mine = _stats(("small", 10, 2, 0, 3, 3))
    other = _stats(("small", 5, 1, 4, 2, 1), ("large", 7, 3, 0, 1, 1))
    mine.absorb(other)

    assert (mine.calls, mine.samples, mine.valid_samples) == (3, 6, 5)
    assert mine.usage == Usage(input_tokens=22, output_tokens=6, cached_tokens=4)
    assert mine.by_model == {
        "small": Usage(input_tokens=15, output_tokens=3, cached_tokens=4),
        "large": Usage(input_tokens=7, output_tokens=3, cached_tokens=0),
    }
    assert mine.schema_validity == pytest.approx(5 / 6)
    # the same as recording every call on one object (each object has its own run id)
    counts = {"run_id"}
    assert mine.model_dump(exclude=counts) == _stats(
        ("small", 10, 2, 0, 3, 3), ("small", 5, 1, 4, 2, 1), ("large", 7, 3, 0, 1, 1)).model_dump(exclude=counts)
    assert other.model_dump(exclude=counts) == _stats(
        ("small", 5, 1, 4, 2, 1), ("large", 7, 3, 0, 1, 1)).model_dump(exclude=counts), "the absorbed side is unchanged"


def test_absorb_adds_requests_per_server_and_nested_blocks_share_the_run_id() -> None:
    from agentkit import stats

    with stats.collect() as run:
        run.record_server("http://a/v1")
        with stats.collect(forward=True) as tier:
            tier.record_server("http://a/v1")
            tier.record_server("http://b/v1")
        assert tier.run_id == run.run_id
    assert run.by_server == {"http://a/v1": 2, "http://b/v1": 1}
    with stats.collect() as other:
        assert other.run_id != run.run_id


def test_absorbing_nothing_changes_nothing() -> None:
    mine = _stats(("m", 1, 1, 0, 1, 1))
    before = mine.model_copy(deep=True)
    mine.absorb(RunStats())
    assert mine == before


def _call(model: str, tokens: int) -> None:
    run = stats.current()
    assert run is not None
    run.record(model, Usage(input_tokens=tokens, output_tokens=1), 1, 1)


def test_nested_collect_keeps_its_counts_unless_forwarded() -> None:
    with stats.collect() as outer:
        _call("a", 10)
        with stats.collect() as alone:
            _call("b", 5)
        with stats.collect(forward=True) as tier:
            _call("c", 7)
            _call("c", 1)
    assert (alone.calls, tier.calls) == (1, 2)
    assert tier.by_model == {"c": Usage(input_tokens=8, output_tokens=2)}
    assert outer.calls == 3, "the forwarded tier counts towards the run, the plain nested block does not"
    assert sorted(outer.by_model) == ["a", "c"] and outer.usage.input_tokens == 18


def test_a_forwarded_block_still_counts_when_it_raises() -> None:
    with stats.collect() as outer:
        with pytest.raises(RuntimeError), stats.collect(forward=True):
            _call("m", 4)
            raise RuntimeError("the tier failed after calling the model")
    assert outer.calls == 1 and outer.usage.input_tokens == 4


def test_forward_without_an_enclosing_block_is_harmless() -> None:
    assert stats.current() is None
    with stats.collect(forward=True) as only:
        _call("m", 2)
    assert only.calls == 1 and stats.current() is None
