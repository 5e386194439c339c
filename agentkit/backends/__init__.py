"""Backends: one protocol (``base.Backend``), one module per engine."""

from __future__ import annotations

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
    "Sampling",
    "Usage",
    "make_backend",
]

BACKEND_KINDS = ("llamacpp",)


def make_backend(kind: str = "llamacpp", *, model: str | None = None, base_url: str | None = None) -> Backend:
    """Build a backend by name, as the CLI's --backend/--model/--base-url options describe it."""
    if kind == "llamacpp":
        from agentkit.backends.llamacpp import LlamaCppBackend

        return LlamaCppBackend(model)
    raise ConfigError(f"unknown backend {kind!r}; available: {', '.join(BACKEND_KINDS)}")
