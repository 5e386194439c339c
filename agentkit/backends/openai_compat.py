"""Any OpenAI-compatible chat endpoint: hosted APIs (the large-model tier of a cascade), llama.cpp's
server, or vLLM when only its OpenAI surface should be used.

Typed outputs go as ``response_format`` json_schema; an endpoint that rejects the schema fails with
``UnsupportedConstraint`` naming the URL and its message, instead of quietly answering in free
text. Regex and grammar constraints do not exist in the OpenAI API and are refused up front.

``OpenAICompatibleBackend`` holds what every such endpoint shares; ``OpenAIBackend`` and
``vllm_server.VLLMServerBackend`` are its provider subclasses (a dialect plus how ``n`` is served).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import ClassVar

from agentkit.backends._chat_client import ChatClient, RetryPolicy
from agentkit.backends._openai_format import Dialect, chat_body, error_for_status, parse_reply
from agentkit.backends.base import Generation, GenerationRequest, Usage
from agentkit.errors import AgentkitError, BackendError, ConfigError

DEFAULT_URL = "https://api.openai.com/v1"
#: where a local OpenAI-compatible server listens unless told otherwise (vLLM's default port)
LOCAL_URL = "http://127.0.0.1:8000/v1"


def _models_errors(base_url: str, model: str) -> Callable[[int, str], AgentkitError]:
    """How a failed GET /models reads (model discovery and health probes ask the same URL)."""

    def errors(status: int, body: str) -> AgentkitError:
        return error_for_status(status, body, url=f"{base_url}/models", model=model, constraint=None)

    return errors


def served_model(client: ChatClient) -> str:
    """The first model the server lists: a vLLM server serves exactly one (plus LoRA adapters)."""
    listing = client.get_json_sync("/models", _models_errors(client.base_url, "?"))
    try:
        return str(listing["data"][0]["id"])
    except (KeyError, IndexError, TypeError):
        raise BackendError(f"{client.base_url}/models lists no model; pass model= (the --served-model-name)") from None


class OpenAICompatibleBackend:
    """What every /chat/completions endpoint shares: transport, model discovery, error mapping,
    latency. A provider subclass picks its ``dialect`` (how constraints travel, see
    ``_openai_format``) and overrides ``_sample`` when its endpoint needs ``n`` handled its own way."""

    provider: str = "openai"
    dialect: ClassVar[Dialect] = "openai"
    #: the ConfigError for ``model=""``: what the user should pass instead differs per provider
    empty_model_message: ClassVar[str] = "--model is empty; pass the endpoint's model name"
    #: json_schema's strict flag (OpenAI's strict mode requires every property to be required)
    strict: bool = True
    #: the in-flight limit when none is given (None: none; see ChatClient's max_in_flight)
    default_max_in_flight: ClassVar[int | None] = None

    def __init__(
        self,
        base_url: str = LOCAL_URL,
        *,
        model: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 300.0,
        connect_timeout_s: float = 5.0,
        retry: RetryPolicy | None = None,
        max_connections: int = 256,
        max_in_flight: int | None = None,
    ) -> None:
        """``model`` is the served model name; when omitted it is asked from the server (GET /models),
        which also fails fast, naming the URL, when nothing is listening there. ``max_in_flight``
        caps the sequences at the server at once (a request for n samples counts n); the rest
        queue in the client, and ``timeout_s`` only starts once a request is sent."""
        self._client = ChatClient(
            base_url,
            api_key=api_key,
            timeout_s=timeout_s,
            connect_timeout_s=connect_timeout_s,
            retry=retry,
            max_connections=max_connections,
            max_in_flight=max_in_flight if max_in_flight is not None else self.default_max_in_flight,
        )
        self.base_url = self._client.base_url
        if model is not None and not model.strip():
            raise ConfigError(self.empty_model_message)
        self.model = model or served_model(self._client)

    async def generate(self, request: GenerationRequest) -> Generation:
        start = time.perf_counter()
        generation = await self._sample(request)
        generation.latency_s = time.perf_counter() - start
        generation.model = generation.model or self.model
        generation.server = self.base_url
        return generation

    async def _sample(self, request: GenerationRequest) -> Generation:
        """All ``request.n`` samples; by default one call carrying ``n``."""
        return await self._call(request, request.n)

    async def _call(self, request: GenerationRequest, n: int) -> Generation:
        """One POST /chat/completions asking for ``n`` choices."""
        body = chat_body(request, self.model, self.dialect, n=n, strict=self.strict)
        url = f"{self.base_url}/chat/completions"

        def errors(status: int, text: str) -> AgentkitError:
            return error_for_status(status, text, url=url, model=self.model, constraint=request.constraint)

        payload = await self._client.post_json("/chat/completions", body, errors)
        return parse_reply(payload, url=url, expected=n)

    @property
    def retry(self) -> RetryPolicy:
        """Retries of one request on this server (a pool sets none: it moves the request instead)."""
        return self._client.retry

    @retry.setter
    def retry(self, policy: RetryPolicy) -> None:
        self._client.retry = policy

    @property
    def in_flight(self) -> int:
        """Sequences sent to the server and not yet answered."""
        return self._client.in_flight

    @property
    def max_in_flight(self) -> int | None:
        return self._client.max_in_flight

    @max_in_flight.setter
    def max_in_flight(self, limit: int | None) -> None:
        """Set before the first request: several clients of one server (Ray actors) each take a share
        of its sequence slots, or the server's queue, and its timeouts, come back."""
        self._client.set_max_in_flight(limit)

    @property
    def timeout_s(self) -> float:
        return self._client.timeout_s

    @timeout_s.setter
    def timeout_s(self, seconds: float) -> None:
        """Set before the first request: how long a sent request may take (a long generation on a
        loaded CPU server can need more than the default)."""
        self._client.set_timeout(seconds)

    async def probe(self, timeout_s: float | None = None) -> None:
        """GET /models once, no retries: raises if the server does not answer (health checks).
        ``timeout_s`` bounds it (default: the client's own timeouts)."""
        await self._client.get_once("/models", _models_errors(self.base_url, self.model), timeout_s=timeout_s)

    async def aclose(self) -> None:
        await self._client.aclose()


