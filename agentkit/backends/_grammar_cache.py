"""Compiled output constraints, cached beside the in-process engines that compile them.

It lives under ``backends`` (not ``decoding``) because only an engine that builds its own logits
processors (llama.cpp via outlines) compiles anything; ``agentkit.decoding`` re-exports it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from agentkit import tracing
from agentkit.backends.base import OutputConstraint

C = TypeVar("C")


class GrammarCache(Generic[C]):
    """Compiled constraints keyed by (constraint, tokenizer): compiling an index for a JSON schema
    or a CFG costs far more than one SLM call, so it is done once per backend and tokenizer."""

    def __init__(self) -> None:
        self._compiled: dict[tuple[str, Hashable], C] = {}
        self.last_compile_ms: float = 0.0

    def get(self, constraint: OutputConstraint, tokenizer_id: Hashable, compile: Callable[[], C]) -> C:
        key = (constraint.canonical(), tokenizer_id)
        hit = key in self._compiled
        if not hit:
            start = time.perf_counter()
            self._compiled[key] = compile()
            self.last_compile_ms = (time.perf_counter() - start) * 1000
        else:
            self.last_compile_ms = 0.0
        # on the caller's span (the chat span: backends compile inside the request's context)
        tracing.annotate({tracing.GRAMMAR_COMPILE_MS: self.last_compile_ms, tracing.GRAMMAR_CACHE_HIT: hit})
        return self._compiled[key]

    def __len__(self) -> int:
        return len(self._compiled)
