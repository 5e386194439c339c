"""Where spans go: the JSON-lines exporter, OTLP/HTTP (protobuf) endpoint resolution, and
``configure`` itself (idempotent, re-attachable after shutdown, flushed at exit, env-driven).

``configure`` installs the process-wide tracer provider, so it runs in subprocesses here: installed
in the test process it would trace every later test.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from typer.testing import CliRunner

import agentkit.tracing
from agentkit._trace_export import Exporters, JsonLinesExporter, otlp_traces_url
from agentkit.backends.replay import ReplayBackend
from agentkit.errors import ConfigError
from agentkit.graphs import mccot

ROOT = Path(__file__).resolve().parents[2]
CASSETTE = ROOT / "tests" / "cassettes" / "tracing_mccot.jsonl"
QUESTION = "Sara has 4 bags with 6 marbles in each bag. How many marbles does she have?"
KNOBS = "k=3, seed=7, answer_kind='number', max_tokens=160"  # the tracing_mccot cassette's knobs
LINE_KEYS = {"name", "trace_id", "span_id", "parent_span_id", "kind", "start_time_ns", "end_time_ns", "status",
             "status_description", "attributes", "events"}


# ------------------------------------------------------------------------- JSON-lines exporter
@pytest.fixture
def file_traced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Spans of the code under test written by JsonLinesExporter (a private provider, no global)."""
    path = tmp_path / "spans.jsonl"
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesExporter(path)))
    monkeypatch.setattr(agentkit.tracing, "tracer", lambda: provider.get_tracer("agentkit"))
    monkeypatch.setattr(agentkit.tracing, "enabled", lambda: True)
    yield path
    provider.shutdown()


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_json_lines_are_one_complete_span_per_line(file_traced: Path) -> None:
    graph = mccot.build(ReplayBackend(CASSETTE), k=3, seed=7, answer_kind="number", max_tokens=160).compile()
    graph.invoke({"question": QUESTION})
    lines = _lines(file_traced)
    assert sorted(s["name"] for s in lines) == sorted([
        "invoke_workflow mccot", "invoke_agent sample_rationales", f"chat replay:{CASSETTE.stem}",
        "node vote", "node select_rationale"])
    ids = {s["span_id"] for s in lines}
    for s in lines:
        assert set(s) == LINE_KEYS
        assert len(s["trace_id"]) == 32 and len(s["span_id"]) == 16
        assert s["parent_span_id"] is None or s["parent_span_id"] in ids
        assert isinstance(s["start_time_ns"], int) and s["end_time_ns"] >= s["start_time_ns"]
        assert s["status"] == "UNSET" and s["events"] == []
    root = next(s for s in lines if s["parent_span_id"] is None)
    assert root["name"] == "invoke_workflow mccot" and root["kind"] == "INTERNAL"
    assert {s["trace_id"] for s in lines} == {root["trace_id"]}
    chat = next(s for s in lines if s["name"].startswith("chat "))
    assert chat["kind"] == "CLIENT"
    assert chat["attributes"]["gen_ai.response.finish_reasons"] == ["stop"] * 3, "tuples become JSON lists"
    assert chat["attributes"]["gen_ai.request.choice.count"] == 3


def test_json_lines_record_errors_with_their_exception_event(file_traced: Path) -> None:
    with pytest.raises(RuntimeError), agentkit.tracing.span("node broken"):
        raise RuntimeError("disk on fire")
    (line,) = _lines(file_traced)
    assert line["status"] == "ERROR" and line["status_description"] == "disk on fire"
    assert line["attributes"]["error.type"] == "RuntimeError"
    (event,) = line["events"]
    assert event["name"] == "exception" and event["attributes"]["exception.message"] == "disk on fire"


def test_json_lines_exporter_names_a_missing_directory(tmp_path: Path) -> None:
    target = tmp_path / "no-such-dir" / "spans.jsonl"
    with pytest.raises(ConfigError, match="no-such-dir.*does not exist"):
        JsonLinesExporter(target)


def test_cli_run_rejects_a_trace_file_in_a_missing_directory(tmp_path: Path) -> None:
    from agentkit.cli import app

    target = tmp_path / "missing" / "spans.jsonl"
    result = CliRunner().invoke(app, ["run", "mccot", "--question", "2+2?", "--trace-file", str(target)])
    assert result.exit_code == 2
    assert "missing" in result.output and "does not exist" in result.output
    assert not agentkit.tracing.enabled(), "nothing may be installed when configure fails"


# ------------------------------------------------------------------------------- OTLP endpoints
@pytest.mark.parametrize(
    ("explicit", "env", "url"),
    [
        ("http://127.0.0.1:6006", {}, "http://127.0.0.1:6006/v1/traces"),
        ("http://h:4318/", {}, "http://h:4318/v1/traces"),
        ("http://h:4318/v1/traces", {}, "http://h:4318/v1/traces"),
        (None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector:4318"}, "https://collector:4318/v1/traces"),
        (None, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:9/custom"}, "http://c:9/custom"),
        (None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:1", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://b:2/t"},
         "http://b:2/t"),
        (None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:1", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
         "http://a:1/v1/traces"),
        (None, {}, None),
    ],
)
def test_otlp_traces_url(explicit: str | None, env: dict[str, str], url: str | None) -> None:
    assert otlp_traces_url(explicit, env) == url


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "127.0.0.1:6006"},
         "OTEL_EXPORTER_OTLP_ENDPOINT='127.0.0.1:6006' is not an http"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
         "OTEL_EXPORTER_OTLP_PROTOCOL='grpc'.*HTTP \\(protobuf\\) only"),
    ],
)
def test_bad_otlp_settings_are_config_errors_naming_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        otlp_traces_url(None, env)


