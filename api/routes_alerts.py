"""Alert intake: Alertmanager, Grafana and generic JSON, all normalised to `Alert`.

Each alert of a request is judged on its own (api/ingest.py). The answer is a 202 listing every
alert's outcome in the request's order once Temporal holds every valid one; refused alerts are listed
with their reason (`alerts[3].labels.environment: ...`). Only a request with no valid alert is a 422;
a 503 (with Retry-After) tells the sender to try again. The caller needs the `alerts:send`
permission, and its credential (not the alert's labels) is who opened the incident.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request, status
from fastapi.exceptions import RequestValidationError

from api.auth.deps import SenderDep
from api.deps import AUTH_RESPONSES
from api.ingest import Intake
from api.metrics import counted
from api.schemas import ErrorBody, IngestOutcome, WebhookBatch, parse_generic, parse_webhook

router = APIRouter(
    prefix="/alerts",
    tags=["alerts"],
    responses={
        **AUTH_RESPONSES,
        413: {"model": ErrorBody, "description": "body larger than REMEDIATOR_MAX_BODY_BYTES"},
        415: {"model": ErrorBody, "description": "body not sent as application/json"},
        422: {"model": ErrorBody, "description": "no valid alert; `message` names each field at fault"},
        503: {"model": ErrorBody, "description": "Temporal unreachable; retry after Retry-After"},
    },
)


def intake(request: Request) -> Intake:
    # Built in app.lifespan: storm control and coalescing span requests.
    found: Intake = request.app.state.intake
    return found


IntakeDep = Annotated[Intake, Depends(intake)]


@router.post("/alertmanager", status_code=status.HTTP_202_ACCEPTED)
async def from_alertmanager(
    payload: WebhookBatch, alerts: IntakeDep, principal: SenderDep
) -> list[IngestOutcome]:
    """Alertmanager's webhook receiver (payload version 4); each `alerts[]` entry is an Alertmanager alert."""
    parsed = parse_webhook(payload, "alertmanager")
    return await counted("alertmanager", len(parsed), alerts.ingest(parsed, principal))


@router.post("/grafana", status_code=status.HTTP_202_ACCEPTED)
async def from_grafana(payload: WebhookBatch, alerts: IntakeDep, principal: SenderDep) -> list[IngestOutcome]:
    """Grafana unified alerting's webhook contact point; each `alerts[]` entry is a Grafana alert."""
    parsed = parse_webhook(payload, "grafana")
    return await counted("grafana", len(parsed), alerts.ingest(parsed, principal))


@router.post("", status_code=status.HTTP_202_ACCEPTED)
async def from_json(
    payload: Annotated[Any, Body(description="one generic alert object, or a list of them")],
    alerts: IntakeDep,
    principal: SenderDep,
) -> list[IngestOutcome]:
    """Remediator's generic JSON alert: one object or a list of them."""
    if isinstance(payload, bytes):
        # FastAPI hands the raw body on when it was not sent as JSON; errors.py answers that with a 415.
        raise RequestValidationError(
            [{"type": "not_json", "loc": ("body",), "msg": "not JSON"}], body=payload
        )
    parsed = parse_generic(payload)
    return await counted("generic", len(parsed), alerts.ingest(parsed, principal))
