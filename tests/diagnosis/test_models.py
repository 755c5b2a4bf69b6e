"""The evidence and diagnosis models: Kubernetes-shaped input, history round trips, the activity."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import ActivityEnvironment

from activities.diagnosis import DiagnosisActivities
from tests.diagnosis.support import request, series
from workflows.diagnosis import DiagnoseRequest, Diagnosis
from workflows.evidence import Evidence, PodStatus


def test_pods_accept_the_kubernetes_names_and_ours() -> None:
    camel = PodStatus.model_validate(
        {
            "name": "a",
            "lastState": {"reason": "OOMKilled", "exitCode": 137, "finishedAt": "2024-05-01T10:00:00"},
        }
    )
    snake = PodStatus.model_validate({"name": "a", "last_state": {"reason": "OOMKilled", "exit_code": 137}})
    assert camel.last_state is not None and snake.last_state is not None
    assert camel.last_state.exit_code == snake.last_state.exit_code == 137
    # A naive Kubernetes time is UTC, so it compares with aware ones.
    assert camel.last_state.finished_at == datetime(2024, 5, 1, 10, tzinfo=UTC)


def test_diagnosis_categories_are_closed() -> None:
    with pytest.raises(ValidationError):
        Diagnosis(category="service_down", confidence=0.5, explanation="x")  # type: ignore[arg-type]


def test_the_workflow_fallback_diagnosis_still_validates() -> None:
    fallback = Diagnosis(category="unknown", confidence=0.0, explanation="activity failed")
    assert fallback.evidence == [] and fallback.proposed_actions == [] and fallback.risks == []


def test_summary_mentions_every_kind_of_evidence() -> None:
    req = request(
        logs="2024-05-01T10:20:00Z ERROR dial tcp 10.0.0.1:5432: connect: connection refused\n",
        events=[{"type": "Warning", "reason": "BackOff", "message": "Back-off restarting failed container"}],
        pods=[{"name": "p-1", "restarts": 3, "waitingReason": "CrashLoopBackOff"}],
        nodes=[{"name": "n-1", "ready": False}],
        deployments=[{"name": "app", "revision": 4, "changedAt": "2024-05-01T10:00:00Z"}],
    )
    text = req.evidence.summary()
    for words in (
        "1 events (1 warnings: BackOff)",
        "pod p-1 CrashLoopBackOff, 3 restarts",
        "node n-1 NotReady",
        "deployment app revision 4",
        "logs: 1 lines in 1 templates, 1 anomalous",
    ):
        assert words in text
    assert Evidence().summary() == "no evidence sources configured for this alert"


def test_requests_and_diagnoses_survive_the_temporal_data_converter() -> None:
    req = request(
        logs="2024-05-01T10:20:00Z ERROR No space left on device\n",
        metrics=[series("node_filesystem_avail_bytes / node_filesystem_size_bytes", [0.1, 0.05, 0.01])],
        pods=[
            {
                "name": "p-1",
                "lastState": {"reason": "Error", "exitCode": 1, "finishedAt": "2024-05-01T10:20:00Z"},
            }
        ],
    )
    converter = pydantic_data_converter.payload_converter
    (back,) = converter.from_payloads(converter.to_payloads([req]), [DiagnoseRequest])
    assert back == req


async def test_the_diagnose_activity() -> None:
    req = request(logs="2024-05-01T10:20:00Z ERROR No space left on device\n")
    diagnosis = await ActivityEnvironment().run(DiagnosisActivities().diagnose, req)
    assert diagnosis.category == "disk_full"
    assert diagnosis.source == "heuristic"
    assert diagnosis.summary.startswith("checkout: disk_full")
