"""The llama.cpp batch scheduler's mechanics, on a fake context (the real model: tests/integration/
test_llamacpp_batch_real.py).

The fake "model" continues a sequence whose last token is t with t + 1 (mod 10), and sample i's
sampler adds its seed (seed + i), so samples of one request follow different, known paths: with
the prompt ending in 5, seed 0 gives 6 7 8 9 <eos>, seed 1 gives 7 9 1 3 5 ... (never <eos>),
seed 2 gives 8 1 4 7 <eos>, seed 3 gives 9 3 7 1 ..., seed 4 gives <eos> at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from agentkit.backends._llamacpp_batch import PREFILL_BLOCK, pad_cells
from agentkit.backends._llamacpp_sched import BatchScheduler, Job
from agentkit.backends.base import Sampling
from agentkit.errors import BackendError, UnsupportedConstraint

V, EOS = 10, 0
PROMPT = [1, 2, 3, 4, 5]


class FakeContext:
    def __init__(self, n_cells: int, n_seqs: int, *, gate: threading.Event | None = None,
                 step_delay: float = 0.0, fail_step: int | None = None,
                 fault: Exception = RuntimeError("simulated engine fault")) -> None:
        if gate is not None:
            assert gate.wait(10), "test gate never opened"
        self.n_cells, self.n_seqs, self.n_vocab, self.handle = n_cells, n_seqs, V, self
        self.seqs: dict[int, dict[int, int]] = {}  # seq -> {pos: cell}
        self._next_cell = 0
        self._logits: list[np.ndarray] = []
        self.prefills: list[tuple[int, int, int]] = []  # (seq, start, prompt length)
        self.step_sizes: list[int] = []
        self.cleared = 0
        self.closed = False
        self._step_delay, self._fail_step, self._fault = step_delay, fail_step, fault

    def _decode(self, entries: list[tuple[int, int, int]]) -> None:
        self._logits = []
        for token, pos, seq in entries:
            self.seqs.setdefault(seq, {})[pos] = self._next_cell
            self._next_cell += 1
            row = np.full(V, -1.0, dtype=np.float32)
            row[(token + 1) % V] = 1.0
            self._logits.append(row)
        assert len(self.cells_in_use()) <= self.n_cells, "more cells used than the context has"

    def prefill(self, tokens: list[int], seq_id: int, start: int = 0) -> int:
        assert start % PREFILL_BLOCK == 0
        self.prefills.append((seq_id, start, len(tokens)))
        self._decode([(tok, start + i, seq_id) for i, tok in enumerate(tokens[start:])])
        return len(self._logits) - 1

    def share(self, src: int, dsts: list[int], upto: int = -1) -> None:
        for dst in dsts:
            held = self.seqs.setdefault(dst, {})
            held.update({p: c for p, c in self.seqs.get(src, {}).items() if upto < 0 or p < upto})

    def step(self, entries: list[tuple[int, int, int]]) -> None:
        if self._fail_step is not None and len(self.step_sizes) == self._fail_step:
            self._fail_step = None
            raise self._fault
        time.sleep(self._step_delay)
        self.step_sizes.append(len(entries))
        self._decode(entries)

    def logits(self, row: int) -> np.ndarray:
        return self._logits[row]

    def free(self, seq_ids: list[int]) -> None:
        for seq in seq_ids:
            self.seqs.pop(seq, None)

    def trim(self, seq_id: int, keep: int) -> None:
        self.seqs[seq_id] = {p: c for p, c in self.seqs.get(seq_id, {}).items() if p < keep}

    def clear(self) -> None:
        self.cleared += 1
        self.seqs.clear()

    def used(self, seq_id: int) -> bool:
        return bool(self.seqs.get(seq_id))

    def cells_in_use(self) -> set[int]:
        return {c for held in self.seqs.values() for c in held.values()}

    def close(self) -> None:
        self.closed = True


class FakeSampler:
    def __init__(self, sampling: Sampling, seed: int | None) -> None:
        self.shift = seed or 0

    def sample(self, handle: FakeContext, row: int) -> int:
        logits = handle.logits(row)
        token = (int(np.argmax(logits)) + self.shift) % V
        return token if np.isfinite(logits[token]) else int(np.argmax(logits))

    def close(self) -> None: ...


def make(*, min_cells: int = 0, max_cells: int = 8192, prefix_slots: int = 4,
         **ctx_kw: Any) -> tuple[BatchScheduler, list[FakeContext]]:
    made: list[FakeContext] = []

    def new_context(cells: int, seqs: int) -> FakeContext:
        made.append(FakeContext(cells, seqs, **ctx_kw))
        return made[-1]

    sched = BatchScheduler(new_context=new_context, new_sampler=FakeSampler, is_eog=lambda t: t == EOS,
                           piece=lambda t: str(t).encode(), min_cells=min_cells, max_cells=max_cells, max_seqs=256,
                           prefix_slots=prefix_slots)
    return sched, made


def job(n: int = 5, *, max_new: int = 6, seed: int = 0, prompt: list[int] | None = None,
        stop: tuple[str, ...] = (), compiled: Any = None) -> Job:
    return Job(prompt=list(prompt or PROMPT), n=n, sampling=Sampling(temperature=0.8, seed=seed, stop=stop),
               max_new=max_new, compiled=compiled, kind="json_schema" if compiled is not None else "")


def result(j: Job, timeout: float = 10) -> list[tuple[str, str, int]]:
    return j.future.result(timeout)  # type: ignore[no-any-return]


def wait_idle(sched: BatchScheduler) -> None:
    deadline = time.monotonic() + 10
    while not sched.idle():
        assert time.monotonic() < deadline, "the scheduler never went idle"
        time.sleep(0.01)


def test_samples_share_steps_and_stop_independently() -> None:
    sched, made = make()
    j = job(5, max_new=6)
    sched.submit(j)
    assert result(j) == [
        ("6789", "stop", 4),      # seed 0: ends on <eos>
        ("791357", "length", 6),  # seed 1: never ends, cut at max_tokens
        ("8147", "stop", 4),      # seed 2
        ("937159", "length", 6),  # seed 3
        ("", "stop", 0),          # seed 4: <eos> first
    ]  # fmt: skip
    # one decode per step for all live samples; each leaves the batch as soon as it stops
    assert made[0].step_sizes == [4, 4, 4, 4, 2]
    assert made[0].prefills == [(0, 0, 5)]  # the prompt is decoded once, for all five


def test_a_stop_string_ends_only_its_own_sample() -> None:
    sched, _ = make()
    j = job(2, max_new=8, seed=0, stop=("8",))
    sched.submit(j)
    assert result(j) == [("67", "stop", 3), ("79135791", "length", 8)]


def test_concurrent_requests_decode_in_one_batch() -> None:
    gate = threading.Event()
    sched, made = make(min_cells=4096, gate=gate)  # the first context fits them all
    jobs = [job(2, seed=1, max_new=4) for _ in range(3)]
    for j in jobs:
        sched.submit(j)
    gate.set()
    assert [result(j) for j in jobs] == [[("7913", "length", 4), ("8147", "length", 4)]] * 3
    assert made[0].step_sizes == [6, 6, 6]  # three requests x two samples in every decode


def test_a_request_that_does_not_fit_waits_its_turn() -> None:
    gate = threading.Event()
    sched, made = make(max_cells=256, gate=gate)  # room for one request of 5 + 2 x 100 cells, not two
    first, second = job(2, seed=1, max_new=100), job(2, seed=1, max_new=100)
    sched.submit(first)
    sched.submit(second)
    gate.set()
    assert result(first) == result(second)
    assert len(made) == 1 and len(made[0].prefills) == 2
    assert max(made[0].step_sizes) == 2, "the second request was admitted while the first held its cells"


def test_the_context_grows_when_idle_and_never_beyond_the_cap() -> None:
    sched, made = make(max_cells=2048)
    small = job(1, max_new=10)
    sched.submit(small)
    result(small)
    assert made[0].n_cells == pad_cells(small.cells)
    big = job(2, max_new=400)  # 805 cells
    sched.submit(big)
    result(big)
    assert made[0].closed and made[1].n_cells == pad_cells(big.cells) <= 2048
    with pytest.raises(BackendError, match="can never be scheduled"):
        sched.submit(job(8, max_new=400))  # 3205 cells > the cap


def test_a_cancelled_request_frees_its_cells_and_the_scheduler_goes_on() -> None:
    sched, _ = make(step_delay=0.002)
    long = job(3, seed=1, max_new=2000)  # seeds 1, 2, 3: two of them run to max_tokens
    sched.submit(long)
    deadline = time.monotonic() + 10
    while sched.steps < 5:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    long.cancel()
    wait_idle(sched)
    assert long.future.cancelled()
    assert sched.held_sequences() == []  # only the prefix cache keeps cells: the prompt
    after = job(1, max_new=3)
    sched.submit(after)
    assert result(after) == [("678", "length", 3)]
    assert sched.held_sequences() == []


class _Forbid9:
    """An outlines-style processor (reset + __call__(ids, logits)) that forbids token 9 and,
    optionally, fails on its n-th call."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.calls, self.fail_on = 0, fail_on

    def reset(self) -> None:
        self.calls = 0

    def __call__(self, ids: np.ndarray, logits: np.ndarray) -> np.ndarray:
        self.calls += 1
        if self.fail_on is not None and self.calls == self.fail_on:
            raise RuntimeError("numba is missing")
        logits[..., 9] = -np.inf
        return logits


