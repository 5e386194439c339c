"""The one protocol every engine implements, and the request/response models it speaks.

A request describes *what* to generate (messages, n samples, sampling, an output constraint); each
backend decides *how* (one batched call on vLLM, a loop over a single llama.cpp context, ...). The
runtime never loops over samples itself, so a backend's real batching is what users get.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field


class Message(BaseModel):
    model_config = ConfigDict(frozen=True)
    role: Literal["system", "user", "assistant"]
    content: str


class Sampling(BaseModel):
    model_config = ConfigDict(frozen=True)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(256, ge=1)
    stop: tuple[str, ...] = ()
    seed: int | None = None


class OutputConstraint(BaseModel):
    """What the output must match. ``json_schema`` values are dicts; regex/grammar (Lark) are strings.

    ``whitespace="compact"`` allows no whitespace between JSON tokens: small models otherwise run
    away on newlines inside a constrained object. Each backend translates it to its engine's knob.
    """

    model_config = ConfigDict(frozen=True)
    kind: Literal["json_schema", "regex", "grammar"]
    value: Any
    whitespace: Literal["compact", "flexible"] = "compact"

    def canonical(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False, separators=(",", ":"))


class GenerationRequest(BaseModel):
    model_config = ConfigDict(frozen=True)
    messages: tuple[Message, ...]
    n: int = Field(1, ge=1, le=256)
    sampling: Sampling = Sampling()
    constraint: OutputConstraint | None = None

    def key(self) -> str:
        """Stable hash of everything that determines the output, for caching and replay."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:32]

    def summary(self, width: int = 80) -> str:
        """A short human description, used in error messages that must name the request."""
        last = self.messages[-1].content.replace("\n", " ") if self.messages else ""
        if len(last) > width:
            last = last[: width - 3] + "..."
        return f"n={self.n}, last message {last!r}"


class Choice(BaseModel):
    text: str
    finish_reason: str = "stop"


class Usage(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
        )


class Generation(BaseModel):
    choices: list[Choice]
    usage: Usage = Usage()
    latency_s: float = 0.0
    model: str = ""
    server: str = ""  #: the URL of the server that answered (HTTP backends; a pool names its endpoint)


@runtime_checkable
class Backend(Protocol):
    """An engine that turns a GenerationRequest into a Generation of ``request.n`` choices."""

    provider: str
    model: str

    async def generate(self, request: GenerationRequest) -> Generation: ...
