"""The OpenAI chat-completions wire format: GenerationRequest -> JSON body, JSON reply -> Generation.

No I/O here: the transport (``_chat_client``) sends what this module builds, so the same request
shapes serve vLLM's server, llama.cpp's server and hosted APIs, and are unit-tested offline.

Two dialects differ only in how an output constraint travels:
- ``vllm``: JSON schemas go in ``response_format`` (json_schema); regex and Lark grammars go in
  vLLM's ``structured_outputs`` extra field. The older ``guided_json``/``guided_grammar`` fields are
  silently ignored by vLLM 0.32, so they are never sent. vLLM 0.32 also ignores the per-request
  ``disable_any_whitespace`` option (only the server-wide flag counts), so compact JSON is asked
  for inside the schema itself with llguidance's ``x-guidance`` options, which the server's
  ``guidance`` structured-output backend honours per request (``agentkit serve vllm`` selects it;
  xgrammar accepts the key and ignores it, so JSON there may carry whitespace, still validated).
- ``openai``: JSON schemas only (``response_format`` json_schema); the OpenAI API has no regex or
  grammar field, so those constraints are refused up front rather than silently dropped.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from agentkit.backends.base import Choice, Generation, GenerationRequest, OutputConstraint, Usage
from agentkit.errors import (
    AgentkitError,
    BackendError,
    ConfigError,
    ModelNotFound,
    TransientBackendError,
    UnsupportedConstraint,
)
from agentkit.vocab import error_at

Dialect = Literal["vllm", "openai"]

#: llguidance's per-schema options for JSON without whitespace between tokens.
COMPACT_JSON = {"whitespace_flexible": False, "item_separator": ",", "key_separator": ":"}

_SCHEMA_NAME = re.compile(r"[^a-zA-Z0-9_-]")


def _schema_name(schema: dict[str, Any]) -> str:
    """OpenAI requires a name matching ^[a-zA-Z0-9_-]{1,64}$ for every json_schema format."""
    title = str(schema.get("title") or "output")
    return _SCHEMA_NAME.sub("_", title)[:64] or "output"


def vllm_json_schema(constraint: OutputConstraint) -> dict[str, Any]:
    """The schema as vLLM's guidance backend should see it: compact whitespace asked for inline."""
    if not isinstance(constraint.value, dict):
        raise ConfigError(f"a json_schema constraint needs a dict schema, got {type(constraint.value).__name__}")
    schema = copy.deepcopy(constraint.value)
    if constraint.whitespace == "compact":
        schema["x-guidance"] = {**COMPACT_JSON, **schema.get("x-guidance", {})}
    return schema


_REPEAT = re.compile(r"~\s*(\d+)(?:\s*\.\.\s*(\d+))?")


def _literal_end(text: str, start: int, quote: str) -> int:
    """Index just past the string or regex literal opening at ``start`` (backslash escapes kept)."""
    i = start + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == quote or text[i] == "\n":
            return i + 1
        i += 1
    return i


def llguidance_lark(grammar: str) -> str:
    """Rewrite Lark's repetition ranges (``item ~ 2`` / ``item ~ 1..7``) as ``{2}`` / ``{1,7}``.

    agentkit's grammars are written in the ``lark`` package's syntax; the llguidance that vLLM 0.32
    pins (< 1.8) rejects ``~ n..m`` ("error parsing signed integer") but accepts the brace form,
    which newer llguidance reads identically. String and regex literals and comments are copied
    untouched."""
    out: list[str] = []
    i = 0
    while i < len(grammar):
        c = grammar[i]
        if c == "/" and grammar.startswith("//", i):
            end = grammar.find("\n", i)
            end = len(grammar) if end < 0 else end
        elif c in '"/':
            end = _literal_end(grammar, i, c)
        elif c == "~" and (m := _REPEAT.match(grammar, i)):
            low, high = m.group(1), m.group(2)
            out.append(f"{{{low},{high}}}" if high is not None else f"{{{low}}}")
            i = m.end()
            continue
        else:
            end = i + 1
        out.append(grammar[i:end])
        i = end
    return "".join(out)


def vllm_structured_outputs(constraint: OutputConstraint) -> dict[str, Any]:
    """vLLM's StructuredOutputsParams fields for one constraint (used by the server and the engine)."""
    if constraint.kind == "json_schema":
        return {"json": vllm_json_schema(constraint)}
    if not isinstance(constraint.value, str) or not constraint.value.strip():
        raise ConfigError(f"a {constraint.kind} constraint needs a non-empty string, got {constraint.value!r}")
    if constraint.kind == "regex":
        return {"regex": constraint.value}
    return {"grammar": llguidance_lark(constraint.value)}


def _constraint_fields(constraint: OutputConstraint, dialect: Dialect, *, strict: bool) -> dict[str, Any]:
    if constraint.kind == "json_schema":
        schema = vllm_json_schema(constraint) if dialect == "vllm" else constraint.value
        if not isinstance(schema, dict):
            raise ConfigError(f"a json_schema constraint needs a dict schema, got {type(schema).__name__}")
        fmt = {"name": _schema_name(schema), "schema": schema, "strict": strict}
        return {"response_format": {"type": "json_schema", "json_schema": fmt}}
    if dialect == "openai":
        raise UnsupportedConstraint(
            f"the OpenAI chat API has no {constraint.kind} constraint; use a JSON-schema output type, "
            "or VLLMServerBackend for a vLLM server (it sends regex and grammars as structured_outputs)"
        )
    return {"structured_outputs": vllm_structured_outputs(constraint)}


