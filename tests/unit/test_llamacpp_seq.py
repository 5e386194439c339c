"""One batched llama.cpp sample on its own: how it stops and what text it keeps (no model needed)."""

from __future__ import annotations

import numpy as np
import pytest

from agentkit.backends._llamacpp_seq import Sequence, apply_bitmask

EOS = 0


def pieces(token: int) -> bytes:
    return {1: b"ab", 2: b"c", 3: b"d", 4: "é".encode()[:1], 5: "é".encode()[1:]}.get(token, b"x")


def seq(max_new: int = 10, stop: tuple[str, ...] = (), constraint: object = None) -> Sequence:
    return Sequence(0, sampler=None, constraint=constraint, max_new=max_new, stop=stop, prompt=[7, 8, 9])


def push(s: Sequence, *tokens: int) -> Sequence:
    for token in tokens:
        assert s.live, "pushed past the end"
        s.push(token, lambda t: t == EOS, pieces)
    return s


def test_end_of_generation_stops_without_keeping_the_token() -> None:
    s = push(seq(), 1, 2, EOS)
    assert s.result() == ("abc", "stop")
    assert s.tokens == [1, 2]


def test_max_tokens_ends_the_sample_as_length() -> None:
    s = push(seq(max_new=3), 1, 2, 3)
    assert not s.live
    assert s.result() == ("abcd", "length")


def test_a_stop_string_split_across_pieces_is_found_and_cut() -> None:
    s = push(seq(stop=("bc",)), 1, 2)  # "ab" + "c": the stop straddles two pieces
    assert s.result() == ("a", "stop")
    assert len(s.tokens) == 2  # the tokens were generated, and are counted


def test_the_earliest_of_several_stop_strings_wins() -> None:
    s = push(seq(stop=("cd", "b")), 1)
    assert s.result() == ("a", "stop")


def test_a_stop_string_not_yet_complete_does_not_stop() -> None:
    s = push(seq(stop=("cx",)), 1, 2)
    assert s.live
    push(s, 3)
    assert s.live and s.text == b"abcd"


def test_a_constraint_that_admits_nothing_more_ends_the_sample() -> None:
    class Done:
        def __init__(self) -> None:
            self.accepted: list[int] = []

        def mask(self, logits: object, prompt: list[int], tokens: list[int]) -> None: ...

        def accept(self, token: int) -> None:
            self.accepted.append(token)

        def finished(self) -> bool:
            return len(self.accepted) == 2

    s = push(seq(constraint=Done()), 1, 2)
    assert s.result() == ("abc", "stop")


def test_a_split_multibyte_character_is_whole_in_the_text() -> None:
    s = push(seq(max_new=2), 4, 5)
    assert s.result() == ("é", "length")


def test_position_is_that_of_the_last_sampled_token() -> None:
    s = push(seq(), 1)
    assert s.pos == 3  # prompt positions 0..2, first sample at 3
    push(s, 2)
    assert s.pos == 4


def _reference_mask(logits: np.ndarray, bitmask: np.ndarray) -> np.ndarray:
    out = logits.copy()
    for token in range(len(out)):
        word, bit = divmod(token, 32)
        if word >= len(bitmask) or not (int(bitmask[word]) >> bit) & 1:
            out[token] = -np.inf
    return out


@pytest.mark.parametrize("vocab", [64, 70, 100])
def test_bitmask_masks_exactly_the_tokens_whose_bit_is_clear(vocab: int) -> None:
    rng = np.random.default_rng(vocab)
    bitmask = rng.integers(-(2**31), 2**31 - 1, size=3, dtype=np.int64).astype(np.int32)  # 96 tokens
    logits = rng.standard_normal(vocab).astype(np.float32)
    expected = _reference_mask(logits, bitmask)
    apply_bitmask(logits, bitmask)
    np.testing.assert_array_equal(logits, expected)
    assert np.isinf(logits).any() and np.isfinite(logits).any()
