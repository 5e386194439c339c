"""One sample of a batched llama.cpp request: its sampler, its constraint state, its text, its stop.

Every sequence of a batch owns these, so samples stay independent while sharing one decode: sample
*i* is drawn by its own sampler chain seeded ``seed + i`` (the chain and seed the sequential path
gives ``create_completion``, so both paths draw the same random numbers; their samples part only
where batched arithmetic rounds differently), its own constraint state masks its logits, and it
stops on its own (end of generation, a stop string, max_tokens, or a constraint that admits
nothing more).
"""

from __future__ import annotations

import copy
import ctypes
import warnings
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from agentkit.backends._outlines_constraints import raise_on_warnings
from agentkit.backends.base import Sampling
from agentkit.errors import UnsupportedConstraint

#: create_completion's defaults, which the sequential path runs with; the batched chain mirrors them
_TOP_K = 40
_MIN_P = 0.05
_TYPICAL_P = 1.0


def make_sampler(sampling: Sampling, seed: int | None) -> Any:
    """llama.cpp's own sampler chain, as ``Llama.create_completion`` builds it (minus the neutral
    repetition penalty): same steps, same order, same seed, so the RNG draws match."""
    import llama_cpp
    from llama_cpp import _internals

    chain = _internals.LlamaSampler()
    if sampling.temperature == 0.0:
        chain.add_greedy()
        return chain
    chain.add_top_k(_TOP_K)
    chain.add_typical(_TYPICAL_P, 1)
    chain.add_top_p(sampling.top_p, 1)
    chain.add_min_p(_MIN_P, 1)
    chain.add_temp(sampling.temperature)
    chain.add_dist(llama_cpp.LLAMA_DEFAULT_SEED if seed is None else seed & 0xFFFFFFFF)
    return chain


class SeqConstraint(Protocol):
    """One sequence's constraint state."""

    def mask(self, logits: np.ndarray, prompt: list[int], tokens: list[int]) -> None:
        """Set the logits of every token the constraint forbids next to -inf, in place."""

    def accept(self, token: int) -> None:
        """Advance past a sampled token (raises UnsupportedConstraint if the matcher failed)."""

    def finished(self) -> bool:
        """True when the constraint admits nothing more: the sample is complete."""


def constraint_for(compiled: Any, kind: str, n_vocab: int) -> SeqConstraint:
    """A fresh per-sequence state for a compiled (cached) constraint.

    llguidance processors carry their grammar and tokenizer, so a sequence gets its own matcher
    and stops as soon as the grammar is complete; any other outlines processor is copied and reset
    (it builds its state lazily on its first call)."""
    if getattr(compiled, "grammar", None) is not None and getattr(compiled, "llg_tokenizer", None) is not None:
        return _MatcherState(compiled.llg_tokenizer, compiled.grammar, kind, n_vocab)
    return _ProcessorState(compiled, kind)


def apply_bitmask(logits: np.ndarray, bitmask: np.ndarray) -> None:
    """-inf for every token whose bit is 0 in llguidance's bitmask (bit j of 32-bit word w is
    token 32w + j), and for tokens past its end; in place. One unpackbits instead of llguidance's
    repeat/tile numpy kernel, which costs ~10x more per call at a 49k vocabulary."""
    allowed = np.unpackbits(np.ascontiguousarray(bitmask, dtype="<i4").view(np.uint8), bitorder="little")
    n = min(len(logits), len(allowed))
    logits[:n][allowed[:n] == 0] = -np.inf
    logits[n:] = -np.inf


