"""Where spans go: install (or join) the tracer provider and attach agentkit's exporters.

This is the only global state agentkit keeps (DESIGN.md "Conventions"). It is kept apart from the
span helpers in :mod:`agentkit.tracing`, which only read it (``capture_content``) and re-export
``configure``; configuring is done once per process by a CLI or application, while the helpers
run on every node.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opentelemetry import trace

from agentkit._trace_export import (
    Exporters,
    console_processor,
    json_lines_processor,
    otlp_processor,
    otlp_traces_url,
)

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

__all__ = ["ENV_CAPTURE", "ENV_SERVICE_NAME", "capture_content", "configure"]

log = logging.getLogger("agentkit.tracing")  # the public module's name: what users filter on
ENV_CAPTURE = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
ENV_SERVICE_NAME = "OTEL_SERVICE_NAME"


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