def test_each_sample_has_its_own_constraint_state() -> None:
    sched, _ = make()
    j = job(2, seed=0, max_new=6, compiled=_Forbid9())
    sched.submit(j)
    # seed 0 wanted 9 after 8: forbidden, so it took the best allowed token (<eos> here); seed 1
    # (7 9 1 3 ... unconstrained) was steered away from 9 on its own path
    assert result(j) == [("678", "stop", 3), ("781357", "length", 6)]


def test_a_failing_constraint_fails_its_request_only() -> None:
    gate = threading.Event()
    sched, _ = make(min_cells=4096, gate=gate)
    bad = job(2, seed=1, max_new=6, compiled=_Forbid9(fail_on=3))
    good = job(2, seed=1, max_new=6)
    sched.submit(bad)
    sched.submit(good)
    gate.set()
    with pytest.raises(UnsupportedConstraint, match="could not be applied on llama.cpp: RuntimeError: numba"):
        result(bad)
    assert result(good) == [("791357", "length", 6), ("8147", "stop", 4)]
    wait_idle(sched)
    assert sched.held_sequences() == []


def test_an_engine_fault_fails_the_batch_and_the_next_request_runs() -> None:
    sched, _ = make(fail_step=1)
    broken = job(2, seed=1, max_new=6)
    sched.submit(broken)
    with pytest.raises(BackendError, match="batch worker failed: RuntimeError: simulated engine fault"):
        result(broken)
    wait_idle(sched)
    fine = job(1, max_new=3)
    sched.submit(fine)
    assert result(fine) == [("678", "length", 3)]


