"""The llama.cpp batch scheduler: one worker thread, one batch context, many requests at once.

Requests (``Job``: one prompt, n samples) queue here and are admitted in arrival order while the
context has room for them: their prompt cells plus n x max_tokens, reserved up front so a batch
can never run out of KV cells mid-decode. Admitted jobs decode together, one token per live
sequence per ``llama_decode``; a job that does not fit waits (and everything behind it, so nothing
starves) until enough cells are freed. When the worker is idle and the queue wants more cells or
sequences than the context has, the context is rebuilt larger, up to the backend's cap; it never
shrinks. A cancelled job's sequences are dropped from the next step and their KV cells freed.

The prefix cache keeps the prompts of the last few requests (``prefix_slots`` of them, each under
its own sequence id), so concurrent requests of different kinds (a pattern's steps, an eval's
examples at ``--concurrency``) each find their own prefix instead of evicting one another's. A
request reuses the entry sharing the longest prefix with its prompt; its prompt then joins the
cache in place of any entry it extends, else of the least recently used one. Entries are also
evicted, least recently used first, when a job needs their cells; but while other requests run, a
job waits for one of them to finish rather than evict the entry it would itself reuse.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from agentkit.backends._llamacpp_batch import PREFILL_BLOCK, pad_cells
from agentkit.backends._llamacpp_seq import Sequence, constraint_for
from agentkit.backends.base import Sampling
from agentkit.errors import AgentkitError, BackendError

log = logging.getLogger(__name__)

#: sequence slots are allocated in steps of this many (llama.cpp's own limit is 256)
_SEQ_STEP = 8
#: prompts the prefix cache keeps by default. One, as before the slots existed: every held prompt
#: widens the KV range each decode step attends over, and more slots have not yet been measured
#: to pay for that (bench/engine.py part e); pass more for concurrent kinds of request
PREFIX_SLOTS = 1


@dataclass
class Job:
    """One request's work: a tokenized prompt decoded once, then ``n`` samples from it."""

    prompt: list[int]
    n: int
    sampling: Sampling
    max_new: int
    compiled: Any = None  #: the cached constraint (an outlines processor), or None
    kind: str = ""
    #: the request's index of this job's first sample: a request split into sub-batches (more
    #: samples than the context holds at once) keeps sample i's seed at ``seed + i``
    first_sample: int = 0
    future: concurrent.futures.Future[Any] = field(default_factory=concurrent.futures.Future)
    seq_ids: list[int] = field(default_factory=list)  #: its llama.cpp sequence ids, once admitted
    seqs: list[Sequence] = field(default_factory=list)
    error: BaseException | None = None
    reused: int = 0  #: prompt tokens it took from the prefix cache instead of decoding (set when it starts)

    @property
    def cells(self) -> int:
        """The KV cells it may use: the shared prompt once, plus every sample's own tokens."""
        return len(self.prompt) + self.n * self.max_new

    def cancel(self) -> None:
        self.future.cancel()

    @property
    def cancelled(self) -> bool:
        return self.future.cancelled()

    @property
    def done(self) -> bool:
        return self.error is not None or (bool(self.seqs) and not any(s.live for s in self.seqs))


@dataclass
class _Prefix:
    """One prefix-cache entry: a prompt's KV under its own sequence id."""

    seq_id: int
    tokens: list[int]
    canonical: bool  #: decoded with nothing else in the context (see BatchScheduler._start)


class BatchContextLike(Protocol):
    """What the scheduler needs of a context (``_llamacpp_batch.BatchContext``; a fake in unit tests)."""

    n_cells: int
    n_seqs: int
    n_vocab: int
    handle: Any

    def prefill(self, tokens: list[int], seq_id: int, start: int = 0) -> int: ...
    def share(self, src: int, dsts: list[int], upto: int = -1) -> None: ...
    def step(self, entries: list[tuple[int, int, int]]) -> None: ...
    def logits(self, row: int) -> Any: ...
    def free(self, seq_ids: list[int]) -> None: ...
    def trim(self, seq_id: int, keep: int) -> None: ...
    def clear(self) -> None: ...
    def used(self, seq_id: int) -> bool: ...
    def close(self) -> None: ...


