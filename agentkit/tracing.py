"""OpenTelemetry spans for every run, node, model call and tool, in the GenAI semantic conventions.

Library code only talks to the OTel *API*. With no SDK provider installed every helper here
returns one shared no-op context before building a single attribute: the API's own no-op path
still cost ~15 us per node, 10% of a model-free graph in bench/overhead.py.

Span tree (DESIGN.md "Tracing conventions")::

    invoke_workflow {graph}          CHAIN   token rollup of the whole run
      invoke_agent {node}            AGENT   token rollup of the node (retries included)
        chat {model}                 LLM     CLIENT span, one backend request (n samples)
        execute_tool {tool}          TOOL    a ToolAgent's calls, between its chats (same span)
      node {name}                    CHAIN   function / verifier / tool nodes
        execute_tool {tool}          TOOL    verifiers and tools

Spans carry both the OTel ``gen_ai.*`` names (current ones only) and OpenInference's
``openinference.span.kind`` / ``llm.*`` so Phoenix's LLM views fill in. ``llm.token_count.*`` is set
on chat spans only: Phoenix sums it over descendants itself, and a rollup there would count twice;
the rollups live in ``gen_ai.usage.*`` on agent and workflow spans. Prompt and response text is
recorded only when opted in (``configure(capture_content=True)`` or
OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true).

Parents come from OTel's context, a contextvar: asyncio tasks and ``asyncio.to_thread`` copy it,
so parallel branches and concurrent runs each nest under their own spans.

Installing a provider and exporters (``configure``) lives in :mod:`agentkit._tracing_setup` and is
re-exported here. The helpers below look up ``enabled`` and ``tracer`` as globals of this module on
every call, so replacing ``agentkit.tracing.enabled``/``tracer`` (tests, bench/overhead.py) takes
effect everywhere. A pattern's own attribute names belong to the pattern, not to this core.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from pydantic import BaseModel

# Re-exported: setup lives in _tracing_setup; the cascade's names moved to _pattern_spans.
from agentkit._pattern_spans import CASCADE_ESCALATION_REASON, CASCADE_TIER  # noqa: F401
from agentkit._trace_export import JsonLinesExporter
from agentkit._tracing_setup import ENV_CAPTURE, ENV_SERVICE_NAME, capture_content, configure  # noqa: F401
from agentkit.reducers import Tally

if TYPE_CHECKING:
    from agentkit.backends.base import Generation, GenerationRequest

__all__ = [
    "JsonLinesExporter",
    "SpanKind",
    "agent_span",
    "annotate",
    "annotate_tallies",
    "annotate_vote",
    "capture_content",
    "chat_span",
    "configure",
    "current_agent_span",
    "enabled",
    "node_span",
    "record_generation",
    "set_output",
    "span",
    "tool_span",
    "trace_headers",
    "tracer",
    "workflow_span",
]

_TRACER_NAME = "agentkit"

# -- attribute names that patterns and the runtime share (agentkit.* facts) ---------------------
VOTE_COUNTS = "agentkit.vote.counts"  # JSON object: answer -> votes
VOTE_WINNER = "agentkit.vote.winner"
VOTE_TOTAL = "agentkit.vote.total"
VOTE_SAMPLES = "agentkit.vote.samples"
VOTE_AGREEMENT = "agentkit.vote.agreement"
VERIFIER_VERDICT = "agentkit.verifier.verdict"
VERIFIER_SCORE = "agentkit.verifier.score"
GRAMMAR_COMPILE_MS = "agentkit.grammar.compile_ms"
GRAMMAR_CACHE_HIT = "agentkit.grammar.cache_hit"
OI_KIND = "openinference.span.kind"


def tracer() -> trace.Tracer:
    return trace.get_tracer(_TRACER_NAME)


_DISABLED = nullcontext(trace.INVALID_SPAN)


def enabled() -> bool:
    """True once an SDK tracer provider is installed (by ``configure`` or by the application)."""
    return not isinstance(trace.get_tracer_provider(), (trace.ProxyTracerProvider, trace.NoOpTracerProvider))


def trace_headers() -> dict[str, str]:
    """W3C ``traceparent`` (and ``tracestate``) of the current span, for an outgoing HTTP request.

    A server that continues the trace (vLLM started with --otlp-traces-endpoint) then files its own
    spans under agentkit's ``chat`` span, so one request is one trace end to end.
    """
    if not enabled():
        return {}
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


# -- span helpers ----------------------------------------------------------------------------


def span(
    name: str, attributes: dict[str, Any] | None = None, kind: SpanKind = SpanKind.INTERNAL
) -> AbstractContextManager[Span]:
    """Open a span that records exceptions with ``error.type`` and ERROR status."""
    if not enabled():
        return _DISABLED
    return _recording_span(name, attributes, kind)


@contextmanager
def _recording_span(name: str, attributes: dict[str, Any] | None, kind: SpanKind) -> Iterator[Span]:
    with tracer().start_as_current_span(name, kind=kind, record_exception=False, set_status_on_exception=False) as s:
        if attributes and s.is_recording():
            s.set_attributes(_clean(attributes))
        try:
            yield s
        except BaseException as exc:
            if s.is_recording():
                s.record_exception(exc)
                s.set_attribute("error.type", type(exc).__qualname__)
                s.set_status(Status(StatusCode.ERROR, str(exc)[:500]))
            raise


def tool_span(tool_name: str, attributes: dict[str, Any] | None = None) -> AbstractContextManager[Span]:
    """Span for one tool or verifier execution (``execute_tool {tool}``)."""
    if not enabled():
        return _DISABLED
    attrs = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool_name, "tool.name": tool_name,
             OI_KIND: "TOOL"}
    attrs.update(attributes or {})
    return span(f"execute_tool {tool_name}", attrs)


def node_span(node: str, kind: str) -> AbstractContextManager[Span]:
    """Span for a function, verifier or tool node of a graph (``node {name}``)."""
    if not enabled():
        return _DISABLED
    return span(f"node {node}", {"agentkit.node.kind": kind, "agentkit.node.name": node, OI_KIND: "CHAIN"})


def workflow_span(graph: str, inp: Any = None) -> AbstractContextManager[Span]:
    """Span for one graph run; ends with the run's token totals in ``gen_ai.usage.*``."""
    if not enabled():
        return _DISABLED
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": "invoke_workflow", "gen_ai.workflow.name": graph, OI_KIND: "CHAIN"
    }
    if inp is not None and capture_content():
        attrs.update(_io("input", inp))
    return _rollup_span(f"invoke_workflow {graph}", attrs)


