"""One trace from the webhook through the workflow to each activity, and its id in the incident."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind
from temporalio.api.enums.v1 import EventType

from tests.observability.conftest import Driven, Stack
from worker.telemetry import TelemetryError, build_tracer_provider, tracer_provider, tracing_interceptors
from workflows.activity_names import DIAGNOSE, GATHER_EVIDENCE, MEMORY_RECORD_INCIDENT, executor_op

pytestmark = [pytest.mark.integration, pytest.mark.ansible]


def webhook_span(spans: tuple[ReadableSpan, ...]) -> ReadableSpan:
    """The API's server span of the POST /alerts whose trace started the incident's workflow."""
    starts = {
        s.context.trace_id
        for s in spans
        if s.name == "SignalWithStartWorkflow:IncidentWorkflow" and s.context
    }
    opened = [
        s
        for s in spans
        if s.kind == SpanKind.SERVER
        and s.attributes is not None
        and s.attributes.get("http.route") == "/alerts"
        and s.context is not None
        and s.context.trace_id in starts
    ]
    assert len(opened) == 1, sorted({s.name for s in spans})
    return opened[0]


async def test_one_trace_from_the_webhook_through_the_workflow_to_each_activity(
    stack: Stack, driven: Driven
) -> None:
    spans = stack.spans.get_finished_spans()
    root = webhook_span(spans)
    assert root.context is not None
    trace_id = root.context.trace_id
    trace = [s for s in spans if s.context is not None and s.context.trace_id == trace_id]
    by_name = {s.name: s for s in trace}

    start = by_name["SignalWithStartWorkflow:IncidentWorkflow"]
    run = by_name["RunWorkflow:IncidentWorkflow"]
    assert start.parent is not None and start.parent.span_id in {
        s.context.span_id for s in trace if s.context
    }
    assert (
        run.parent is not None and start.context is not None and run.parent.span_id == start.context.span_id
    )

    # Every activity the incident scheduled ran in this trace: the API's request is their ancestor.
    history = [e async for e in stack.client.get_workflow_handle(driven.incident_id).fetch_history_events()]
    scheduled = {
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }
    assert {GATHER_EVIDENCE, DIAGNOSE, executor_op("ansible", "apply"), MEMORY_RECORD_INCIDENT} <= scheduled
    ran = {s.name.removeprefix("RunActivity:") for s in trace if s.name.startswith("RunActivity:")}
    assert scheduled and scheduled <= ran, f"activities outside the trace: {scheduled - ran}"

    # The incident names its trace: in its state, its first timeline entry and the Web UI's details.
    hex_id = format(trace_id, "032x")
    assert driven.state.trace_id == hex_id
    received = next(e for e in driven.state.timeline if e.event == "alert received")
    assert received.detail.endswith(f"trace {hex_id}")


def test_no_otel_settings_no_tracing(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    assert build_tracer_provider() is None
    assert tracer_provider() is None  # nothing installed either: no interceptor, no span
    assert tracing_interceptors(None) == []
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    assert build_tracer_provider() is None


def test_unusable_otel_settings_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "zipkin")
    with pytest.raises(TelemetryError, match="OTEL_TRACES_EXPORTER: 'zipkin'"):
        build_tracer_provider()
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    with pytest.raises(TelemetryError, match="OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc'"):
        build_tracer_provider()


@contextlib.contextmanager
def otlp_collector() -> Iterator[tuple[str, list[ExportTraceServiceRequest]]]:
    """A stand-in OpenTelemetry collector at the wire: OTLP/HTTP protobuf on /v1/traces."""
    received: list[ExportTraceServiceRequest] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            assert self.path == "/v1/traces", self.path
            received.append(ExportTraceServiceRequest.FromString(body))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


def test_an_otlp_endpoint_alone_exports_spans_there(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    with otlp_collector() as (endpoint, received):
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        provider = build_tracer_provider()
        assert provider is not None
        with provider.get_tracer("test").start_as_current_span("POST /alerts"):
            pass
        assert provider.force_flush(10_000)
        provider.shutdown()
    [request] = received
    [resource_spans] = request.resource_spans
    attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert attributes["service.name"] == "remediator"
    assert [s.name for scope in resource_spans.scope_spans for s in scope.spans] == ["POST /alerts"]