def test_a_decode_error_fails_the_running_requests_not_the_queued_ones() -> None:
    gate = threading.Event()
    fault = BackendError("llama.cpp could not decode a step of 2 sequences (no free KV slot)")
    sched, _ = make(max_cells=256, gate=gate, fail_step=1, fault=fault)
    running, queued = job(2, seed=1, max_new=100), job(2, seed=1, max_new=100)  # one fits at a time
    sched.submit(running)
    sched.submit(queued)
    gate.set()
    with pytest.raises(BackendError, match="no free KV slot"):
        result(running)
    assert result(queued) == [("79" + "13579" * 19 + "135", "length", 100), ("8147", "stop", 4)]


def test_a_constraint_that_cannot_start_fails_its_request_and_leaks_nothing() -> None:
    class BrokenReset:
        def reset(self) -> None:
            raise RuntimeError("bad processor")

    sched, made = make()
    broken = job(3, compiled=BrokenReset())
    sched.submit(broken)
    with pytest.raises(BackendError, match="RuntimeError: bad processor"):
        result(broken)
    fine = job(1, max_new=3)
    sched.submit(fine)
    assert result(fine) == [("678", "length", 3)]
    wait_idle(sched)
    assert sched.held_sequences() == []
    assert len(sched._free_ids) == made[0].n_seqs - sched.prefix_slots  # every id back but the prefix cache's


def _long_prompt(n: int, tail: list[int]) -> list[int]:
    return [(i % 7) + 1 for i in range(n)] + tail


