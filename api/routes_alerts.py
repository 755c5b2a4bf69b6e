"""Alert intake: Alertmanager, Grafana and generic JSON, all normalised to `Alert`.

Each answers 202 only after Temporal accepted every alert of the request; anything else is a 4xx
for bad input or a 503 (with Retry-After) that tells the sender to try again. The caller needs the
`alerts:send` permission, and its credential (not the alert's labels) is who opened the incident.
"""

from __future__ import annotations

from fastapi import APIRouter, status

from api.auth.deps import SenderDep
from api.deps import AUTH_RESPONSES, ClientDep, PinningDep, SettingsDep
from api.ingest import ingest
from api.metrics import counted
from api.schemas import AlertmanagerWebhook, ErrorBody, GenericBody, GrafanaWebhook, IngestOutcome

router = APIRouter(
    prefix="/alerts",
    tags=["alerts"],
    responses={
        **AUTH_RESPONSES,
        413: {"model": ErrorBody, "description": "body larger than REMEDIATOR_MAX_BODY_BYTES"},
        415: {"model": ErrorBody, "description": "body not sent as application/json"},
        422: {"model": ErrorBody, "description": "invalid payload; `message` names the field"},
        503: {"model": ErrorBody, "description": "Temporal unreachable; retry after Retry-After"},
    },
)


@router.post("/alertmanager", status_code=status.HTTP_202_ACCEPTED)
async def from_alertmanager(
    payload: AlertmanagerWebhook,
    client: ClientDep,
    settings: SettingsDep,
    pinning: PinningDep,
    principal: SenderDep,
) -> list[IngestOutcome]:
    """Alertmanager's webhook receiver (payload version 4)."""
    alerts = [alert.to_alert("alertmanager") for alert in payload.alerts]
    return await counted(
        "alertmanager", len(alerts), ingest(client, settings, pinning, alerts, sender=principal)
    )


@router.post("/grafana", status_code=status.HTTP_202_ACCEPTED)
async def from_grafana(
    payload: GrafanaWebhook,
    client: ClientDep,
    settings: SettingsDep,
    pinning: PinningDep,
    principal: SenderDep,
) -> list[IngestOutcome]:
    """Grafana unified alerting's webhook contact point."""
    alerts = [alert.to_alert("grafana") for alert in payload.alerts]
    return await counted("grafana", len(alerts), ingest(client, settings, pinning, alerts, sender=principal))


@router.post("", status_code=status.HTTP_202_ACCEPTED)
async def from_json(
    payload: GenericBody,
    client: ClientDep,
    settings: SettingsDep,
    pinning: PinningDep,
    principal: SenderDep,
) -> list[IngestOutcome]:
    """Remediator's generic JSON alert: one object or a list of them."""
    alerts = payload if isinstance(payload, list) else [payload]
    delivery = ingest(client, settings, pinning, [alert.to_alert() for alert in alerts], sender=principal)
    return await counted("generic", len(alerts), delivery)