def test_configure_validates_before_installing_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:6006")
    with pytest.raises(ConfigError, match="OTEL_EXPORTER_OTLP_ENDPOINT"):
        agentkit.tracing.configure(console=True)
    assert not agentkit.tracing.enabled()


# ------------------------------------------------------------------------ the Exporters processor
def test_exporters_attach_once_per_key_and_detach_on_shutdown() -> None:
    first, second = InMemorySpanExporter(), InMemorySpanExporter()
    exporters = Exporters()
    provider = TracerProvider()
    provider.add_span_processor(exporters)
    tracer = provider.get_tracer("t")
    assert exporters.attach("mem", lambda: SimpleSpanProcessor(first))
    assert not exporters.attach("mem", lambda: SimpleSpanProcessor(second)), "same key: attached once"
    tracer.start_span("one").end()
    assert [s.name for s in first.get_finished_spans()] == ["one"]
    exporters.shutdown()
    assert exporters.keys() == []
    tracer.start_span("lost").end()  # no exporter attached: goes nowhere, raises nothing
    assert exporters.attach("mem", lambda: SimpleSpanProcessor(second)), "attachable again after shutdown"
    tracer.start_span("two").end()
    assert [s.name for s in second.get_finished_spans()] == ["two"]
    assert [s.name for s in first.get_finished_spans()] == ["one"]


# ------------------------------------------------------------------- configure, in a subprocess
class _Receiver(BaseHTTPRequestHandler):
    requests: list[tuple[str, str, bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.server.requests.append((self.path, self.headers["Content-Type"], body))  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()
        self.wfile.write(b"")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def otlp_receiver() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


_SCRIPT = f"""
import json, sys
from agentkit import tracing
from agentkit.backends.replay import ReplayBackend
from agentkit.graphs import mccot

file1, file2, cassette = sys.argv[1:4]
graph = mccot.build(ReplayBackend(cassette), {KNOBS}).compile()
p1 = tracing.configure(trace_file=file1, console=True)
p2 = tracing.configure(trace_file=file1)
assert p1 is p2 and p1 is not None
graph.invoke({{"question": {QUESTION!r}}})
p1.shutdown()  # what `agentkit run` does after a run: flushes and detaches
assert tracing.configure(trace_file=file2) is p1
graph.invoke({{"question": {QUESTION!r}}})
print(json.dumps({{"resource": dict(p1.resource.attributes)}}))
# no shutdown here: the exporters must flush at interpreter exit
"""


def test_configure_is_idempotent_reattachable_and_flushes_at_exit(tmp_path: Path, otlp_receiver) -> None:
    file1, file2 = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    env = {**os.environ, "OTEL_SERVICE_NAME": "svc-under-test",
           "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp_receiver.server_address[1]}"}
    env.pop("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", None)
    env.pop("OTEL_RESOURCE_ATTRIBUTES", None)
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, str(file1), str(file2), str(CASSETTE)],
                          capture_output=True, text=True, timeout=120, env=env, cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)  # console spans went to stderr: stdout is only the script's JSON
    assert out["resource"]["service.name"] == "svc-under-test"
    assert out["resource"]["openinference.project.name"] == "svc-under-test", "Phoenix's project"
    one, two = _lines(file1), _lines(file2)
    assert len(one) == 5, "the same trace file configured twice is written once"
    assert len(two) == 5 and {s["trace_id"] for s in one}.isdisjoint({s["trace_id"] for s in two})
    assert proc.stderr.count('"name": "invoke_workflow mccot"') == 1, "console: first run only"

    names: list[str] = []
    traces: set[str] = set()
    for path, content_type, body in otlp_receiver.requests:
        assert path == "/v1/traces" and content_type == "application/x-protobuf"
        request = ExportTraceServiceRequest.FromString(body)
        for rs in request.resource_spans:
            resource = {a.key: a.value.string_value for a in rs.resource.attributes}
            assert resource["service.name"] == "svc-under-test"
            for ss in rs.scope_spans:
                for s in ss.spans:
                    names.append(s.name)
                    traces.add(s.trace_id.hex())
    assert sorted(names) == sorted([s["name"] for s in one + two]), "both runs reached the OTLP endpoint"
    assert traces == {s["trace_id"] for s in one + two}


_APP_SCRIPT = """
import sys
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from agentkit import tracing

mine = InMemorySpanExporter()
app_provider = TracerProvider()
app_provider.add_span_processor(SimpleSpanProcessor(mine))
trace.set_tracer_provider(app_provider)
assert tracing.configure(trace_file=sys.argv[1]) is app_provider, "the application's provider is kept"
with tracing.span("node shared"):
    pass
assert [s.name for s in mine.get_finished_spans()] == ["node shared"]
"""


def test_configure_adds_to_an_application_provider_instead_of_replacing_it(tmp_path: Path) -> None:
    path = tmp_path / "spans.jsonl"
    proc = subprocess.run([sys.executable, "-c", _APP_SCRIPT, str(path)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [s["name"] for s in _lines(path)] == ["node shared"]