class _MatcherState:
    def __init__(self, tokenizer: Any, grammar: str, kind: str, n_vocab: int) -> None:
        from llguidance import LLMatcher

        self._matcher = LLMatcher(tokenizer, grammar)
        self._kind = kind
        self._bitmask = np.full((1, (n_vocab + 31) // 32), -1, dtype="<i4")
        self._check()

    def mask(self, logits: np.ndarray, prompt: list[int], tokens: list[int]) -> None:
        from llguidance.numpy import fill_next_token_bitmask

        fill_next_token_bitmask(self._matcher, self._bitmask, 0)
        self._check()
        apply_bitmask(logits, self._bitmask[0])

    def accept(self, token: int) -> None:
        self._matcher.consume_token(token)
        self._check()

    def finished(self) -> bool:
        return bool(self._matcher.is_stopped())

    def _check(self) -> None:
        if self._matcher.is_error():
            first = str(self._matcher.get_error()).splitlines()[0]
            raise UnsupportedConstraint(f"the {self._kind} constraint stopped applying mid-sample: {first}")


class _ProcessorState:
    """An outlines logits processor (e.g. outlines_core's), called directly.

    Called here rather than from a llama.cpp ctypes callback, so an exception inside it (outlines
    without numba) surfaces as UnsupportedConstraint instead of being swallowed."""

    def __init__(self, compiled: Any, kind: str) -> None:
        self._processor = copy.copy(compiled)
        self._processor.reset()
        self._kind = kind

    def mask(self, logits: np.ndarray, prompt: list[int], tokens: list[int]) -> None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                out = self._processor(np.asarray(prompt + tokens, dtype=np.intc), logits)
            except Exception as exc:  # any failure means the constraint is not being applied
                raise UnsupportedConstraint(
                    f"the {self._kind} constraint could not be applied on llama.cpp: {type(exc).__name__}: {exc}"
                ) from exc
        raise_on_warnings(caught, self._kind)
        if out is not logits:
            logits[:] = out

    def accept(self, token: int) -> None:
        """The processor consumes the last token itself on its next call."""

    def finished(self) -> bool:
        return False


class Pieces:
    """Token id -> bytes, cached (the sequential path's detokenize concatenates the same pieces)."""

    def __init__(self, vocab: Any) -> None:
        self._vocab = vocab
        self._cache: dict[int, bytes] = {}
        self._buf = ctypes.create_string_buffer(64)

    def __call__(self, token: int) -> bytes:
        piece = self._cache.get(token)
        if piece is None:
            import llama_cpp

            n = llama_cpp.llama_token_to_piece(self._vocab, token, self._buf, len(self._buf), 0, False)
            if n < 0:
                self._buf = ctypes.create_string_buffer(-n)
                n = llama_cpp.llama_token_to_piece(self._vocab, token, self._buf, len(self._buf), 0, False)
            piece = self._buf.raw[:n]
            self._cache[token] = piece
        return piece


class Sequence:
    """One sample being decoded: its llama.cpp sequence id, its tokens, its text, why it stopped."""

    def __init__(self, seq_id: int, sampler: Any, constraint: SeqConstraint | None, *,
                 max_new: int, stop: tuple[str, ...], prompt: list[int]) -> None:
        self.seq_id = seq_id
        self.sampler = sampler
        self.constraint = constraint
        self.max_new = max_new
        self._stops = [s.encode("utf-8") for s in stop if s]
        self._longest_stop = max((len(s) for s in self._stops), default=0)
        self._prompt = prompt
        self.tokens: list[int] = []
        self.text = b""
        self.finish_reason: str | None = None
        self.row = -1  #: where its next logits are in the last decoded batch

    @property
    def live(self) -> bool:
        return self.finish_reason is None

    @property
    def pos(self) -> int:
        """The position of its last sampled token, the one the next step decodes."""
        return len(self._prompt) + len(self.tokens) - 1

    def sample(self, handle: Any, logits: np.ndarray, is_eog: Callable[[int], bool],
               piece: Callable[[int], bytes]) -> None:
        """Draw the next token at ``self.row`` of the context ``handle``; ``logits`` is that row, a
        view of llama.cpp's own buffer, which the constraint masks in place before the chain reads it."""
        if self.constraint is not None:
            self.constraint.mask(logits, self._prompt, self.tokens)
        self.push(int(self.sampler.sample(handle, self.row)), is_eog, piece)

    def push(self, token: int, is_eog: Callable[[int], bool], piece: Callable[[int], bytes]) -> None:
        if is_eog(token):
            self.finish_reason = "stop"
            return
        self.tokens.append(token)
        new = piece(token)
        self.text += new
        if self.constraint is not None:
            self.constraint.accept(token)
        if self._stops and self._cut_at_stop(len(new)):
            self.finish_reason = "stop"
        elif self.constraint is not None and self.constraint.finished():
            self.finish_reason = "stop"
        elif len(self.tokens) >= self.max_new:
            self.finish_reason = "length"

    def _cut_at_stop(self, new_len: int) -> bool:
        """A stop string can only newly appear overlapping the last piece: search that tail."""
        start = max(0, len(self.text) - new_len - self._longest_stop + 1)
        hits = [i for i in (self.text.find(s, start) for s in self._stops) if i >= 0]
        if not hits:
            return False
        self.text = self.text[: min(hits)]
        return True

    def result(self) -> tuple[str, str]:
        return self.text.decode("utf-8", errors="ignore"), self.finish_reason or "length"

    def close(self) -> None:
        if self.sampler is not None:
            self.sampler.close()
            self.sampler = None
