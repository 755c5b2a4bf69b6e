"""The API's /metrics and the worker's metrics port move with an incident; both scrape without a key."""

from __future__ import annotations

import socket

import pytest

from activities.config import Settings
from tests.api.support import load
from tests.observability.conftest import Driven, Samples, Stack, value
from worker.telemetry import TelemetryError, install_worker_runtime, worker_runtime
from workflows import metrics

pytestmark = [pytest.mark.integration, pytest.mark.ansible]


def moved(after: Samples, before: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def test_the_api_counts_alerts_by_source_and_outcome_and_incidents_by_phase(
    stack: Stack, driven: Driven
) -> None:
    api, _ = await stack.scrape()
    before, _ = driven.before
    assert moved(api, before, "remediator_alerts_received_total", source="generic", outcome="started") == 1
    assert moved(api, before, "remediator_alerts_received_total", source="alertmanager") == 0
    # Counted in Temporal's visibility (eventually consistent), across every API and worker.
    assert (
        value(api, "remediator_incidents", phase="Resolved")
        >= value(before, "remediator_incidents", phase="Resolved") + 1
    )
    assert {dict(labels)["phase"] for name, labels in api if name == "remediator_incidents"} >= {
        "AwaitingApproval",
        "Resolved",
        "Failed",
    }


async def test_refused_alerts_are_counted_as_refused(stack: Stack) -> None:
    before, _ = await stack.scrape()
    webhook = load("alertmanager_firing.json")
    webhook["alerts"][0]["fingerprint"] = "0123456789abcdef"  # not its labels' fingerprint: refused
    response = await stack.http.post("/alerts/alertmanager", json=webhook)
    assert response.status_code == 422, response.text
    after, _ = await stack.scrape()
    assert (
        moved(after, before, "remediator_alerts_received_total", source="alertmanager", outcome="refused")
        == 1
    )


async def test_the_worker_serves_the_sdk_metrics_and_ours(stack: Stack, driven: Driven) -> None:
    _, worker = await stack.scrape()
    _, before = driven.before
    incident = {"workflow_type": "IncidentWorkflow"}
    # The worker exposes counters without `_total` (the SDK's default); prometheus_client's parser
    # names their samples `<name>_total`, as OpenMetrics does.
    assert moved(worker, before, f"{metrics.APPROVALS}_total", outcome="approved", **incident) == 1
    assert moved(worker, before, f"{metrics.ACTIONS}_total", executor="ansible", result="ok", **incident) == 1
    assert moved(worker, before, f"{metrics.TIME_TO_APPROVABLE}_count", **incident) == 1
    for phase in ("Received", "AwaitingApproval", "Executing", "Verifying", "Resolved"):
        assert moved(worker, before, f"{metrics.PHASE_ENTERED}_total", phase=phase, **incident) >= 1, phase
    # The SDK's own, from the same runtime.
    assert moved(worker, before, "temporal_workflow_completed_total", **incident) == 1
    assert (
        moved(worker, before, "temporal_activity_execution_latency_count", activity_type="ansible.apply") == 1
    )


def test_a_taken_worker_metrics_port_is_one_line_naming_the_setting() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(
            TelemetryError, match=f"REMEDIATOR_WORKER_METRICS_PORT: cannot serve metrics on 127.0.0.1:{port}"
        ):
            install_worker_runtime(Settings(worker_metrics_port=port))
    assert worker_runtime(Settings()) is None  # port 0: no endpoint, the SDK's default runtime
