"""OpenTelemetry spans for every run, node, model call and tool, in the GenAI semantic conventions.

Library code only talks to the OTel *API*. With no SDK provider installed every helper here
returns one shared no-op context before building a single attribute: the API's own no-op path
still cost ~15 us per node, 10% of a model-free graph in bench/overhead.py.

Span tree (DESIGN.md "Tracing conventions")::

    invoke_workflow {graph}          CHAIN   token rollup of the whole run
      invoke_agent {node}            AGENT   token rollup of the node (retries included)
        chat {model}                 LLM     CLIENT span, one backend request (n samples)
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
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from pydantic import BaseModel

from agentkit._trace_export import (
    Exporters,
    JsonLinesExporter,
    console_processor,
    json_lines_processor,
    otlp_processor,
    otlp_traces_url,
)
from agentkit.reducers import Tally

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

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

log = logging.getLogger(__name__)
_TRACER_NAME = "agentkit"
ENV_CAPTURE = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
ENV_SERVICE_NAME = "OTEL_SERVICE_NAME"

# -- attribute names that patterns and the runtime share (agentkit.* facts) ---------------------
VOTE_COUNTS = "agentkit.vote.counts"  # JSON object: answer -> votes
VOTE_WINNER = "agentkit.vote.winner"
VOTE_TOTAL = "agentkit.vote.total"
VOTE_SAMPLES = "agentkit.vote.samples"
VOTE_AGREEMENT = "agentkit.vote.agreement"
VERIFIER_VERDICT = "agentkit.verifier.verdict"
VERIFIER_SCORE = "agentkit.verifier.score"
CASCADE_TIER = "agentkit.cascade.tier"
CASCADE_ESCALATION_REASON = "agentkit.cascade.escalation_reason"
GRAMMAR_COMPILE_MS = "agentkit.grammar.compile_ms"
GRAMMAR_CACHE_HIT = "agentkit.grammar.cache_hit"
OI_KIND = "openinference.span.kind"


def tracer() -> trace.Tracer:
    return trace.get_tracer(_TRACER_NAME)


_DISABLED = nullcontext(trace.INVALID_SPAN)


def enabled() -> bool:
    """True once an SDK tracer provider is installed (by ``configure`` or by the application)."""
    return not isinstance(trace.get_tracer_provider(), (trace.ProxyTracerProvider, trace.NoOpTracerProvider))


# -- configuration: the only global state agentkit keeps -----------------------------------------


@dataclass
class _Setup:
    provider: TracerProvider | None = None
    exporters: Exporters | None = None
    capture_content: bool | None = None


_setup = _Setup()
_setup_lock = threading.Lock()


def configure(
    *,
    trace_file: str | os.PathLike[str] | None = None,
    otlp_endpoint: str | None = None,
    console: bool = False,
    service_name: str | None = None,
    capture_content: bool | None = None,
) -> TracerProvider | None:
    """Send spans somewhere; safe to call again (same destination twice = attached once).

    ``otlp_endpoint`` defaults to OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / OTEL_EXPORTER_OTLP_ENDPOINT
    (OTLP over HTTP, protobuf); the service name to OTEL_SERVICE_NAME, then "agentkit", and it is
    also the Phoenix project unless OTEL_RESOURCE_ATTRIBUTES names one. With no destination at all
    nothing is installed and spans stay no-ops. Returns the provider spans go to; its
    ``shutdown()`` flushes and detaches agentkit's exporters (a later ``configure`` attaches new
    ones), and they are flushed at interpreter exit in any case.
    """
    url = otlp_traces_url(otlp_endpoint)  # validates before anything is installed
    wanted = []
    if trace_file is not None:
        path = os.path.abspath(os.fspath(trace_file))
        wanted.append((f"file:{path}", lambda: json_lines_processor(path)))
    if url:
        wanted.append((f"otlp:{url}", lambda: otlp_processor(url)))
    if console:
        wanted.append(("console", console_processor))
    with _setup_lock:
        if capture_content is not None:
            _setup.capture_content = capture_content
        if not wanted:
            return _setup.provider
        attached = set(_setup.exporters.keys()) if _setup.exporters is not None else set()
        fresh = [(key, make()) for key, make in wanted if key not in attached]  # may raise: nothing installed yet
        if _setup.provider is None:
            _install(service_name)
        elif service_name and _service_name(_setup.provider) != service_name:
            log.warning("tracing is already configured for service %r; ignoring service_name=%r",
                        _service_name(_setup.provider), service_name)
        assert _setup.exporters is not None
        for key, processor in fresh:
            _setup.exporters.attach(key, lambda p=processor: p)  # type: ignore[misc]
            log.info("tracing: exporting spans to %s", key)
    return _setup.provider


def _install(service_name: str | None) -> None:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    current = trace.get_tracer_provider()
    exporters = Exporters()
    if isinstance(current, TracerProvider):  # the application set one up: add to it, never replace it
        provider = current
    else:
        name = service_name or os.environ.get(ENV_SERVICE_NAME) or "agentkit"
        attrs = {"service.name": name}
        if "openinference.project.name" not in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", ""):
            attrs["openinference.project.name"] = name  # Phoenix files the spans under this project
        provider = TracerProvider(resource=Resource.create(attrs))
        trace.set_tracer_provider(provider)
        if trace.get_tracer_provider() is not provider:
            log.warning("another tracer provider was installed first and cannot be replaced; spans stay no-ops")
    provider.add_span_processor(exporters)
    atexit.register(exporters.shutdown)  # flush even if nobody calls provider.shutdown()
    _setup.provider, _setup.exporters = provider, exporters


def _service_name(provider: TracerProvider) -> str | None:
    name = provider.resource.attributes.get("service.name")
    return str(name) if name is not None else None


def capture_content() -> bool:
    """Whether prompts, responses and node inputs/outputs go on spans (off unless opted in)."""
    if _setup.capture_content is not None:
        return _setup.capture_content
    return os.environ.get(ENV_CAPTURE, "").strip().lower() in ("true", "1", "yes", "span_only", "span_and_event")


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
    node: str, *, provider: str | None = None, model: str | None = None, inp: Any = None
) -> AbstractContextManager[Span]:
    """Span for one agent node; ends with the tokens of every model call inside it (retries too)."""
    if not enabled():
        return _DISABLED
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": node,
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": model,
        "agentkit.node.kind": "agent",
        "agentkit.node.name": node,
        "agent.name": node,
        OI_KIND: "AGENT",
    }
    if inp is not None and capture_content():
        attrs.update(_io("input", inp))
    return _rollup_span(f"invoke_agent {node}", attrs)


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


@contextmanager
def _rollup_span(name: str, attributes: dict[str, Any]) -> Iterator[Span]:
    tokens = _Tokens(_rollup.get())
    token = _rollup.set(tokens)
    try:
        with span(name, attributes) as s:
            try:
                yield s
            finally:
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
