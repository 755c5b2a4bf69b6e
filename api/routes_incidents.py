"""Incidents: list them from Temporal visibility, read their state, approve or reject them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel, Field
from temporalio.client import Client, WorkflowExecution, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from activities.config import Settings
from api.auth.deps import DeciderDep, ReaderDep
from api.auth.principal import Principal
from api.deps import AUTH_RESPONSES, ClientDep, SettingsDep
from api.ingest import WORKFLOW_TYPE
from api.schemas import FINGERPRINT_PATTERN, ErrorBody, IncidentSummary
from workflows import search_attributes as sa
from workflows.decisions import DecisionRequest, Via
from workflows.incident_models import IncidentState
from workflows.phases import Phase
from workflows.storm import STORM_WORKFLOW

ID_PREFIX = "incident-"

router = APIRouter(
    prefix="/incidents",
    tags=["incidents"],
    responses={
        **AUTH_RESPONSES,
        422: {"model": ErrorBody, "description": "invalid parameter; `message` names it"},
        503: {"model": ErrorBody, "description": "Temporal or the worker did not answer"},
    },
)

IncidentId = Annotated[
    str,
    Path(
        pattern=f"^({ID_PREFIX})?{FINGERPRINT_PATTERN}$",
        description="`incident-<fingerprint>` or just the fingerprint",
    ),
]
# Values end up inside a quoted visibility-query literal: without quotes, backslashes and control
# characters they cannot close it, so nothing can be injected into the query.
FilterValue = Annotated[
    str | None,
    Query(
        pattern=r"^[^'\"\\\x00-\x1f\x7f]{1,200}$",
        description="exact match; quotes, backslashes and control characters are refused",
    ),
]


def workflow_id(incident_id: str) -> str:
    return incident_id if incident_id.startswith(ID_PREFIX) else f"{ID_PREFIX}{incident_id}"


def _summary(execution: WorkflowExecution) -> IncidentSummary:
    attrs = execution.typed_search_attributes
    return IncidentSummary(
        incident_id=execution.id,
        run_id=execution.run_id,
        workflow_status=execution.status.name if execution.status else "UNKNOWN",
        phase=attrs.get(sa.INCIDENT_PHASE) or "",
        alertname=attrs.get(sa.ALERT_NAME) or "",
        service=attrs.get(sa.SERVICE) or "",
        severity=attrs.get(sa.SEVERITY) or "",
        environment=attrs.get(sa.ENVIRONMENT) or "",
        started_at=execution.start_time,
        closed_at=execution.close_time,
    )


@router.get("")
async def list_incidents(
    client: ClientDep,
    settings: SettingsDep,
    _: ReaderDep,
    phase: Annotated[Phase | None, Query()] = None,
    alertname: FilterValue = None,
    service: FilterValue = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[IncidentSummary]:
    """Incidents from Temporal's visibility store (at most `limit`), optionally filtered."""
    # Storm incidents (workflows/storm.py) are listed beside the incidents they stand in for.
    clauses = [f"WorkflowType IN ('{WORKFLOW_TYPE}', '{STORM_WORKFLOW}')"]
    for key, value in ((sa.INCIDENT_PHASE, phase), (sa.ALERT_NAME, alertname), (sa.SERVICE, service)):
        if value is not None:
            clauses.append(f"{key.name}='{value}'")
    executions = client.list_workflows(
        " AND ".join(clauses), limit=limit, rpc_timeout=settings.api_temporal_timeout
    )
    return [_summary(execution) async for execution in executions]


async def _not_running(handle: WorkflowHandle[object, object], settings: Settings) -> HTTPException:
    """NOT_FOUND means either no such incident (404) or a closed one (409); describe tells which."""
    try:
        description = await handle.describe(rpc_timeout=settings.api_temporal_timeout)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return HTTPException(404, f"no incident {handle.id}")
        raise
    status = description.status.name if description.status else "closed"
    return HTTPException(409, f"incident {handle.id} is no longer running ({status})")


@router.get("/{incident_id}", responses={404: {"model": ErrorBody}})
async def get_incident(
    incident_id: IncidentId, client: ClientDep, settings: SettingsDep, _: ReaderDep
) -> IncidentState:
    """The incident's `state` query: phase, alert, diagnosis, plan, approvals, actions, timeline."""
    handle = client.get_workflow_handle(workflow_id(incident_id))
    try:
        return await handle.query(
            "state", result_type=IncidentState, rpc_timeout=settings.api_temporal_timeout
        )
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise HTTPException(404, f"no incident {handle.id}") from err
        raise


async def send_decision(
    client: Client, settings: Settings, incident_id: str, request: DecisionRequest
) -> IncidentState:
    handle = client.get_workflow_handle(workflow_id(incident_id))
    try:
        return await handle.execute_update(
            "decide", request, result_type=IncidentState, rpc_timeout=settings.api_temporal_timeout
        )
    except WorkflowUpdateFailedError as err:
        # The workflow's validator said no: not awaiting approval, or this approver already decided.
        reason = getattr(err.cause, "message", None) or str(err.cause)
        raise HTTPException(409, f"incident {handle.id} refused the decision: {reason}") from err
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        raise await _not_running(handle, settings) from err


DECISION_RESPONSES: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorBody, "description": "no such incident"},
    409: {"model": ErrorBody, "description": "not awaiting approval, approver already decided, or closed"},
}


class DecisionBody(BaseModel):
    """What a person sends: the approver comes from the credential; `approver`, if given, must match."""

    approver: str | None = Field(default=None, min_length=1, max_length=200)
    reason: str = Field(default="", max_length=2000)


def decision_request(
    principal: Principal, body: DecisionBody, approve: bool, via: Via = "api"
) -> DecisionRequest:
    # Identity comes from the credential: a body naming someone else is refused, never recorded.
    if body.approver is not None and body.approver != principal.name:
        raise HTTPException(
            403, f"approver {body.approver!r} is not the authenticated caller {principal.name!r}"
        )
    environments = list(principal.environments)
    return DecisionRequest(
        approver=principal.name,
        reason=body.reason,
        via=via,
        approve=approve,
        risks=list(principal.risks),
        environments=environments if environments else ["*"],
        services=[] if "*" in principal.services else list(principal.services),
    )


@router.post("/{incident_id}/approve", responses=DECISION_RESPONSES)
async def approve(
    incident_id: IncidentId,
    body: DecisionBody,
    principal: DeciderDep,
    client: ClientDep,
    settings: SettingsDep,
) -> IncidentState:
    """Approve the plan as the authenticated caller (the `decide` update); answers with the state after it."""
    return await send_decision(client, settings, incident_id, decision_request(principal, body, approve=True))


@router.post("/{incident_id}/reject", responses=DECISION_RESPONSES)
async def reject(
    incident_id: IncidentId,
    body: DecisionBody,
    principal: DeciderDep,
    client: ClientDep,
    settings: SettingsDep,
) -> IncidentState:
    """Reject the plan as the authenticated caller (the `decide` update); answers with the state after it."""
    return await send_decision(
        client, settings, incident_id, decision_request(principal, body, approve=False)
    )
