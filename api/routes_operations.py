"""Operations without an alert (`/operations`), their Temporal Schedules (`/schedules`), and the
history of incidents and operations (`/history`). The logic lives in api/operations.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from api import operations as ops
from api.auth.deps import OperatorDep, ReaderDep
from api.deps import AUTH_RESPONSES, ClientDep, PinningDep, SettingsDep
from api.schemas import ErrorBody
from workflows.operation_models import OPERATION_PREFIX

router = APIRouter(
    responses={
        **AUTH_RESPONSES,
        422: {"model": ErrorBody, "description": "invalid request; `message` names the field"},
        503: {"model": ErrorBody, "description": "Temporal or the worker did not answer"},
    },
)
NOT_FOUND: dict[int | str, dict[str, object]] = {404: {"model": ErrorBody}}

OperationId = Annotated[str, Path(pattern=f"^{OPERATION_PREFIX}[A-Za-z0-9_.:@-]{{1,200}}$")]
ScheduleName = Annotated[str, Path(pattern=ops.SCHEDULE_NAME)]
Limit = Annotated[int, Query(ge=1, le=1000)]


@router.post("/operations", status_code=status.HTTP_202_ACCEPTED, tags=["operations"])
async def start_operation(
    request: ops.OperationRequest,
    client: ClientDep,
    settings: SettingsDep,
    pinning: PinningDep,
    _: OperatorDep,
) -> ops.OperationStarted:
    """Run a playbook over targets now (an OperationWorkflow), pinned to the playbook and policy."""
    inp = ops.operation_input(request, pinning, settings)
    return await ops.start_operation(client, settings, inp)


@router.get("/operations", tags=["operations"])
async def list_operations(
    client: ClientDep, settings: SettingsDep, _: ReaderDep, limit: Limit = 100
) -> list[ops.HistoryEntry]:
    """Operations from Temporal visibility, running and closed, newest first."""
    return await ops.history(client, settings, "operations", limit)


@router.get("/operations/{operation_id}", tags=["operations"], responses=NOT_FOUND)
async def get_operation(
    operation_id: OperationId, client: ClientDep, settings: SettingsDep, _: ReaderDep
) -> ops.OperationView:
    """One operation: its workflow status and its state (per-target results, health score, timeline)."""
    return await ops.read_operation(client, settings, operation_id)


@router.get("/history", tags=["history"])
async def get_history(
    client: ClientDep,
    settings: SettingsDep,
    _: ReaderDep,
    kind: Annotated[ops.Kind | None, Query()] = None,
    limit: Limit = 50,
) -> list[ops.HistoryEntry]:
    """Incidents and operations, running and closed, with phase and times, newest first."""
    return await ops.history(client, settings, kind, limit)


@router.post(
    "/schedules",
    status_code=status.HTTP_201_CREATED,
    tags=["schedules"],
    responses={409: {"model": ErrorBody, "description": "a schedule of that name exists"}},
)
async def create_schedule(
    request: ops.ScheduleRequest,
    client: ClientDep,
    settings: SettingsDep,
    pinning: PinningDep,
    _: OperatorDep,
) -> ops.ScheduleView:
    """A Temporal Schedule that starts the operation on a cron expression (UTC) or every interval."""
    inp = ops.operation_input(request, pinning, settings)
    return await ops.create_schedule(client, settings, request, inp)


@router.get("/schedules", tags=["schedules"])
async def list_schedules(client: ClientDep, settings: SettingsDep, _: ReaderDep) -> list[ops.ScheduleView]:
    """The schedules that start operations, with their next runs and recent runs."""
    return await ops.list_schedules(client, settings)


@router.delete("/schedules/{name}", tags=["schedules"], responses=NOT_FOUND)
async def delete_schedule(
    name: ScheduleName, client: ClientDep, settings: SettingsDep, _: OperatorDep
) -> ops.ScheduleView:
    """Delete the schedule (answering with what it was); operations it already started keep running."""
    return await ops.delete_schedule(client, settings, name)


@router.post(
    "/schedules/{name}/trigger", status_code=status.HTTP_202_ACCEPTED, tags=["schedules"], responses=NOT_FOUND
)
async def trigger_schedule(
    name: ScheduleName, client: ClientDep, settings: SettingsDep, _: OperatorDep
) -> ops.ScheduleView:
    """Start the schedule's operation now (skipped if its previous run is still going)."""
    return await ops.trigger_schedule(client, settings, name)
