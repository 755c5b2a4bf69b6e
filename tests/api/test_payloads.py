"""Parsing and fingerprints of real-shaped Alertmanager, Grafana and generic payloads (no servers)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import TypeAdapter, ValidationError

from api.errors import field_path
from api.schemas import AlertmanagerWebhook, GenericAlert, GenericBody, GrafanaWebhook
from tests.api.support import load
from workflows.alerts import label_fingerprint

generic = TypeAdapter[GenericAlert | list[GenericAlert]](GenericBody)


def test_alertmanager_alert_keeps_its_own_fingerprint_and_fields() -> None:
    hook = AlertmanagerWebhook.model_validate(load("alertmanager_firing.json"))
    assert (hook.version, hook.status, hook.receiver, hook.truncatedAlerts) == (
        "4",
        "firing",
        "remediator",
        0,
    )
    assert hook.groupLabels == {"alertname": "InstanceDown"}
    assert hook.groupKey.startswith("{}/")
    [alert] = [a.to_alert("alertmanager") for a in hook.alerts]
    assert alert.fingerprint == "e7ab4a55e2667793"
    assert alert.workflow_id == "incident-e7ab4a55e2667793"
    assert (alert.status, alert.source, alert.name) == ("firing", "alertmanager", "InstanceDown")
    assert (alert.service, alert.severity, alert.environment) == ("checkout", "critical", "production")
    assert alert.starts_at == datetime(2024, 5, 14, 9, 12, 31, 842000, tzinfo=UTC)
    assert alert.ends_at is None, "Go's zero time means 'not set'"
    assert alert.generator_url.startswith("http://prometheus-0.monitoring:9090/graph")
    assert alert.annotations["runbook_url"] == "https://runbooks.example.internal/InstanceDown"


def test_resolved_notification_maps_to_the_same_incident() -> None:
    [firing] = AlertmanagerWebhook.model_validate(load("alertmanager_firing.json")).alerts
    [resolved] = AlertmanagerWebhook.model_validate(load("alertmanager_resolved.json")).alerts
    a, b = firing.to_alert("alertmanager"), resolved.to_alert("alertmanager")
    assert a.workflow_id == b.workflow_id
    assert b.status == "resolved"
    assert b.ends_at == datetime(2024, 5, 14, 9, 31, 1, 842000, tzinfo=UTC)


def test_several_alerts_in_one_group_become_one_alert_each() -> None:
    hook = AlertmanagerWebhook.model_validate(load("alertmanager_multi.json"))
    alerts = [a.to_alert("alertmanager") for a in hook.alerts]
    assert [a.status for a in alerts] == ["firing", "firing", "resolved"]
    assert len({a.workflow_id for a in alerts}) == 3
    assert {a.labels["instance"] for a in alerts} == {
        "api-0.staging.internal:8080",
        "api-1.staging.internal:8080",
        "api-2.staging.internal:8080",
    }


def test_without_a_fingerprint_the_labels_decide_whatever_their_order() -> None:
    payload = load("alertmanager_firing.json")
    del payload["alerts"][0]["fingerprint"]
    labels = payload["alerts"][0]["labels"]
    reordered = {**payload, "alerts": [{**payload["alerts"][0], "labels": dict(reversed(labels.items()))}]}
    one = AlertmanagerWebhook.model_validate(payload).alerts[0].to_alert("alertmanager")
    two = AlertmanagerWebhook.model_validate(reordered).alerts[0].to_alert("alertmanager")
    assert one.fingerprint == two.fingerprint == label_fingerprint(labels)
    assert len(one.fingerprint) == 16 and int(one.fingerprint, 16) >= 0
    changed = {**labels, "instance": "checkout-3.prod.internal:9100"}
    assert label_fingerprint(changed) != one.fingerprint


def test_same_labels_from_any_source_are_the_same_incident() -> None:
    payload = load("alertmanager_firing.json")
    del payload["alerts"][0]["fingerprint"]
    from_alertmanager = AlertmanagerWebhook.model_validate(payload).alerts[0].to_alert("alertmanager")
    from_script = generic.validate_python({"labels": payload["alerts"][0]["labels"]})
    assert isinstance(from_script, GenericAlert)
    assert from_script.to_alert().workflow_id == from_alertmanager.workflow_id


def test_grafana_payload_keeps_its_links_and_values_for_diagnosis() -> None:
    hook = GrafanaWebhook.model_validate(load("grafana_firing.json"))
    assert (hook.orgId, hook.state, hook.version) == (1, "alerting", "1")
    assert hook.title == "[FIRING:1, RESOLVED:1] Shop (payments)"
    assert hook.message.startswith("**Firing**")
    latency, errors = (a.to_alert("grafana") for a in hook.alerts)
    assert (latency.fingerprint, latency.status, latency.source) == ("d5843249653c83f2", "firing", "grafana")
    assert latency.annotations["dashboard_url"] == "https://grafana.example.internal/d/shop-overview?orgId=1"
    assert latency.annotations["panel_url"].endswith("viewPanel=4")
    assert latency.annotations["values"] == "A=2.431, C=1"
    assert latency.annotations["value_string"].startswith("[ var='A'")
    assert latency.annotations["summary"] == "checkout is slow"
    assert latency.starts_at == datetime(2024, 5, 14, 11, 20, 10, 281914, tzinfo=timezone(timedelta(hours=2)))
    assert "dashboard_url" not in errors.annotations, "empty links are left out"
    assert errors.status == "resolved" and errors.ends_at is not None


def test_grafana_annotations_win_over_derived_extras() -> None:
    payload = load("grafana_firing.json")
    payload["alerts"][0]["annotations"]["dashboard_url"] = "https://elsewhere.example/d/1"
    alert = GrafanaWebhook.model_validate(payload).alerts[0].to_alert("grafana")
    assert alert.annotations["dashboard_url"] == "https://elsewhere.example/d/1"


def test_generic_list_merges_shorthands_into_labels() -> None:
    parsed = generic.validate_python(load("generic_list.json"))
    assert isinstance(parsed, list)
    first, second = parsed
    one, two = first.to_alert(), second.to_alert()
    assert one.labels == {
        "alertname": "ServiceDown",
        "service": "billing",
        "severity": "critical",
        "environment": "production",
        "instance": "billing-0:8080",
    }
    assert one.fingerprint == label_fingerprint(one.labels)
    assert one.source == "generic"
    assert one.starts_at == datetime(2024, 5, 14, 12, tzinfo=UTC)
    assert two.name == "QueueBacklog", "`name` is an alias of `alertname`"
    assert two.fingerprint == "queue-emails-backlog"


def test_generic_alertname_may_come_from_the_labels() -> None:
    alert = generic.validate_python({"labels": {"alertname": "DiskFull", "host": "db-1"}})
    assert isinstance(alert, GenericAlert)
    assert alert.to_alert().name == "DiskFull"


def test_generic_naive_timestamps_are_utc() -> None:
    alert = generic.validate_python({"alertname": "X", "startsAt": "2024-05-14T12:00:00"})
    assert isinstance(alert, GenericAlert)
    assert alert.to_alert().starts_at == datetime(2024, 5, 14, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("body", "path", "words"),
    [
        ({"labels": {"x": "y"}}, ("alert", "alertname"), "Field required"),
        ({"alertname": "X", "severity": "page", "labels": {"severity": "info"}}, ("alert",), "conflicts"),
        ({"alertname": "X", "lables": {}}, ("alert", "lables"), "Extra inputs"),
        ({"alertname": "X", "fingerprint": "../../etc/passwd"}, ("alert", "fingerprint"), "pattern"),
        ({"alertname": "X", "status": "pending"}, ("alert", "status"), "'firing' or 'resolved'"),
        (
            [{"alertname": "X"}, {"alertname": "Y", "labels": {"n": 1}}],
            ("alerts", 1, "labels", "n"),
            "string",
        ),
    ],
)
def test_generic_errors_name_the_field(body: object, path: tuple[str | int, ...], words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        generic.validate_python(body)
    [error] = caught.value.errors()
    assert error["loc"] == path
    assert words in error["msg"]


def test_alertmanager_requires_labels_per_alert() -> None:
    payload = load("alertmanager_multi.json")
    del payload["alerts"][1]["labels"]
    with pytest.raises(ValidationError) as caught:
        AlertmanagerWebhook.model_validate(payload)
    assert [e["loc"] for e in caught.value.errors()] == [("alerts", 1, "labels")]


@pytest.mark.parametrize(
    ("loc", "shown"),
    [
        (("body", "alerts", 0, "labels"), "alerts[0].labels"),
        (("body", "alert", "labels", "env"), "alert.labels.env"),
        (("body", "alerts", 2, "values", "A"), "alerts[2].values.A"),
        (("body",), "body"),
        (("query", "phase"), "query parameter phase"),
        (("path", "incident_id"), "path parameter incident_id"),
    ],
)
def test_field_paths_read_like_the_payload(loc: tuple[str | int, ...], shown: str) -> None:
    assert field_path(loc) == shown