def agent_span(
    node: str, *, provider: str | None = None, model: str | None = None, inp: Any = None, kind: str = "agent"
) -> AbstractContextManager[Span]:
    """Span for one agent node; ends with the tokens of every model call inside it (retries too)."""
    if not enabled():
        return _DISABLED
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": node,
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": model,
        "agentkit.node.kind": kind,
        "agentkit.node.name": node,
        "agent.name": node,
        OI_KIND: "AGENT",
    }
    if inp is not None and capture_content():
        attrs.update(_io("input", inp))
    return _rollup_span(f"invoke_agent {node}", attrs, agent=True)


def current_agent_span() -> Span | None:
    """The ``invoke_agent`` span the caller runs directly inside (no span opened since), if any.

    An agent that would open its own agent span (a ToolAgent's episode) asks this first: run as a
    graph node it is already inside the node's span, and a second one nested in it would show the
    node twice in every agent view. Its facts go on the node's span instead.
    """
    s = _open_agent.get()
    return s if s is not None and trace.get_current_span() is s else None


def set_output(s: Span, value: Any) -> None:
    """Record a span's result as ``output.value``, only when content capture is on."""
    if s.is_recording() and capture_content():
        s.set_attributes(_io("output", value))


def chat_span(*, agent: str, provider: str, model: str, request: GenerationRequest) -> AbstractContextManager[Span]:
    """CLIENT span for one backend request (``chat {model}``), n samples included."""
    if not enabled():
        return _DISABLED
    sampling = request.sampling
    constraint = request.constraint.kind if request.constraint is not None else "none"
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": model,
        "gen_ai.request.choice.count": request.n,
        "gen_ai.request.temperature": sampling.temperature,
        "gen_ai.request.top_p": sampling.top_p,
        "gen_ai.request.max_tokens": sampling.max_tokens,
        "gen_ai.request.seed": sampling.seed,
        "gen_ai.request.stop_sequences": list(sampling.stop) or None,
        "gen_ai.output.type": "json" if constraint == "json_schema" else "text",
        "gen_ai.agent.name": agent,
        "agentkit.constraint.kind": constraint,
        OI_KIND: "LLM",
        "llm.model_name": model,
        "llm.provider": provider,
        "llm.invocation_parameters": json.dumps(
            {"n": request.n, "temperature": sampling.temperature, "top_p": sampling.top_p,
             "max_tokens": sampling.max_tokens, "seed": sampling.seed}
        ),
    }
    if capture_content():
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        attrs["gen_ai.input.messages"] = json.dumps(
            [{"role": m["role"], "parts": [{"type": "text", "content": m["content"]}]} for m in messages],
            ensure_ascii=False,
        )
        attrs["input.value"] = json.dumps(messages, ensure_ascii=False)
        attrs["input.mime_type"] = "application/json"
        for i, m in enumerate(messages):
            attrs[f"llm.input_messages.{i}.message.role"] = m["role"]
            attrs[f"llm.input_messages.{i}.message.content"] = m["content"]
    return span(f"chat {model}", attrs, kind=SpanKind.CLIENT)


