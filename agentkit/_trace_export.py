"""Where finished spans go: a JSON-lines file, OTLP/HTTP (protobuf), the console.

``configure`` (in :mod:`agentkit._tracing_setup`, re-exported by :mod:`agentkit.tracing`) may be
called more than once (a CLI run, then a script, a test), but a process has exactly one global
tracer provider. So agentkit installs one span processor of its own, :class:`Exporters`, and
attaches exporters to it by key: asking twice for the same file or endpoint is a no-op, and
``shutdown`` flushes and detaches them so a later ``configure`` can attach new ones.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

from agentkit.errors import ConfigError

log = logging.getLogger(__name__)

#: Standard OTel variables, read when ``configure`` gets no explicit endpoint.
ENV_TRACES_ENDPOINT = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
ENV_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
_ENV_PROTOCOLS = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")


def otlp_traces_url(explicit: str | None, environ: Mapping[str, str] = os.environ) -> str | None:
    """The URL spans are POSTed to, or None when no endpoint is configured.

    As the OTel spec says: a traces-specific endpoint is used as given, a base endpoint gets
    ``/v1/traces`` appended. Only HTTP/protobuf is spoken, so a gRPC protocol setting is an error
    rather than a silent mismatch (Phoenix serves HTTP on 6006 and gRPC on 4317).
    """
    if explicit:
        source, url = "otlp_endpoint", explicit
    elif environ.get(ENV_TRACES_ENDPOINT):
        source, url = ENV_TRACES_ENDPOINT, environ[ENV_TRACES_ENDPOINT]
        _check_url(source, url)
        return url
    elif environ.get(ENV_ENDPOINT):
        source, url = ENV_ENDPOINT, environ[ENV_ENDPOINT]
    else:
        return None
    _check_url(source, url)
    for var in _ENV_PROTOCOLS:
        protocol = environ.get(var)
        if protocol and protocol != "http/protobuf":
            raise ConfigError(
                f"{var}={protocol!r}: agentkit exports OTLP over HTTP (protobuf) only; "
                f"unset it or set it to 'http/protobuf' and point {source} at the collector's HTTP port"
            )
    base = url.rstrip("/")
    return base if base.endswith("/v1/traces") else base + "/v1/traces"


def _check_url(source: str, url: str) -> None:
    if not url.startswith(("http://", "https://")):
        raise ConfigError(
            f"{source}={url!r} is not an http(s) URL; give the collector's OTLP/HTTP address, "
            "e.g. http://127.0.0.1:6006 for Phoenix"
        )


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


class JsonLinesExporter(SpanExporter):
    """One JSON object per finished span: the simplest trace a script or a test can read."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        target = Path(path)
        if not target.parent.is_dir():
            raise ConfigError(f"trace file {target}: directory {target.parent} does not exist; create it first")
        try:
            self._fh = target.open("a", encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"trace file {target} cannot be opened for writing: {exc.strerror}") from None
        self.path = target
        self._lock = threading.Lock()

    @staticmethod
    def record(span: ReadableSpan) -> dict[str, Any]:
        ctx = span.get_span_context()
        parent = span.parent.span_id if span.parent else None
        return {
            "name": span.name,
            "trace_id": f"{ctx.trace_id:032x}",
            "span_id": f"{ctx.span_id:016x}",
            "parent_span_id": f"{parent:016x}" if parent else None,
            "kind": span.kind.name,
            "start_time_ns": span.start_time,
            "end_time_ns": span.end_time,
            "status": span.status.status_code.name,
            "status_description": span.status.description,
            "attributes": {k: _jsonable(v) for k, v in (span.attributes or {}).items()},
            "events": [
                {"name": e.name, "time_ns": e.timestamp,
                 "attributes": {k: _jsonable(v) for k, v in (e.attributes or {}).items()}}
                for e in span.events
            ],
        }

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        text = "".join(json.dumps(self.record(s), ensure_ascii=False, default=str) + "\n" for s in spans)
        with self._lock:
            if self._fh.closed:
                return SpanExportResult.FAILURE
            self._fh.write(text)
            self._fh.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        with self._lock:
            self._fh.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def json_lines_processor(path: str | os.PathLike[str]) -> SpanProcessor:
    # synchronous on purpose: the file is complete the moment a run returns, even if the process dies
    return SimpleSpanProcessor(JsonLinesExporter(path))


def otlp_processor(url: str) -> SpanProcessor:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return BatchSpanProcessor(OTLPSpanExporter(endpoint=url))


def console_processor() -> SpanProcessor:
    # stderr, because `agentkit run` prints its result as JSON on stdout
    return SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stderr))


class Exporters(SpanProcessor):
    """The one processor agentkit adds to a provider; exporters are attached to it by key."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_key: dict[str, SpanProcessor] = {}
        self._active: tuple[SpanProcessor, ...] = ()

    def keys(self) -> list[str]:
        return list(self._by_key)

    def attach(self, key: str, make: Callable[[], SpanProcessor]) -> bool:
        """Attach ``make()`` under ``key`` unless that key is attached already; True if attached now."""
        with self._lock:
            if key in self._by_key:
                return False
            self._by_key[key] = make()
            self._active = tuple(self._by_key.values())
            return True

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        for p in self._active:
            p.on_start(span, parent_context=parent_context)

    def _on_ending(self, span: Span) -> None:
        for p in self._active:
            p._on_ending(span)

    def on_end(self, span: ReadableSpan) -> None:
        for p in self._active:
            p.on_end(span)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        flushed = True
        for p in self._active:  # every exporter gets its flush, even after one failed
            flushed = p.force_flush(timeout_millis) and flushed
        return flushed

    def shutdown(self) -> None:
        """Flush and close every exporter, then forget them (a later ``configure`` may attach anew)."""
        with self._lock:
            procs, self._by_key, self._active = self._active, {}, ()
        for p in procs:
            try:
                p.shutdown()
            except Exception:  # one broken exporter must not keep the others from flushing
                log.exception("span exporter %r failed to shut down", p)