class BatchScheduler:
    """``new_context(cells, seqs)`` builds a context, ``new_sampler(sampling, seed)`` a sampler
    chain, ``is_eog``/``piece`` read the vocabulary; the backend passes llama.cpp's."""

    def __init__(self, *, new_context: Callable[[int, int], BatchContextLike],
                 new_sampler: Callable[[Sampling, int | None], Any], is_eog: Callable[[int], bool],
                 piece: Callable[[int], bytes], min_cells: int, max_cells: int, max_seqs: int,
                 prefix_slots: int = PREFIX_SLOTS) -> None:
        if prefix_slots < 1:
            raise ValueError(f"prefix_slots must be at least 1, got {prefix_slots}")
        self._new_context = new_context
        self._new_sampler = new_sampler
        self._is_eog = is_eog
        self._piece = piece
        self.min_cells = min_cells
        self.max_cells = max_cells
        self.max_seqs = max_seqs
        self.prefix_slots = prefix_slots
        self._cv = threading.Condition()
        self._pending: deque[Job] = deque()
        self._active: list[Job] = []
        self._thread: threading.Thread | None = None
        self._ctx: BatchContextLike | None = None
        self._free_ids: list[int] = []
        self._reserved = 0
        #: recent prompts' KV (most recently used last), so the next request with the same prefix
        #: (same instructions and shots, or the same question again) decodes only the rest, as the
        #: sequential path's Llama object does; see the module docstring
        self._cache: list[_Prefix] = []
        self._cache_ids: list[int] = []  #: the sequence ids the cache may use
        self.steps = 0  #: decode steps run (tests check that samples really share steps)
        self.reused_tokens = 0  #: prompt tokens served from the prefix cache instead of decoded

    @property
    def context(self) -> BatchContextLike | None:
        return self._ctx

    def submit(self, job: Job) -> concurrent.futures.Future[Any]:
        if job.cells > self.max_cells or job.n > self.max_samples:  # the backend refuses these first
            raise BackendError(f"a batch of n={job.n} needing {job.cells} KV cells can never be scheduled "
                               f"(at most {self.max_samples} sequences and {self.max_cells} cells)")
        with self._cv:
            self._pending.append(job)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="agentkit-llamacpp-batch", daemon=True)
                self._thread.start()
            self._cv.notify()
        return job.future

    @property
    def max_samples(self) -> int:
        """The most samples one job may hold: every sequence id but the prefix cache's."""
        return self.max_seqs - self.prefix_slots

    def idle(self) -> bool:
        with self._cv:
            return self._thread is None

    def held_sequences(self) -> list[int]:
        """Sequence ids of requests that still hold KV cells (not the prefix cache's); call only
        while idle (the worker owns the context)."""
        ctx = self._ctx
        return [] if ctx is None else [s for s in range(ctx.n_seqs) if s not in self._cache_ids and ctx.used(s)]

    # -- the worker thread -------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cv:
                self._pending = deque(j for j in self._pending if not j.cancelled)
                if not self._active and not self._pending:
                    self._thread = None
                    return
            try:
                progressed = self._turn()
            except Exception as exc:  # a bug or an engine fault: fail every request, never hang them
                log.exception("llama.cpp batch worker failed")
                self._fail(BackendError(f"the llama.cpp batch worker failed: {type(exc).__name__}: {exc}"),
                           queued_too=True)
                progressed = True
            if not progressed:
                with self._cv:
                    self._cv.wait(0.05)  # only when a waiting job has no room yet

    def _turn(self) -> bool:
        """Admit what fits, start it, decode one step for everyone, retire what finished."""
        with self._cv:
            wanted = None if self._active else self._wanted_size()
        if wanted is not None:
            self._resize(*wanted)
        with self._cv:
            taken = self._admit()
        for job in taken:
            self._start(job)
        stepped = self._step()
        self._retire()
        return bool(taken) or stepped

    def _fail(self, error: BackendError, *, queued_too: bool) -> None:
        """Fail every running request (and, after a bug, the queued ones: they might never run)."""
        for job in self._active:
            job.error = job.error or error
        if queued_too:
            with self._cv:
                failed, self._pending = list(self._pending), deque()
            for job in failed:
                _resolve(job, error)
        self._retire()
        self._forget_cache()

    def _wanted_size(self) -> tuple[int, int] | None:
        """Cells and sequences for the jobs at the head of the queue, when the context is too small."""
        cells, seqs = 0, self.prefix_slots  # the prefix cache's sequence ids
        for job in self._pending:
            if cells and (cells + job.cells > self.max_cells or seqs + job.n > self.max_seqs):
                break
            cells, seqs = cells + job.cells, seqs + job.n
        ctx = self._ctx
        if ctx is not None and cells <= ctx.n_cells and seqs <= ctx.n_seqs:
            return None
        cells = min(self.max_cells, max(cells, self.min_cells, ctx.n_cells if ctx else 0))
        samples = max(_SEQ_STEP, -(-(seqs - self.prefix_slots) // _SEQ_STEP) * _SEQ_STEP)  # the cache's ids on top
        seqs = min(self.max_seqs, max(samples + self.prefix_slots, ctx.n_seqs if ctx else 0))
        return pad_cells(cells), seqs

    def _resize(self, cells: int, seqs: int) -> None:
        if self._ctx is not None:
            self._ctx.close()
            self._ctx = None
        log.debug("llama.cpp batch context: %d KV cells, %d sequences", cells, seqs)
        try:
            self._ctx = self._new_context(cells, seqs)
        except BackendError as exc:
            with self._cv:
                failed, self._pending = list(self._pending), deque()
            for job in failed:
                _resolve(job, exc)
            return
        self._cache, self._cache_ids = [], list(range(seqs - self.prefix_slots, seqs))
        self._free_ids = list(range(seqs - self.prefix_slots - 1, -1, -1))
        self._reserved = 0

    def _admit(self) -> list[Job]:
        taken: list[Job] = []
        ctx = self._ctx
        while self._pending and ctx is not None:
            job = self._pending[0]
            if job.cancelled:
                self._pending.popleft()
                continue
            if job.n > len(self._free_ids) or job.cells > ctx.n_cells - self._reserved:
                break  # it waits for room, and so does everything behind it
            if job.cells > ctx.n_cells - self._reserved - self._cached_cells() and not self._make_room(
                    job, ctx.n_cells - self._reserved, others_running=bool(self._active or taken)):
                break  # it waits for a running request to finish rather than lose the prefix it reuses
            self._pending.popleft()
            job.seq_ids = [self._free_ids.pop() for _ in range(job.n)]
            self._reserved += job.cells
            taken.append(job)
        return taken

    def _sequence(self, job: Job, i: int, seq_id: int) -> Sequence:
        seed = None if job.sampling.seed is None else job.sampling.seed + job.first_sample + i
        assert self._ctx is not None
        constraint = None if job.compiled is None else constraint_for(job.compiled, job.kind, self._ctx.n_vocab)
        return Sequence(seq_id, self._new_sampler(job.sampling, seed), constraint, max_new=job.max_new,
                        stop=job.sampling.stop, prompt=job.prompt)

    def _start(self, job: Job) -> None:
        """Decode the prompt once (past what the prefix cache holds), share its cells with every
        sample, keep it in the prefix cache, and draw every sample's first token.

        A request that starts alone starts from a canonical layout: the cached prefix it reuses in
        cells 0..reuse-1 (or an empty context) and everything else after it, the rest of the cache
        dropped. Where its cells sit changes the order of llama.cpp's attention sums, hence
        rounding, hence samples; so the same request (same n and seeds) run alone decodes the same
        samples whatever ran before. Requests that overlap others share the context as it is (and
        every cache entry) and are not bit-reproducible."""
        ctx = self._ctx
        assert ctx is not None
        alone = not self._active
        self._active.append(job)
        first = job.seq_ids[0]
        source, shared = self._best_prefix(job.prompt, canonical_only=alone)
        reuse = _reusable(shared, job.prompt)
        try:
            job.seqs = [self._sequence(job, i, seq_id) for i, seq_id in enumerate(job.seq_ids)]
            if alone:
                for entry in [e for e in self._cache if e is not source or not reuse]:
                    self._evict(entry)
                if reuse:
                    assert source is not None
                    ctx.trim(source.seq_id, reuse)
                    source.tokens = source.tokens[:reuse]
                else:
                    ctx.clear()
            if reuse:
                assert source is not None
                ctx.share(source.seq_id, [first], upto=reuse)
                self.reused_tokens += reuse
                job.reused = reuse
                self._cache.remove(source)
                self._cache.append(source)  # just used: the most recent
            row = ctx.prefill(job.prompt, first, start=reuse)
            ctx.share(first, job.seq_ids[1:])
            self._remember(job.prompt, first, canonical=alone)
            prompt_logits = ctx.logits(row).copy()
            for seq in job.seqs:
                logits = ctx.logits(row)
                logits[:] = prompt_logits  # the previous sample's mask was written in place
                seq.row = row
                seq.sample(ctx.handle, logits, self._is_eog, self._piece)
        except Exception as exc:  # this request fails; the others go on
            job.error = _as_backend_error(exc)

    def _best_prefix(self, prompt: list[int], *, canonical_only: bool) -> tuple[_Prefix | None, int]:
        """The cache entry sharing the longest prefix with ``prompt`` (only canonical ones for a
        request that starts alone), and how many tokens it shares."""
        best, shared = None, 0
        for entry in self._cache:
            n = _common_prefix(entry.tokens, prompt)
            if n > shared and (entry.canonical or not canonical_only):
                best, shared = entry, n
        return best, shared

    def _remember(self, prompt: list[int], holder: int, *, canonical: bool) -> None:
        """Keep ``prompt`` (whose KV ``holder`` holds) as the most recent entry. It replaces an
        entry it contains (that one can serve no request better), else takes a free slot, else
        the least recently used entry's."""
        assert self._ctx is not None
        contained = [e for e in self._cache if _common_prefix(e.tokens, prompt) == len(e.tokens)]
        for entry in contained:
            self._evict(entry)
        if len(self._cache) == self.prefix_slots:
            self._evict(self._cache[0])
        taken = {e.seq_id for e in self._cache}
        seq_id = next(i for i in self._cache_ids if i not in taken)
        self._ctx.share(holder, [seq_id])
        self._cache.append(_Prefix(seq_id, list(prompt), canonical))

    def _make_room(self, job: Job, free: int, *, others_running: bool) -> bool:
        """Evict entries, least recently used first, until ``job`` fits in ``free`` cells; whether it fits.

        The entry it would reuse goes last, and only when nothing else runs: while other requests
        run, the job waits for one to finish, since evicting its prefix would make it and each
        request of its kind after it decode that prefix again (a batch of per-sentence LINC
        requests did so at every admission, re-decoding every prompt whole)."""
        mine, shared = self._best_prefix(job.prompt, canonical_only=False)
        if not _reusable(shared, job.prompt):
            mine = None  # not a whole chunk to reuse: nothing worth waiting for
        for entry in sorted(self._cache, key=lambda e: e is mine):  # stable: LRU order otherwise
            if job.cells <= free - self._cached_cells():
                return True
            if entry is mine and others_running:
                return False
            self._evict(entry)
        return job.cells <= free - self._cached_cells()

    def _evict(self, entry: _Prefix) -> None:
        if self._ctx is not None:
            self._ctx.free([entry.seq_id])
        self._cache.remove(entry)

    def _cached_cells(self) -> int:
        """An upper bound on the cache's cells (entries that share a prefix share its cells too)."""
        return sum(len(e.tokens) for e in self._cache)

    def _forget_cache(self) -> None:
        for entry in list(self._cache):
            self._evict(entry)

    def _step(self) -> bool:
        ctx = self._ctx
        live = [(job, seq) for job in self._active if job.error is None and not job.cancelled
                for seq in job.seqs if seq.live]
        if ctx is None or not live:
            return False
        try:
            ctx.step([(seq.tokens[-1], seq.pos, seq.seq_id) for _, seq in live])
        except BackendError as exc:
            self._fail(exc, queued_too=False)
            return True
        self.steps += 1
        for row, (job, seq) in enumerate(live):
            if job.error is not None:
                continue
            seq.row = row
            try:
                seq.sample(ctx.handle, ctx.logits(row), self._is_eog, self._piece)
            except Exception as exc:  # this request fails; the others go on
                job.error = _as_backend_error(exc)
        return True

    def _retire(self) -> None:
        """Free the cells and slots of every finished, failed or cancelled job, and answer it."""
        ctx = self._ctx
        keep = []
        for job in self._active:
            if not (job.done or job.cancelled):
                keep.append(job)
                continue
            ids = job.seq_ids
            if ctx is not None:
                ctx.free(ids)
            for seq in job.seqs:
                seq.close()
            with self._cv:
                self._free_ids.extend(ids)
                self._reserved -= job.cells
            if not job.cancelled:
                _resolve(job, job.error)
        self._active = keep


def _reusable(shared: int, prompt: list[int]) -> int:
    """The cached tokens a prompt sharing ``shared`` tokens with an entry can take: whole chunks only,
    and never the last prompt token (its logits are what the samples draw from)."""
    return min(shared, len(prompt) - 1) // PREFILL_BLOCK * PREFILL_BLOCK


def _common_prefix(a: list[int], b: list[int]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def _as_backend_error(exc: Exception) -> AgentkitError:
    """Our own errors pass as they are (UnsupportedConstraint stays one); anything else is a bug
    or an engine fault, reported as a BackendError naming it."""
    if isinstance(exc, AgentkitError):
        return exc
    log.debug("llama.cpp batch request failed", exc_info=exc)
    return BackendError(f"llama.cpp failed while decoding a batched request: {type(exc).__name__}: {exc}")


def _resolve(job: Job, error: BaseException | None) -> None:
    try:
        if error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result([seq.result() + (len(seq.tokens),) for seq in job.seqs])
    except concurrent.futures.InvalidStateError:  # cancelled meanwhile: nobody is waiting
        pass