def record_generation(s: Span, generation: Generation, *, model: str) -> None:
    """Put a response on its chat span and add its tokens to the enclosing agent/workflow rollups."""
    usage = generation.usage
    prompt = usage.input_tokens + usage.cached_tokens  # the convention counts cached prompt tokens too
    tokens = _rollup.get()
    if tokens is not None:
        tokens.add(prompt, usage.output_tokens, usage.cached_tokens)
    if not s.is_recording():
        return
    attrs: dict[str, Any] = {
        "gen_ai.response.model": generation.model or model,
        "gen_ai.response.finish_reasons": [c.finish_reason for c in generation.choices],
        "gen_ai.usage.input_tokens": prompt,
        "gen_ai.usage.output_tokens": usage.output_tokens,
        "gen_ai.usage.cache_read.input_tokens": usage.cached_tokens,
        "llm.token_count.prompt": prompt,
        "llm.token_count.completion": usage.output_tokens,
        "llm.token_count.total": prompt + usage.output_tokens,
        "llm.token_count.prompt_details.cache_read": usage.cached_tokens,
        "agentkit.latency_s": generation.latency_s,
    }
    if generation.server:  # which server answered (in a pool, the endpoint the request went to)
        url = urlsplit(generation.server)
        attrs["server.address"] = url.hostname or ""
        attrs["server.port"] = url.port or (443 if url.scheme == "https" else 80)
    if capture_content():
        texts = [c.text for c in generation.choices]
        attrs["gen_ai.output.messages"] = json.dumps(
            [{"role": "assistant", "parts": [{"type": "text", "content": c.text}], "finish_reason": c.finish_reason}
             for c in generation.choices],
            ensure_ascii=False,
        )
        attrs["output.value"] = texts[0] if len(texts) == 1 else json.dumps(texts, ensure_ascii=False)
        attrs["output.mime_type"] = "text/plain" if len(texts) == 1 else "application/json"
        for i, text in enumerate(texts):
            attrs[f"llm.output_messages.{i}.message.role"] = "assistant"
            attrs[f"llm.output_messages.{i}.message.content"] = text
    s.set_attributes(attrs)


def annotate(attributes: Mapping[str, Any] | None = None, /, **more: Any) -> None:
    """Set attributes on whatever span is current: how a node or backend adds its own facts.

    Names are used as given (pass a mapping for dotted names, e.g. ``{"agentkit.cascade.tier": 1}``);
    dicts, models and mixed lists are stored as JSON text, None values are skipped.
    """
    if not enabled():
        return
    s = trace.get_current_span()
    if s.is_recording():
        s.set_attributes(_clean({**(attributes or {}), **more}))


def annotate_vote(counts: Mapping[str, int], *, samples: int | None = None) -> None:
    """Record a vote on the current span: tally, winner (first of the best), total, agreement.

    ``agreement`` is winner votes / ``samples`` (the samples asked for, so abstentions count
    against it) or / total votes when ``samples`` is not given.
    """
    if enabled():
        annotate(_vote_facts("agentkit.vote", counts, samples))