@pytest.mark.parametrize(("second", "reused"), [
    (_long_prompt(70, [5]), 64),   # the same prompt: every whole chunk but the last token's
    (_long_prompt(40, [3, 5]), 32),  # a shared 40-token prefix: one whole chunk
    ([9, 9, 5], 0),                # nothing shared
])  # fmt: skip
def test_the_prefix_cache_reuses_whole_chunks_of_the_last_prompt(second: list[int], reused: int) -> None:
    sched, made = make()
    first = job(1, max_new=2, prompt=_long_prompt(70, [5]))
    sched.submit(first)
    result(first)
    again = job(1, max_new=2, prompt=second)
    sched.submit(again)
    result(again)
    assert made[0].prefills[-1][1] == reused
    assert sched.reused_tokens == reused
    assert (first.reused, again.reused) == (0, reused)  # per request, for its usage
    # alone, it starts from a canonical layout: cleared when nothing is reused
    assert made[0].cleared == (2 if reused == 0 else 1)


def _family(head: int, tail: list[int]) -> list[int]:
    """A 70-token prefix of its own (two whole chunks) and a tail: prompts of one kind of request."""
    return [head] * 70 + tail


def _while_busy(sched: BatchScheduler, prompts: list[list[int]]) -> list[Job]:
    """Run each prompt in turn while a long request keeps the batch busy (none of them starts
    alone, so the cache keeps every entry), then let the long one finish."""
    busy = job(1, max_new=4000, seed=1, prompt=[9, 9, 5])  # seed 1 never ends
    sched.submit(busy)
    done = []
    for prompt in prompts:
        done.append(job(1, max_new=2, prompt=prompt))
        sched.submit(done[-1])
        result(done[-1])
    busy.cancel()
    wait_idle(sched)
    return done


def test_interleaved_prefix_families_each_keep_their_prefix() -> None:
    """Two kinds of request in flight at once (a pattern's two steps, or two examples) no longer
    evict each other's prefix: each reuses its own family's whole chunks."""
    sched, _ = make(min_cells=8192, step_delay=0.001)
    a1, b1, a2, b2 = _while_busy(sched, [_family(1, [2]), _family(3, [4]), _family(1, [5, 5]), _family(3, [6])])
    assert (a1.reused, b1.reused) == (0, 0)
    assert (a2.reused, b2.reused) == (64, 64)


def test_the_least_recently_used_prefix_goes_when_the_slots_are_full() -> None:
    sched, _ = make(min_cells=8192, step_delay=0.001, prefix_slots=2)
    *_, a2, c2 = _while_busy(sched, [_family(1, [2]), _family(3, [4]), _family(5, [6]),
                                     _family(1, [7]), _family(5, [8])])
    assert a2.reused == 0  # family 1 was the least recently used when family 5 came
    assert c2.reused == 64


def test_a_prompt_replaces_the_entry_it_contains() -> None:
    sched, _ = make(min_cells=8192, step_delay=0.001)
    _while_busy(sched, [_family(1, [2]), _family(1, [2, 3, 4]), _family(3, [4])])
    cached = sorted(tuple(e.tokens[-3:]) for e in sched._cache)
    assert cached == [(2, 3, 4), (3, 3, 4), (9, 9, 5)]  # [1]*70+[2] was contained in its extension


def test_a_lone_request_reuses_only_a_canonical_prefix_and_keeps_nothing_else() -> None:
    """Alone, a request starts from the canonical layout (reproducible samples): only a prefix that
    was itself decoded alone is reused, and every other entry is dropped first."""
    sched, made = make(min_cells=8192, step_delay=0.001)
    first = job(1, max_new=2, prompt=_family(1, [2]))
    sched.submit(first)
    result(first)  # alone: canonical
    _while_busy(sched, [_family(3, [4]), _family(3, [5])])  # not canonical
    assert len(sched._cache) == 3
    for prompt, reused in ((_family(3, [6]), 0), (_family(1, [9]), 0), (_family(1, [7]), 64)):
        again = job(1, max_new=2, prompt=prompt)
        sched.submit(again)
        result(again)
        assert again.reused == reused
        assert [e.tokens for e in sched._cache] == [prompt]  # the other entries were dropped
    cells = made[-1].cells_in_use()
    assert cells == set(made[-1].seqs[sched._cache[0].seq_id].values())  # nothing else holds a cell


