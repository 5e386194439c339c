"""agentkit: compose small language models into reasoning patterns with typed, verified, traced steps."""

from __future__ import annotations

from agentkit.agent import Agent, AgentResult, Retry
from agentkit.backends.base import Backend, Generation, GenerationRequest, Message, Sampling, Usage
from agentkit.errors import (
    AgentkitError,
    BackendError,
    BackendUnavailable,
    ConfigError,
    GraphBuildError,
    InputError,
    NoValidSample,
    SchemaViolation,
    TruncatedOutput,
)
from agentkit.graph import END, START, CompiledGraph, Graph, NodeFinished, Paused, RunFinished

__version__ = "0.1.0"

__all__ = [
    "END",
    "START",
    "Agent",
    "AgentResult",
    "AgentkitError",
    "Backend",
    "BackendError",
    "BackendUnavailable",
    "CompiledGraph",
    "ConfigError",
    "Generation",
    "GenerationRequest",
    "Graph",
    "GraphBuildError",
    "InputError",
    "Message",
    "NoValidSample",
    "NodeFinished",
    "Paused",
    "Retry",
    "RunFinished",
    "Sampling",
    "SchemaViolation",
    "TruncatedOutput",
    "Usage",
]
