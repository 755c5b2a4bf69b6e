"""Building diagnose requests the way the evidence gatherer would: typed evidence, logs as templates."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from activities.logs import summarize
from workflows.alerts import Alert, label_fingerprint
from workflows.diagnosis import DiagnoseRequest
from workflows.evidence import Evidence, MetricSample

T0 = 1714557600.0  # 2024-05-01T10:00:00Z
AT = datetime(2024, 5, 1, 10, 30, tzinfo=UTC)


def instant(query: str, value: float) -> MetricSample:
    return MetricSample(query=query, kind="instant", value=value)


def series(query: str, values: list[float], step: float = 600.0, start: float = T0) -> MetricSample:
    return MetricSample(
        query=query, kind="range", points=[(start + i * step, v) for i, v in enumerate(values)]
    )


def request(
    alert: str = "SomethingWrong",
    service: str = "checkout",
    starts_at: datetime | None = AT,
    logs: str = "",
    baseline: str = "",
    **evidence: Any,
) -> DiagnoseRequest:
    labels = {"alertname": alert, "service": service}
    built = Evidence.model_validate(evidence)
    if logs:
        built.logs = summarize(logs, baseline=baseline)
    return DiagnoseRequest(
        alert=Alert(fingerprint=label_fingerprint(labels), labels=labels, starts_at=starts_at), evidence=built
    )