def test_cancelling_a_queued_request_never_starts_it() -> None:
    gate = threading.Event()
    sched, made = make(max_cells=4096, min_cells=4096, gate=gate)  # both would fit
    first, queued = job(2, seed=1, max_new=16), job(2, seed=1, max_new=16)
    sched.submit(first)
    sched.submit(queued)
    queued.cancel()
    gate.set()
    result(first)
    wait_idle(sched)
    assert len(made[0].prefills) == 1


def _run_all(fns: list[Callable[[], None]]) -> None:
    threads = [threading.Thread(target=fn) for fn in fns]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)


def test_submitting_from_many_threads_answers_every_request() -> None:
    sched, _ = make(min_cells=8192, step_delay=0.001)
    jobs = [job(2, seed=s % 5, max_new=5) for s in range(12)]
    _run_all([lambda j=j: sched.submit(j) for j in jobs])  # type: ignore[misc]
    assert all(len(result(j)) == 2 for j in jobs)
    wait_idle(sched)
    assert sched.held_sequences() == []


@pytest.mark.parametrize(("cpus", "threads"), [(8, 4), (2, 1), (1, 1), (None, 1)])
def test_default_threads_are_half_the_cpus(monkeypatch: pytest.MonkeyPatch, cpus: int | None, threads: int) -> None:
    from agentkit.backends import llamacpp

    monkeypatch.setattr(llamacpp.os, "cpu_count", lambda: cpus)
    assert llamacpp.default_threads() == threads


def test_a_prefix_cache_of_no_slots_is_refused_before_the_model_loads() -> None:
    from agentkit.backends.llamacpp import LlamaCppBackend
    from agentkit.errors import ConfigError

    with pytest.raises(ConfigError, match="prefix_cache_slots must be at least 1, got 0"):
        LlamaCppBackend("/nonexistent.gguf", prefix_cache_slots=0)


def test_when_cells_run_short_the_prefix_a_request_would_reuse_is_evicted_last() -> None:
    """Room for a new request is made by evicting cache entries least recently used first, but never
    the one it is about to reuse while another can go."""
    sched, _ = make(min_cells=2048, max_cells=2048, step_delay=0.002)
    busy = job(1, max_new=1000, seed=1, prompt=[9, 9, 5])  # 1003 cells, running throughout (~2 s)
    sched.submit(busy)
    for prompt in (_family(1, [2]), _family(3, [4])):  # family 1 becomes the least recently used
        done = job(1, max_new=2, prompt=prompt)
        sched.submit(done)
        result(done)
    assert sorted(len(e.tokens) for e in sched._cache) == [3, 71, 71]
    # 2048 - 1003 reserved = 1045 free, 145 of them cached; this request needs 932: one family must go
    needy = job(1, max_new=860, prompt=_family(1, [5]))
    sched.submit(needy)
    result(needy)
    assert needy.reused == 64  # family 1 survived: the busy prompt and family 3 made the room
    busy.cancel()


def test_while_others_run_a_request_waits_for_room_rather_than_evict_the_prefix_it_reuses() -> None:
    """One slot, a full batch: evicting the cached prefix to admit the next request of its kind would
    make it decode the whole prompt again (per-sentence LINC re-decoded every prompt that way). It
    waits for a running request to finish instead, then reuses the prefix."""
    sched, made = make(min_cells=2048, max_cells=2048, step_delay=0.002, prefix_slots=1)
    long_one = job(1, max_new=600, seed=1, prompt=[9, 9, 5])  # 603 cells, runs ~600 steps
    short_one = job(1, max_new=300, seed=1, prompt=[8, 8, 5])  # 303 cells, finishes first
    sched.submit(long_one)
    sched.submit(short_one)
    first = job(1, max_new=2, prompt=_family(1, [2]))
    sched.submit(first)
    result(first)  # the cache now holds its 71-token prompt
    assert not short_one.future.done()
    # 2048 - 906 reserved - 71 cached = 1071 free: this request (1112 cells) fits only without the prefix
    needy = job(1, max_new=1040, prompt=_family(1, [5]))
    sched.submit(needy)
    result(needy)
    assert short_one.future.done() and not long_one.future.done()  # it waited for the short one...
    assert needy.reused == 64  # ...and reused the prefix instead of decoding it again
    long_one.cancel()
    wait_idle(sched)
