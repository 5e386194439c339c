"""Backends: one protocol (``base.Backend``), one module per engine, and one kind table
(``register_backend``/``make_backend``/``backend_kinds``) that the CLI's --backend reads."""

from __future__ import annotations

from agentkit.backends._chat_client import RetryPolicy
from agentkit.backends._registry import (
    BackendFactory,
    backend_kinds,
    make_backend,
    register_backend,
    unregister_backend,
)
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

__all__ = [
    "Backend",
    "BackendFactory",
    "Choice",
    "Generation",
    "GenerationRequest",
    "Message",
    "OutputConstraint",
    "ReplayBackend",
    "RetryPolicy",
    "Sampling",
    "Usage",
    "backend_kinds",
    "make_backend",
    "register_backend",
    "unregister_backend",
]


def __getattr__(name: str) -> object:
    """``BACKEND_KINDS``, the old constant, now read from the kind table so it never goes stale."""
    if name == "BACKEND_KINDS":
        return tuple(backend_kinds())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
