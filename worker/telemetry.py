"""Traces and the worker's metrics endpoint; each is off, and costs nothing, until configured.

Traces follow OpenTelemetry's own environment variables. `OTEL_TRACES_EXPORTER` (`otlp`, `console`,
`none`) or an OTLP endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`)
turns them on; the exporter reads the rest itself (headers, timeout, certificates), and the resource
`OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`. Without them no provider is built and no
interceptor added. A tracer provider the process already installed (`opentelemetry-instrument`, a
program embedding us) is used as it is.

Metrics: `worker_runtime` is a Temporal runtime serving the SDK's metrics and ours (recorded through
the SDK's metric meters, workflows/metrics.py) in the Prometheus format on
REMEDIATOR_WORKER_METRICS_PORT.
"""

from __future__ import annotations

import os

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from temporalio.client import Interceptor
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from activities.config import Settings
from workflows import metrics

ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
PROTOCOLS = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
# Seconds from an incident's start until a human can decide: minutes matter, so do hours.
APPROVABLE_BUCKETS = [5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 4 * 3600.0]


class TelemetryError(ValueError):
    """The OTEL_* environment asks for something we cannot export to; the message names the variable."""


def tracer_provider() -> TracerProvider | None:
    """The process' tracer provider: one installed already, else one built from OTEL_*, else None."""
    installed = trace.get_tracer_provider()
    if isinstance(installed, TracerProvider):
        return installed
    provider = build_tracer_provider()
    if provider is not None:
        # Global, so the API's instrumentation, the Temporal interceptors and anything else share it.
        trace.set_tracer_provider(provider)
    return provider


def build_tracer_provider() -> TracerProvider | None:
    """A provider exporting where OTEL_* say, or None when they configure no exporter."""
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return None
    exporters = [_exporter(name) for name in _exporter_names()]
    if not exporters:
        return None
    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: "remediator"}))
    provider = TracerProvider(resource=resource)
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def _exporter_names() -> list[str]:
    names = [n.strip() for n in os.environ.get("OTEL_TRACES_EXPORTER", "").split(",") if n.strip()]
    if not names and any(os.environ.get(var) for var in ENDPOINTS):
        names = ["otlp"]
    return [n for n in names if n != "none"]


def _exporter(name: str) -> SpanExporter:
    if name == "console":
        return ConsoleSpanExporter()
    if name != "otlp":
        raise TelemetryError(f"OTEL_TRACES_EXPORTER: {name!r} is not one of otlp, console, none")
    protocol = next((os.environ[var] for var in PROTOCOLS if os.environ.get(var)), "http/protobuf")
    if protocol != "http/protobuf":
        raise TelemetryError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL: {protocol!r} is not supported; use http/protobuf "
            "(a collector's OTLP/HTTP port, usually 4318)"
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()  # endpoint, headers, timeout and TLS from OTEL_EXPORTER_OTLP_*


def tracing_interceptors(provider: TracerProvider | None) -> list[Interceptor]:
    """Spans for every client call, and (through a worker of that client) workflows and activities.

    The interceptor's workflow spans are complete the moment they are made, so a trace shows an
    incident's progress while it still waits for a human, hours before the workflow ends.
    """
    if provider is None:
        return []
    return [TracingInterceptor(provider.get_tracer("remediator.temporal"))]


def current_trace_id() -> str:
    """The trace being recorded right now as 32 hex digits, or empty (tracing off, or not sampled)."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid and context.trace_flags.sampled else ""


def worker_runtime(settings: Settings) -> Runtime | None:
    """A Temporal runtime serving metrics on REMEDIATOR_WORKER_METRICS_PORT; None when that is 0.

    Names and units stay as the SDK exports them by default (Temporal's own dashboards expect them):
    counters without `_total`, the SDK's latencies in milliseconds.
    """
    if not settings.worker_metrics_port:
        return None
    address = f"{settings.worker_metrics_host}:{settings.worker_metrics_port}"
    prometheus = PrometheusConfig(
        bind_address=address, histogram_bucket_overrides={metrics.TIME_TO_APPROVABLE: APPROVABLE_BUCKETS}
    )
    return Runtime(telemetry=TelemetryConfig(metrics=prometheus))


def install_worker_runtime(settings: Settings) -> None:
    """Make `worker_runtime` the process' default, before any client exists (`worker`, `dev`)."""
    try:
        runtime = worker_runtime(settings)
    except ValueError as err:  # the SDK's: the port is taken, or the host is not ours
        where = f"{settings.worker_metrics_host}:{settings.worker_metrics_port}"
        raise TelemetryError(
            f"REMEDIATOR_WORKER_METRICS_PORT: cannot serve metrics on {where}: {err}"
        ) from None
    if runtime is not None:
        Runtime.set_default(runtime, error_if_already_set=True)
