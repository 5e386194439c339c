"""A llama.cpp context laid out for batched sampling: one KV cache shared by many sequences.

The KV cache is *unified*: a prompt decoded once for sequence ``s`` is given to the request's other
sequences by ``llama_memory_seq_cp``, which only tags the same cells with more sequence ids (no
copy, no recompute). After that, each step decodes one token per live sequence in a single
``llama_decode``, so the weights are read once per step for all of them. What that saves depends
on whether the CPU's kernels are bound by memory or by arithmetic: docs/BENCHMARKS.md measures
the cost of a step by the number of sequences in it.

Only the scheduler's worker thread calls into an instance (a llama.cpp context is not
thread-safe).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from agentkit.errors import BackendError

#: llama.cpp pads a context to 256 cells; sizes are rounded the same way so the figures we report
#: are the ones llama.cpp allocates
CELL_PAD = 256
#: the most tokens one llama_decode takes (a step has one token per live sequence)
_N_BATCH = 512
#: prompts are decoded in chunks aligned on multiples of this many positions, and only whole
#: chunks are reused from the prefix cache: a token's KV then always comes from the same chunk
#: shape, so a prompt decodes to the same numbers whether part of it was cached or not (batch
#: shape changes llama.cpp's kernels and thus rounding). Small, because a cache hit still decodes
#: the last partial chunk; on CPU, chunks of 32 prefill as fast as chunks of 512 (measured here).
PREFILL_BLOCK = 32


def pad_cells(n: int) -> int:
    return -(-n // CELL_PAD) * CELL_PAD


class BatchContext:
    """A context of ``n_cells`` KV cells shared by up to ``n_seqs`` sequences.

    Flash attention stays off, as ``Llama`` runs it by default: on CPU it skips masked cells, which
    a unified cache holding other sequences is full of, yet measured here (SmolLM2-135M, 8
    sequences, up to 1,800 cells) it was no faster, and it changes the rounding."""

    def __init__(self, model: Any, *, n_cells: int, n_seqs: int, n_threads: int, flash_attn: bool = False) -> None:
        import llama_cpp
        from llama_cpp import _internals

        params = llama_cpp.llama_context_default_params()
        params.n_ctx = pad_cells(n_cells)
        params.n_seq_max = n_seqs
        params.kv_unified = True  # one cell pool: a shared prompt is stored once
        params.n_batch = max(_N_BATCH, n_seqs)
        params.n_ubatch = params.n_batch
        params.n_threads = params.n_threads_batch = n_threads
        params.flash_attn_type = (llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED if flash_attn
                                  else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED)
        try:
            # freed before its model (the wrapper registers itself on the model's exit stack)
            self._ctx = _internals.LlamaContext(model=model, params=params, verbose=False)
        except ValueError as exc:
            raise BackendError(
                f"llama.cpp could not create a batch context of {params.n_ctx} KV cells for {n_seqs} sequences: "
                f"{exc}; lower n or max_tokens, or pass LlamaCppBackend(batched=False)"
            ) from None
        self._batch = _internals.LlamaBatch(n_tokens=params.n_batch, embd=0, n_seq_max=1, verbose=False)
        self.handle = self._ctx  #: what a sampler chain samples from (``LlamaSampler.sample(handle, row)``)
        self.ctx = self._ctx.ctx
        self._mem = llama_cpp.llama_get_memory(self.ctx)
        self.n_cells = int(llama_cpp.llama_n_ctx(self.ctx))
        self.n_seqs = n_seqs
        self.n_batch = int(params.n_batch)
        self.n_vocab = int(llama_cpp.llama_vocab_n_tokens(model.vocab))

    def prefill(self, tokens: Sequence[int], seq_id: int, start: int = 0) -> int:
        """Decode ``tokens[start:]`` into ``seq_id`` (which already holds the positions before
        ``start``, a multiple of PREFILL_BLOCK) in aligned chunks; returns the logits row of the
        last token (valid until the next decode)."""
        if start >= len(tokens) or start % PREFILL_BLOCK:
            raise ValueError(f"cannot prefill from position {start} of {len(tokens)} tokens")
        last_row = 0
        for begin in range(start, len(tokens), PREFILL_BLOCK):
            chunk = tokens[begin : begin + PREFILL_BLOCK]
            final = begin + len(chunk) == len(tokens)
            self._fill([(tok, begin + j, seq_id, final and j == len(chunk) - 1) for j, tok in enumerate(chunk)])
            self._decode(f"the prompt of sequence {seq_id}")
            last_row = len(chunk) - 1
        return last_row

    def share(self, src: int, dsts: Sequence[int], upto: int = -1) -> None:
        """Give ``dsts`` the KV of ``src`` (positions before ``upto``; all if -1): in a unified
        cache this tags the same cells with more sequence ids, it copies nothing."""
        import llama_cpp

        for dst in dsts:
            llama_cpp.llama_memory_seq_cp(self._mem, src, dst, -1 if upto < 0 else 0, upto)

    def step(self, entries: Sequence[tuple[int, int, int]]) -> None:
        """One decode of ``(token, pos, seq_id)`` entries, logits for every one (row = its index)."""
        self._fill([(tok, pos, seq, True) for tok, pos, seq in entries])
        self._decode(f"a step of {len(entries)} sequences")

    def logits(self, row: int) -> np.ndarray:
        """The logits of ``row`` as a writable view of llama.cpp's own buffer (masks go in place)."""
        import llama_cpp

        return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(self.ctx, row), shape=(self.n_vocab,))

    def free(self, seq_ids: Sequence[int]) -> None:
        """Drop every cell of these sequences (cells still tagged by another sequence stay)."""
        import llama_cpp

        for seq_id in seq_ids:
            llama_cpp.llama_memory_seq_rm(self._mem, seq_id, -1, -1)

    def trim(self, seq_id: int, keep: int) -> None:
        """Drop ``seq_id``'s cells from position ``keep`` on; llama.cpp moves its allocation head
        back to the first freed cell, so what is decoded next lands right after the kept ones."""
        import llama_cpp

        llama_cpp.llama_memory_seq_rm(self._mem, seq_id, keep, -1)

    def clear(self) -> None:
        import llama_cpp

        llama_cpp.llama_memory_clear(self._mem, True)

    def used(self, seq_id: int) -> bool:
        """Whether any cell still holds ``seq_id`` (tests check cancelled sequences were freed)."""
        import llama_cpp

        return int(llama_cpp.llama_memory_seq_pos_max(self._mem, seq_id)) >= 0

    def close(self) -> None:
        self._batch.close()
        self._ctx.close()

    def _fill(self, entries: list[tuple[int, int, int, bool]]) -> None:
        b = self._batch.batch
        b.n_tokens = len(entries)
        for i, (tok, pos, seq, want_logits) in enumerate(entries):
            b.token[i] = tok
            b.pos[i] = pos
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = seq
            b.logits[i] = want_logits

    def _decode(self, what: str) -> None:
        import llama_cpp

        rc = llama_cpp.llama_decode(self.ctx, self._batch.batch)
        if rc != 0:
            reason = "no free KV slot" if rc == 1 else f"error code {rc}"
            raise BackendError(f"llama.cpp could not decode {what} ({reason}; context of {self.n_cells} cells)")