def chat_body(
    request: GenerationRequest, model: str, dialect: Dialect, *, n: int | None = None, strict: bool = True
) -> dict[str, Any]:
    """The JSON body of one /chat/completions call; ``n`` overrides the request's sample count
    (for endpoints that ignore ``n`` and get one call per sample)."""
    s = request.sampling
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        "n": request.n if n is None else n,
        "temperature": s.temperature,
        "top_p": s.top_p,
        "max_tokens": s.max_tokens,
        "stream": False,
    }
    if s.stop:
        body["stop"] = list(s.stop)
    if s.seed is not None:
        body["seed"] = s.seed
    if request.constraint is not None:
        body.update(_constraint_fields(request.constraint, dialect, strict=strict))
    return body


def decoded_samples(request: GenerationRequest) -> int:
    """How many samples vLLM must decode: greedy decoding (temperature 0) gives n identical
    samples, and vLLM rejects n > 1 with it ("n must be 1 when using greedy sampling"), so one is
    decoded and repeated (``replicate``), as the llama.cpp backend's n greedy samples would be."""
    return 1 if request.sampling.temperature == 0 else request.n


def replicate(generation: Generation, n: int) -> Generation:
    """A greedy generation's one choice as n choices; usage stays that of the one decode."""
    if len(generation.choices) == n:
        return generation
    return generation.model_copy(update={"choices": [generation.choices[0]] * n})


class _PromptDetails(BaseModel):
    cached_tokens: int | None = None


class _Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    prompt_tokens_details: _PromptDetails | None = None


class _Message(BaseModel):
    content: str | None = None
    refusal: str | None = None


class _Choice(BaseModel):
    index: int = 0
    message: _Message
    finish_reason: str | None = None


class _Reply(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str = ""
    choices: list[_Choice]
    usage: _Usage | None = None


def usage_from(usage: _Usage | None) -> Usage:
    """``input_tokens`` counts prompt tokens the server computed, ``cached_tokens`` those it served
    from its prefix cache (vLLM reports them with --enable-prompt-tokens-details), as with the
    llama.cpp backend, so cost reports do not count a cached prefix twice."""
    if usage is None:
        return Usage()
    cached = (usage.prompt_tokens_details.cached_tokens or 0) if usage.prompt_tokens_details else 0
    cached = min(cached, usage.prompt_tokens)
    return Usage(input_tokens=usage.prompt_tokens - cached, output_tokens=usage.completion_tokens, cached_tokens=cached)


def parse_reply(payload: Any, *, url: str, expected: int) -> Generation:
    """Validate a chat-completions reply and turn it into a Generation of ``expected`` choices.

    ``finish_reason`` is passed through untouched: "length" must reach validation as such, since a
    sample cut at max_tokens is truncated JSON, not a schema violation to resample.
    """
    try:
        reply = _Reply.model_validate(payload)
    except ValidationError as exc:
        where, msg = error_at(exc)
        raise BackendError(f"{url} sent a reply that is not a chat completion ({where}: {msg})") from None
    if len(reply.choices) != expected:
        raise BackendError(
            f"{url} returned {len(reply.choices)} choices for n={expected}; the endpoint ignores n "
            "(for such endpoints construct OpenAIBackend(..., supports_n=False))"
        )
    choices = []
    for c in sorted(reply.choices, key=lambda c: c.index):
        if c.message.content is None and c.message.refusal is not None:
            choices.append(Choice(text="", finish_reason="refusal"))
        else:
            choices.append(Choice(text=c.message.content or "", finish_reason=c.finish_reason or "unknown"))
    return Generation(choices=choices, usage=usage_from(reply.usage), model=reply.model)


def _error_message(body: str) -> str:
    """The human part of an error body: OpenAI's {"error": {"message"}}, FastAPI's {"detail"}, or raw text."""
    try:
        data = json.loads(body)
    except ValueError:
        return body.strip()[:500] or "(empty body)"
    if isinstance(data, dict):
        err = data.get("error", data.get("detail", data.get("message")))
        if isinstance(err, dict):
            err = err.get("message", err)
        if err is not None:
            return (err if isinstance(err, str) else json.dumps(err))[:500]
    return body.strip()[:500]


_CONSTRAINT_WORDS = re.compile(r"response_format|json_schema|structured|grammar|regex|guided|schema", re.I)


def error_for_status(
    status: int, body: str, *, url: str, model: str, constraint: OutputConstraint | None
) -> AgentkitError:
    """Map an HTTP error reply to the exception that tells the caller what to do."""
    message = _error_message(body)
    where = f"{url} answered HTTP {status}"
    if status in (408, 409, 425, 429) or status >= 500:
        return TransientBackendError(f"{where}: {message}")
    if status in (401, 403):
        return ConfigError(f"{where} (not authorised): {message}; check the API key (api_key= or OPENAI_API_KEY)")
    if status == 404:
        if "model" in message.lower():
            return ModelNotFound(
                f"{where}: {message}; the endpoint does not serve model {model!r} (see GET /v1/models)"
            )
        return ConfigError(f"{where}: {message}; is the base URL an OpenAI-compatible API root (ending in /v1)?")
    if constraint is not None and _CONSTRAINT_WORDS.search(message):
        return UnsupportedConstraint(
            f"{where}: the endpoint rejected the {constraint.kind} output constraint: {message}; "
            "simplify the output type, or use a backend that supports this constraint"
        )
    if status in (400, 413, 422):
        return ConfigError(f"{where}, rejecting the request: {message}")
    return BackendError(f"{where}: {message}")
