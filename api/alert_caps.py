"""Caps on alert text: an oversized label or annotation is cut with a visible marker, never refused.

Cutting happens after the trust checks (api/trust.py), which see the alert as sent (its fingerprint
names its full labels), and before anything reaches Temporal, so history stays bounded and the same
notification always cuts the same way (re-fires still match the incident's labels).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from activities.config import Settings
from workflows.alerts import Alert

MARKER = "…[truncated {} bytes]"
# Temporal refuses a Keyword search attribute whose JSON-encoded value exceeds this many bytes, and
# labels feed the incident's search attributes (alertname, service, severity, environment).
SEARCH_ATTRIBUTE_BYTES = 2048


def _utf8(text: str) -> int:
    return len(text.encode())


def _encoded(text: str) -> int:
    return len(json.dumps(text))  # the SDK's encoding of a search attribute: ASCII-only JSON


def cut(value: str, max_bytes: int, *, max_encoded: int | None = None) -> str:
    """`value`, or its longest prefix plus MARKER that fits `max_bytes` of UTF-8 (and `max_encoded`)."""

    def fits(text: str) -> bool:
        return _utf8(text) <= max_bytes and (max_encoded is None or _encoded(text) <= max_encoded)

    if fits(value):
        return value
    total = _utf8(value)

    def candidate(chars: int) -> str:
        return value[:chars] + MARKER.format(total - _utf8(value[:chars]))

    low, high = 0, len(value)
    while low < high:  # the longest prefix that still fits with its marker
        middle = (low + high + 1) // 2
        if fits(candidate(middle)):
            low = middle
        else:
            high = middle - 1
    return candidate(low)


@dataclass(frozen=True)
class AlertCaps:
    label_bytes: int
    annotation_bytes: int
    annotations_total_bytes: int

    @classmethod
    def from_settings(cls, settings: Settings) -> AlertCaps:
        return cls(
            settings.alert_label_max_bytes,
            settings.alert_annotation_max_bytes,
            settings.alert_annotations_max_bytes,
        )

    def apply(self, alert: Alert) -> tuple[Alert, list[str]]:
        """The capped alert and one note per value that was cut (`annotations.description: 1048576 bytes`)."""
        notes: list[str] = []

        def capped(where: str, value: str, max_bytes: int, max_encoded: int | None = None) -> str:
            result = cut(value, max_bytes, max_encoded=max_encoded)
            if result != value:
                notes.append(f"{where}: {_utf8(value)} bytes cut to {_utf8(result)}")
            return result

        labels = {
            key: capped(f"labels.{key}", value, self.label_bytes, SEARCH_ATTRIBUTE_BYTES)
            for key, value in alert.labels.items()
        }
        annotations: dict[str, str] = {}
        budget = self.annotations_total_bytes
        for key, value in alert.annotations.items():
            # Past the total, annotations keep only their marker: the reader still sees they existed.
            annotations[key] = capped(f"annotations.{key}", value, max(min(self.annotation_bytes, budget), 0))
            budget -= _utf8(annotations[key])
        generator_url = capped("generatorURL", alert.generator_url, self.annotation_bytes)
        if not notes:
            return alert, notes
        update = {"labels": labels, "annotations": annotations, "generator_url": generator_url}
        return alert.model_copy(update=update), notes
