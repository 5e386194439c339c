"""OpenTelemetry span helpers following the GenAI semantic conventions.

Library code only talks to the OTel *API*; with no SDK configured every span is the API's no-op
span, so tracing costs next to nothing unless a user (or the CLI) calls ``configure``.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExportResult,
)
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

__all__ = ["JsonLinesExporter", "SpanKind", "configure", "enabled", "span", "tool_span", "tracer"]

_TRACER_NAME = "agentkit"


def tracer() -> trace.Tracer:
    return trace.get_tracer(_TRACER_NAME)


_DISABLED = nullcontext(trace.INVALID_SPAN)


def enabled() -> bool:
    """True once an SDK tracer provider is installed (by ``configure`` or by the application)."""
    return not isinstance(trace.get_tracer_provider(), (trace.ProxyTracerProvider, trace.NoOpTracerProvider))


def span(
    name: str, attributes: dict[str, Any] | None = None, kind: SpanKind = SpanKind.INTERNAL
) -> AbstractContextManager[Span]:
    """Open a span that records exceptions with ``error.type`` and ERROR status.

    With no provider installed this returns a shared no-op context: the OTel API's own no-op path
    still costs ~15 us per node, which bench/overhead.py showed as 10% of a model-free graph.
    """
    if not enabled():
        return _DISABLED
    return _recording_span(name, attributes, kind)


@contextmanager
def _recording_span(name: str, attributes: dict[str, Any] | None, kind: SpanKind) -> Iterator[Span]:
    with tracer().start_as_current_span(name, kind=kind, record_exception=False, set_status_on_exception=False) as s:
        if attributes and s.is_recording():
            s.set_attributes({k: v for k, v in attributes.items() if v is not None})
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
    attrs = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool_name}
    attrs.update(attributes or {})
    return span(f"execute_tool {tool_name}", attrs)


class JsonLinesExporter:
    """Writes one JSON object per finished span: the simplest trace a script or test can read."""

    def __init__(self, path: str) -> None:
        self._fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the exporter's life
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = []
        for s in spans:
            ctx = s.get_span_context()
            parent = s.parent.span_id if s.parent else None
            lines.append(
                json.dumps(
                    {
                        "name": s.name,
                        "trace_id": f"{ctx.trace_id:032x}",
                        "span_id": f"{ctx.span_id:016x}",
                        "parent_span_id": f"{parent:016x}" if parent else None,
                        "kind": s.kind.name,
                        "start_time_ns": s.start_time,
                        "end_time_ns": s.end_time,
                        "status": s.status.status_code.name,
                        "attributes": {k: (list(v) if isinstance(v, tuple) else v) for k, v in (s.attributes or {}).items()},
                    },
                    ensure_ascii=False,
                )
            )
        with self._lock:
            self._fh.write("".join(line + "\n" for line in lines))
            self._fh.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        with self._lock:
            self._fh.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def configure(
    *, trace_file: str | None = None, otlp_endpoint: str | None = None, console: bool = False, service_name: str | None = None
) -> TracerProvider | None:
    """Install a tracer provider once (the only global state agentkit keeps).

    ``otlp_endpoint`` defaults to OTEL_EXPORTER_OTLP_ENDPOINT; with no exporter asked for, nothing
    is installed and spans stay no-ops.
    """
    endpoint = otlp_endpoint or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not (trace_file or endpoint or console):
        return None
    name = service_name or os.environ.get("OTEL_SERVICE_NAME") or "agentkit"
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    if trace_file:
        provider.add_span_processor(SimpleSpanProcessor(JsonLinesExporter(trace_file)))  # type: ignore[arg-type]
    if endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        url = endpoint if endpoint.rstrip("/").endswith("/v1/traces") else endpoint.rstrip("/") + "/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
    if console:
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider
