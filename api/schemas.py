"""Public request and response bodies of the HTTP API.

Request bodies keep each sender's wire names (camelCase for Alertmanager and Grafana) and know how
to normalise themselves into the internal `workflows.alerts.Alert`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    ValidationError,
    WithJsonSchema,
    model_validator,
)

from workflows.alerts import Alert, label_fingerprint

# Fingerprints become workflow ids and URL path segments, so they keep to a safe alphabet.
FINGERPRINT_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
Fingerprint = Annotated[str, StringConstraints(pattern=f"^{FINGERPRINT_PATTERN}$")]
# Oversized label and annotation values are cut with a marker after the trust checks (api/alert_caps.py),
# not refused here: one long value must not cost the sender its alert.
LabelValue = str
Labels = dict[Annotated[str, StringConstraints(min_length=1, max_length=256)], LabelValue]
Annotations = dict[str, str]
AlertStatus = Literal["firing", "resolved"]
Source = Literal["alertmanager", "grafana", "generic"]


def _unset_zero_time(value: datetime | None) -> datetime | None:
    """Alertmanager and Grafana write Go's zero time (year 1) for "not set"; naive times are UTC."""
    if value is None or value.year == 1:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


Timestamp = Annotated[datetime | None, AfterValidator(_unset_zero_time)]


# --- Alertmanager webhook (version 4) --------------------------------------------------------


class AlertmanagerAlert(BaseModel):
    """One entry of `alerts[]` in Alertmanager's webhook payload."""

    model_config = ConfigDict(extra="ignore")

    status: AlertStatus
    labels: Annotated[Labels, Field(min_length=1)]
    annotations: Annotations = {}
    startsAt: Timestamp = None
    endsAt: Timestamp = None
    generatorURL: str = ""
    fingerprint: Fingerprint | None = None

    def extra_annotations(self) -> dict[str, str]:
        return {}

    def to_alert(self, source: Source) -> Alert:
        return Alert(
            fingerprint=self.fingerprint or label_fingerprint(self.labels),
            status=self.status,
            labels=self.labels,
            # The sender's own annotations win over the extras we derive from its payload.
            annotations={**self.extra_annotations(), **self.annotations},
            starts_at=self.startsAt,
            ends_at=self.endsAt,
            generator_url=self.generatorURL,
            source=source,
        )


class AlertmanagerWebhook(BaseModel):
    """Alertmanager's webhook_config payload, version 4."""

    model_config = ConfigDict(extra="ignore")

    version: str
    groupKey: str = ""
    truncatedAlerts: int = Field(default=0, ge=0)
    status: AlertStatus
    receiver: str = ""
    groupLabels: Labels = {}
    commonLabels: Labels = {}
    commonAnnotations: Annotations = {}
    externalURL: str = ""
    alerts: Annotated[Sequence[AlertmanagerAlert], Field(min_length=1)]


# --- Grafana unified alerting webhook contact point ------------------------------------------


class GrafanaAlert(AlertmanagerAlert):
    values: dict[str, float | None] | None = None
    valueString: str = ""
    silenceURL: str = ""
    dashboardURL: str = ""
    panelURL: str = ""

    def extra_annotations(self) -> dict[str, str]:
        """Grafana's links and query values, kept for whoever diagnoses the incident."""
        values = ", ".join(f"{k}={v:g}" for k, v in (self.values or {}).items() if v is not None)
        extras = {
            "dashboard_url": self.dashboardURL,
            "panel_url": self.panelURL,
            "silence_url": self.silenceURL,
            "value_string": self.valueString,
            "values": values,
        }
        return {key: value for key, value in extras.items() if value}


class GrafanaWebhook(AlertmanagerWebhook):
    """Grafana's webhook contact point payload: Alertmanager's plus a few fields of its own."""

    alerts: Annotated[Sequence[GrafanaAlert], Field(min_length=1)]
    orgId: int | None = None
    title: str = ""
    state: str = ""
    message: str = ""


# --- generic JSON alert ----------------------------------------------------------------------

SHORTHANDS = ("severity", "service", "environment")


class GenericAlert(BaseModel):
    """Remediator's own alert format for scripts and tools without an Alertmanager.

    `alertname` (or `name`, or `labels.alertname`) is required; `severity`, `service` and
    `environment` are shorthands merged into the labels.
    """

    model_config = ConfigDict(extra="forbid")

    alertname: LabelValue = Field(validation_alias=AliasChoices("alertname", "name"), min_length=1)
    status: AlertStatus = "firing"
    labels: Labels = {}
    annotations: Annotations = {}
    severity: LabelValue | None = None
    service: LabelValue | None = None
    environment: LabelValue | None = None
    fingerprint: Fingerprint | None = None
    startsAt: Timestamp = None
    endsAt: Timestamp = None
    generatorURL: str = ""

    @model_validator(mode="before")
    @classmethod
    def _alertname_from_labels(cls, data: Any) -> Any:
        if isinstance(data, dict) and "alertname" not in data and "name" not in data:
            labels = data.get("labels")
            if isinstance(labels, dict) and "alertname" in labels:
                return {**data, "alertname": labels["alertname"]}
        return data

    @model_validator(mode="after")
    def _shorthands_agree_with_labels(self) -> GenericAlert:
        for key, value in self.merged_labels().items():
            if key in self.labels and self.labels[key] != value:
                raise ValueError(f"{key}={value!r} conflicts with labels.{key}={self.labels[key]!r}")
        return self

    def merged_labels(self) -> dict[str, str]:
        shorthands = {key: getattr(self, key) for key in SHORTHANDS if getattr(self, key) is not None}
        return {**self.labels, "alertname": self.alertname, **shorthands}

    def to_alert(self) -> Alert:
        labels = self.merged_labels()
        return Alert(
            fingerprint=self.fingerprint or label_fingerprint(labels),
            status=self.status,
            labels=labels,
            annotations=self.annotations,
            starts_at=self.startsAt,
            ends_at=self.endsAt,
            generator_url=self.generatorURL,
            source="generic",
        )