class OpenAIBackend(OpenAICompatibleBackend):
    provider = "openai"
    dialect = "openai"

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        model: str | None = None,
        api_key: str | None = None,
        supports_n: bool = True,
        strict: bool = True,
        timeout_s: float = 300.0,
        connect_timeout_s: float = 5.0,
        retry: RetryPolicy | None = None,
        max_connections: int = 64,
        max_in_flight: int | None = None,
    ) -> None:
        """``api_key`` defaults to OPENAI_API_KEY. ``model`` is required for hosted APIs; for a local
        server it defaults to the first model it lists. ``supports_n=False`` is for endpoints that
        return one choice whatever ``n`` says (llama.cpp's server): the backend then sends one call per
        sample, concurrently, with seeds seed, seed+1, ... ``strict`` sets json_schema's strict flag
        (OpenAI's strict mode requires every property to be required)."""
        self.supports_n = supports_n
        self.strict = strict
        super().__init__(
            base_url,
            model=model,
            api_key=api_key if api_key is not None else os.environ.get("OPENAI_API_KEY"),
            timeout_s=timeout_s,
            connect_timeout_s=connect_timeout_s,
            retry=retry,
            max_connections=max_connections,
            max_in_flight=max_in_flight,
        )

    async def _sample(self, request: GenerationRequest) -> Generation:
        if self.supports_n or request.n == 1:
            return await self._call(request, request.n)
        return _merge(await asyncio.gather(*(self._call(_nth(request, i), 1) for i in range(request.n))))


def _nth(request: GenerationRequest, i: int) -> GenerationRequest:
    """Sample i of a request split into single-sample calls: distinct seeds keep samples distinct."""
    seed = request.sampling.seed
    if seed is None:
        return request
    return request.model_copy(update={"sampling": request.sampling.model_copy(update={"seed": seed + i})})


def _merge(parts: list[Generation]) -> Generation:
    usage = Usage()
    for part in parts:
        usage = usage + part.usage
    return Generation(choices=[c for p in parts for c in p.choices], usage=usage, model=parts[0].model if parts else "")