def annotate_tallies(s: Span, update: Mapping[str, Any]) -> None:
    """Record every ``Tally`` a node wrote as its vote, so each voting pattern's tally is on its trace.

    Facts the node set itself win (MC-CoT's agreement counts abstentions); a node writing several
    tallies gets them under ``agentkit.vote.<key>.*``.
    """
    if not s.is_recording():
        return
    tallies = {key: value for key, value in update.items() if isinstance(value, Tally)}
    present = set(getattr(s, "attributes", None) or ())
    for key, tally in tallies.items():
        facts = _vote_facts("agentkit.vote" if len(tallies) == 1 else f"agentkit.vote.{key}", tally.counts, None)
        s.set_attributes(_clean({k: v for k, v in facts.items() if k not in present}))


def _vote_facts(prefix: str, counts: Mapping[str, int], samples: int | None) -> dict[str, Any]:
    total = sum(counts.values())
    winner = max(counts, key=lambda a: counts[a]) if counts else None  # max keeps the first of equals
    denom = samples or total
    return {
        f"{prefix}.counts": dict(counts),
        f"{prefix}.total": total,
        f"{prefix}.winner": winner,
        f"{prefix}.samples": samples,
        f"{prefix}.agreement": counts[winner] / denom if winner is not None and denom else 0.0,
    }


# -- token rollups ---------------------------------------------------------------------------


class _Tokens:
    """Token counts of one agent or workflow span; an addition also reaches every enclosing one."""

    __slots__ = ("cached", "calls", "input", "output", "up")

    def __init__(self, up: _Tokens | None) -> None:
        self.up = up
        self.calls = self.input = self.output = self.cached = 0

    def add(self, inp: int, out: int, cached: int) -> None:
        t: _Tokens | None = self
        while t is not None:
            t.calls += 1
            t.input += inp
            t.output += out
            t.cached += cached
            t = t.up

    def attributes(self) -> dict[str, Any]:
        return {
            "gen_ai.usage.input_tokens": self.input,
            "gen_ai.usage.output_tokens": self.output,
            "gen_ai.usage.cache_read.input_tokens": self.cached,
            "agentkit.llm.calls": self.calls,
        }


_rollup: ContextVar[_Tokens | None] = ContextVar("agentkit_token_rollup", default=None)
_open_agent: ContextVar[Span | None] = ContextVar("agentkit_open_agent_span", default=None)


@contextmanager
def _rollup_span(name: str, attributes: dict[str, Any], *, agent: bool = False) -> Iterator[Span]:
    tokens = _Tokens(_rollup.get())
    token = _rollup.set(tokens)
    try:
        with span(name, attributes) as s:
            opened = _open_agent.set(s if agent else None)
            try:
                yield s
            finally:
                _open_agent.reset(opened)
                if s.is_recording():
                    s.set_attributes(tokens.attributes())
    finally:
        _rollup.reset(token)


# -- attribute values ------------------------------------------------------------------------


def _io(direction: str, value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        return {f"{direction}.value": value, f"{direction}.mime_type": "text/plain"}
    return {f"{direction}.value": _json(value), f"{direction}.mime_type": "application/json"}


def _json(value: Any) -> str:
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    if isinstance(value, Sequence) and not isinstance(value, str) and value and isinstance(value[0], BaseModel):
        return "[" + ",".join(v.model_dump_json() for v in value) + "]"
    return json.dumps(value, ensure_ascii=False, default=_fallback)


def _fallback(value: Any) -> Any:
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else str(value)


_PRIMITIVES = (str, bool, int, float)


def _clean(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """OTel attributes are primitives or homogeneous lists of them; anything else becomes JSON."""
    out: dict[str, Any] = {}
    for key, value in attributes.items():
        if value is None:
            continue
        if isinstance(value, _PRIMITIVES):
            out[key] = value
        elif isinstance(value, (list, tuple)) and all(isinstance(v, _PRIMITIVES) for v in value) and (
            len({type(v) for v in value}) <= 1
        ):
            out[key] = list(value)
        else:
            out[key] = _json(value)
    return out