def _one_or_many(value: Any) -> str:
    return "alerts" if isinstance(value, list) else "alert"


# The tags name the error paths: `alert.labels` for one object, `alerts[2].labels` for a list.
GenericBody = Annotated[
    Annotated[GenericAlert, Tag("alert")] | Annotated[list[GenericAlert], Field(min_length=1), Tag("alerts")],
    Discriminator(_one_or_many),
]


# --- one alert at a time ----------------------------------------------------------------------

Loc = tuple[str | int, ...]


class WebhookBatch(BaseModel):
    """What the Alertmanager and Grafana routes read first: the envelope, with `alerts[]` unchecked.

    Each alert is then validated on its own (`parse_webhook`), so one bad alert costs only itself; the
    envelope's other fields (groupKey, commonLabels ...) are not used, so they cannot refuse a batch.
    """

    model_config = ConfigDict(extra="ignore")

    version: str
    alerts: Annotated[
        list[Annotated[Any, WithJsonSchema({"type": "object", "description": "one alert"})]],
        Field(min_length=1),
    ]


@dataclass(frozen=True)
class Parsed:
    """One entry of a request: its alert, or the errors that make it none (pydantic's dict shape)."""

    index: int
    loc: Loc  # where it sits: ("body", "alerts", 3), or ("body", "alert") for a single object
    alert: Alert | None = None
    errors: tuple[dict[str, Any], ...] = ()


def _parse(
    index: int, loc: Loc, item: Any, model: type[BaseModel], to_alert: Callable[[Any], Alert]
) -> Parsed:
    try:
        return Parsed(index, loc, alert=to_alert(model.model_validate(item)))
    except ValidationError as err:
        errors = tuple(
            {"type": e["type"], "loc": (*loc, *e["loc"]), "msg": e["msg"]}
            for e in err.errors(include_url=False)
        )
        return Parsed(index, loc, errors=errors)


def parse_webhook(batch: WebhookBatch, source: Literal["alertmanager", "grafana"]) -> list[Parsed]:
    model = GrafanaAlert if source == "grafana" else AlertmanagerAlert
    return [
        _parse(i, ("body", "alerts", i), item, model, lambda a: a.to_alert(source))
        for i, item in enumerate(batch.alerts)
    ]


def parse_generic(body: Any) -> list[Parsed]:
    """One object (errors read `alert.labels`) or a list of them (`alerts[2].labels`)."""
    if isinstance(body, list) and body:
        return [
            _parse(i, ("body", "alerts", i), item, GenericAlert, lambda a: a.to_alert())
            for i, item in enumerate(body)
        ]
    if isinstance(body, list):
        empty = {"type": "too_short", "loc": ("body", "alerts"), "msg": "List should have at least 1 item"}
        return [Parsed(0, ("body", "alerts"), errors=(empty,))]
    return [_parse(0, ("body", "alert"), body, GenericAlert, lambda a: a.to_alert())]


# --- responses -------------------------------------------------------------------------------

Outcome = Literal["started", "signalled", "ignored", "grouped", "refused"]


class IngestOutcome(BaseModel):
    """What happened to one alert of the request, in the request's order.

    `started` a new incident, `signalled` a running one, `ignored` a resolution with nothing to resolve,
    `grouped` into a storm incident (storm control), `refused` (nothing was sent; `reason` says why).
    """

    index: int = Field(description="position in the request's alerts (0 for a single object)")
    outcome: Outcome
    incident_id: str | None = Field(default=None, description="the incident (or storm incident) signalled")
    fingerprint: str | None = None
    alertname: str | None = None
    status: AlertStatus | None = None
    reason: str = Field(default="", description="why refused; which storm; how many re-fires were coalesced")
    truncated: list[str] = Field(default=[], description="label or annotation values cut to their cap")


class IncidentSummary(BaseModel):
    """One row of `GET /incidents`, read from Temporal's visibility store."""

    incident_id: str
    run_id: str
    workflow_status: str
    phase: str
    alertname: str
    service: str
    severity: str
    environment: str
    started_at: datetime | None
    closed_at: datetime | None


class ErrorBody(BaseModel):
    """Every error answer: a sentence for people plus the details for programs."""

    message: str
    detail: list[dict[str, Any]] = []
