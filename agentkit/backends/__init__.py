"""Backends: one protocol (``base.Backend``), one module per engine."""

from __future__ import annotations

from agentkit.backends._chat_client import RetryPolicy
from agentkit.backends.base import (
    Backend,
    Choice,
    Generation,
    GenerationRequest,
    Message,
    OutputConstraint,
    Sampling,
    Usage,
)
from agentkit.backends.replay import ReplayBackend
from agentkit.errors import ConfigError

__all__ = [
    "Backend",
    "Choice",
    "Generation",
    "GenerationRequest",
    "Message",
    "OutputConstraint",
    "ReplayBackend",
    "RetryPolicy",
    "Sampling",
    "Usage",
    "make_backend",
]

BACKEND_KINDS = ("llamacpp", "vllm", "openai")


def make_backend(kind: str = "llamacpp", *, model: str | None = None, base_url: str | None = None) -> Backend:
    """Build a backend by name, as the CLI's --backend/--model/--base-url options describe it.

    ``vllm`` talks to a vLLM server (default http://127.0.0.1:8000/v1, as ``agentkit serve vllm``
    starts it); ``openai`` to any OpenAI-compatible endpoint (--base-url required, key from
    OPENAI_API_KEY). For both, --model is the served model name, asked from the server if omitted.
    """
    if kind == "llamacpp":
        if base_url is not None:
            raise ConfigError(
                "--base-url is for the vllm and openai backends; llamacpp runs in-process (use --model PATH.gguf)"
            )
        from agentkit.backends.llamacpp import LlamaCppBackend

        return LlamaCppBackend(model)
    if kind == "vllm":
        from agentkit.backends.vllm_server import DEFAULT_URL, VLLMServerBackend

        return VLLMServerBackend(base_url or DEFAULT_URL, model=model)
    if kind == "openai":
        from agentkit.backends.openai_compat import OpenAIBackend

        if base_url is None:
            raise ConfigError(
                "--backend openai needs --base-url (e.g. https://api.openai.com/v1 or http://127.0.0.1:8080/v1)"
            )
        return OpenAIBackend(base_url, model=model)
    raise ConfigError(f"unknown backend {kind!r}; available: {', '.join(BACKEND_KINDS)}")
