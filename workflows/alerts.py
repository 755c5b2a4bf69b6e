"""Alerts as every source's is normalised, and the fingerprints that name them."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


def label_fingerprint(labels: dict[str, str]) -> str:
    """First 16 hex characters of sha256 over the sorted labels (the guide's contract)."""
    canonical = json.dumps(sorted(labels.items()), separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


_FNV_OFFSET, _FNV_PRIME, _U64 = 14695981039346656037, 1099511628211, (1 << 64) - 1


def prometheus_fingerprint(labels: dict[str, str]) -> str:
    """The fingerprint Alertmanager and Grafana send: FNV-1a 64 over sorted names and values, each
    followed by the 0xff separator (prometheus/common model.LabelSet.Fingerprint), as 16 hex digits."""
    value = _FNV_OFFSET
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode() + b"\xff":
                value = ((value ^ byte) * _FNV_PRIME) & _U64
    return f"{value:016x}"


def fingerprint_matches(fingerprint: str, labels: dict[str, str]) -> bool:
    """A sender's fingerprint is only a name for its labels: one alert cannot borrow another's."""
    return fingerprint in (prometheus_fingerprint(labels), label_fingerprint(labels))


class Alert(BaseModel):
    """One alert, normalised from whichever source sent it."""

    model_config = ConfigDict(frozen=True)

    fingerprint: str
    status: Literal["firing", "resolved"] = "firing"
    labels: dict[str, str]
    annotations: dict[str, str] = {}
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    generator_url: str = ""
    source: Literal["alertmanager", "grafana", "generic", "manual"] = "generic"
    # Set on a slim notification (`notice`): the labels' sha256, standing in for labels and annotations.
    digest: str = ""
    # How many identical notifications this one stands for: the API coalesces re-fires that arrive
    # within REMEDIATOR_ALERT_COALESCE_WINDOW into one signal, and the incident counts them all.
    repeats: int = Field(default=1, ge=1)

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "unknown")

    @property
    def service(self) -> str:
        # `job` comes last: on kube-state-metrics alerts it names the exporter, not the workload.
        for key in ("service", "app", "deployment", "container", "job"):
            if value := self.labels.get(key):
                return value
        return ""

    @property
    def severity(self) -> str:
        return self.labels.get("severity", "")

    @property
    def environment(self) -> str:
        return self.labels.get("environment") or self.labels.get("env", "")

    @property
    def workflow_id(self) -> str:
        return f"incident-{self.fingerprint}"

    def lookup(self, key: str) -> str:
        """A value from the labels, else the annotations, else empty."""
        return self.labels.get(key) or self.annotations.get(key, "")

    def labels_digest(self) -> str:
        return hashlib.sha256(
            json.dumps(sorted(self.labels.items()), separators=(",", ":")).encode()
        ).hexdigest()

    def notice(self) -> Alert:
        """What a signal to an incident carries: status, timestamps and the labels' digest.

        The incident has the alert's text from its start; a re-fire repeating it (annotations of any
        size, every few minutes for days) would only grow the history towards Temporal's limits.
        """
        slim = {"labels": {}, "annotations": {}, "generator_url": "", "digest": self.labels_digest()}
        return self.model_copy(update=slim)
