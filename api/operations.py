"""Operations, their Temporal Schedules and the history of everything, behind api/routes_operations.py.

An operation is pinned like an incident: the playbook (content and file hash) and the policy loaded
when the API started (`Pinning`), and the approval timers from the settings. A schedule pins them when
it is created, so what runs at 3 a.m. is what was reviewed; `schedule list` shows the hash, and
creating the schedule again takes an edited playbook.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from fastapi import HTTPException
from pydantic import BaseModel, ConfigDict, Field, model_validator
from temporalio.client import (
    Client,
    RPCTimeoutOrCancelledError,
    Schedule,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleDescription,
    ScheduleIntervalSpec,
    ScheduleListActionStartWorkflow,
    ScheduleListDescription,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowQueryFailedError,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from activities.config import Settings
from api.ingest import WORKFLOW_TYPE as INCIDENT_WORKFLOW
from api.ingest import Pinning
from workflows import search_attributes as sa
from workflows.durations import Duration
from workflows.operation_models import (
    OPERATION_PREFIX,
    OPERATION_WORKFLOW,
    OperationInput,
    OperationOptions,
    OperationState,
    param_problems,
)
from workflows.phases import Phase

SCHEDULE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
Kind = Literal["incidents", "operations"]
_TYPES: dict[str, Kind] = {INCIDENT_WORKFLOW: "incidents", OPERATION_WORKFLOW: "operations"}


class OperationRequest(OperationOptions):
    """`POST /operations`: a playbook by name, and how to run it over the targets."""

    model_config = ConfigDict(extra="forbid")
    playbook: str = Field(min_length=1, max_length=100)


class ScheduleRequest(OperationRequest):
    """`POST /schedules`: an operation to start on a cron expression (UTC) or every interval."""

    name: str = Field(pattern=SCHEDULE_NAME)
    cron: str = Field(default="", max_length=200)
    every: Duration | None = None

    @model_validator(mode="after")
    def _one_spec(self) -> ScheduleRequest:
        if bool(self.cron) == (self.every is not None):
            raise ValueError("give exactly one of cron and every")
        return self

    @property
    def spec_text(self) -> str:
        return f"cron {self.cron}" if self.cron else f"every {self.every}"


class OperationStarted(BaseModel):
    operation_id: str
    playbook: str
    sha256: str
    targets: list[str]
    dry_run: bool


class OperationView(BaseModel):
    """`GET /operations/{id}`: the workflow's status and its state (None if it cannot be read)."""

    operation_id: str
    workflow_status: str
    state: OperationState | None


class HistoryEntry(BaseModel):
    kind: Kind
    workflow_id: str
    workflow_status: str
    phase: str
    name: str  # the alert's name, or the operation's playbook
    service: str
    environment: str
    started_at: datetime | None
    closed_at: datetime | None


class ScheduleView(BaseModel):
    name: str
    spec: str
    playbook: str
    sha256: str
    targets: list[str]
    dry_run: bool
    paused: bool
    next_runs: list[datetime] = []
    recent_runs: list[str] = []  # workflow ids, oldest first


# --- operations -------------------------------------------------------------------------------


def operation_input(request: OperationRequest, pinning: Pinning, settings: Settings) -> OperationInput:
    """The pinned input, or a 422 saying what is wrong with the request."""
    loaded = pinning.catalogue.get(request.playbook)
    if loaded is None:
        known = ", ".join(sorted(p.name for p in pinning.catalogue.playbooks))
        raise HTTPException(422, f"playbook: no playbook named {request.playbook!r} (known: {known})")
    problems = param_problems(loaded.playbook, request.params, request.targets, request.environment)
    if problems:
        raise HTTPException(422, "params: " + "; ".join(problems))
    options = request.model_dump(exclude={"playbook", "name", "cron", "every"})
    if isinstance(request, ScheduleRequest):
        who = f" (created by {request.started_by})" if request.started_by else ""
        options["started_by"] = f"schedule {request.name}{who}"
    return OperationInput(
        **options, pinned=loaded.pinned(), policy=pinning.policy, config=settings.incident_config()
    )


def _search_attributes(inp: OperationInput) -> TypedSearchAttributes:
    """Set at start, so the operation is listed (and filterable) before its first workflow task."""
    pairs = [
        SearchAttributePair(sa.ALERT_NAME, inp.pinned.name),
        SearchAttributePair(sa.INCIDENT_PHASE, Phase.RECEIVED.value),
    ]
    if inp.environment:
        pairs.append(SearchAttributePair(sa.ENVIRONMENT, inp.environment))
    return TypedSearchAttributes(pairs)


async def start_operation(client: Client, settings: Settings, inp: OperationInput) -> OperationStarted:
    operation_id = f"{OPERATION_PREFIX}{inp.pinned.name}-{uuid.uuid4().hex[:8]}"
    await client.start_workflow(
        OPERATION_WORKFLOW,
        inp,
        id=operation_id,
        task_queue=settings.task_queue,
        search_attributes=_search_attributes(inp),
        rpc_timeout=settings.api_temporal_timeout,
    )
    return OperationStarted(
        operation_id=operation_id,
        playbook=inp.pinned.name,
        sha256=inp.pinned.sha256,
        targets=inp.targets,
        dry_run=inp.dry_run,
    )


async def read_operation(client: Client, settings: Settings, operation_id: str) -> OperationView:
    """A running operation answers its `state` query; a completed one its result (no worker needed)."""
    handle = client.get_workflow_handle(operation_id, result_type=OperationState)
    timeout = settings.api_temporal_timeout
    try:
        description = await handle.describe(rpc_timeout=timeout)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise HTTPException(404, f"no operation {operation_id}") from err
        raise
    if description.workflow_type != OPERATION_WORKFLOW:
        raise HTTPException(404, f"{operation_id} is a {description.workflow_type}, not an operation")
    status = description.status or WorkflowExecutionStatus.RUNNING
    state: OperationState | None = None
    if status == WorkflowExecutionStatus.COMPLETED:
        state = await handle.result(rpc_timeout=timeout)
    elif status == WorkflowExecutionStatus.RUNNING:
        state = await handle.query("state", result_type=OperationState, rpc_timeout=timeout)
    else:
        # Cancelled, failed or terminated: a worker can still replay it to answer, or not (terminated
        # mid-task, or no worker running), in which case only the status is known.
        with contextlib.suppress(WorkflowQueryFailedError, RPCError, RPCTimeoutOrCancelledError):
            state = await handle.query("state", result_type=OperationState, rpc_timeout=timeout)
    return OperationView(operation_id=operation_id, workflow_status=status.name, state=state)


# --- history ----------------------------------------------------------------------------------


def _entry(execution: WorkflowExecution) -> HistoryEntry:
    attrs = execution.typed_search_attributes
    return HistoryEntry(
        kind=_TYPES[execution.workflow_type],
        workflow_id=execution.id,
        workflow_status=execution.status.name if execution.status else "UNKNOWN",
        phase=attrs.get(sa.INCIDENT_PHASE) or "",
        name=attrs.get(sa.ALERT_NAME) or "",
        service=attrs.get(sa.SERVICE) or "",
        environment=attrs.get(sa.ENVIRONMENT) or "",
        started_at=execution.start_time,
        closed_at=execution.close_time,
    )


# Sorts last: a run without a start time (aware, so it compares with the others).
EPOCH = datetime.min.replace(tzinfo=UTC)


async def history(client: Client, settings: Settings, kind: Kind | None, limit: int) -> list[HistoryEntry]:
    """Past and running incidents and operations from Temporal visibility, newest first."""
    types = [t for t, k in _TYPES.items() if kind in (None, k)]
    query = " OR ".join(f"WorkflowType='{t}'" for t in types)
    executions = client.list_workflows(query, limit=limit, rpc_timeout=settings.api_temporal_timeout)
    entries = [_entry(execution) async for execution in executions]
    return sorted(entries, key=lambda e: e.started_at or EPOCH, reverse=True)


# --- schedules --------------------------------------------------------------------------------


def _spec(request: ScheduleRequest) -> ScheduleSpec:
    if request.cron:
        return ScheduleSpec(cron_expressions=[request.cron])
    every = request.every or timedelta(0)  # the model validator guarantees one of the two
    return ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)])


async def create_schedule(
    client: Client, settings: Settings, request: ScheduleRequest, inp: OperationInput
) -> ScheduleView:
    action = ScheduleActionStartWorkflow(
        OPERATION_WORKFLOW,
        inp,
        # Temporal appends each run's scheduled time to this id.
        id=f"{OPERATION_PREFIX}{request.name}",
        task_queue=settings.task_queue,
        typed_search_attributes=_search_attributes(inp),
    )
    memo = {
        "spec": request.spec_text,
        "playbook": inp.pinned.name,
        "sha256": inp.pinned.sha256,
        "targets": inp.targets,
        "dry_run": inp.dry_run,
    }
    schedule = Schedule(
        action=action,
        spec=_spec(request),
        # A run still going when the next is due: the next one is skipped, never stacked.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    try:
        handle = await client.create_schedule(
            request.name, schedule, memo=memo, rpc_timeout=settings.api_temporal_timeout
        )
    except ScheduleAlreadyRunningError as err:
        raise HTTPException(409, f"schedule {request.name!r} already exists; delete it first") from err
    except RPCError as err:
        if err.status == RPCStatusCode.INVALID_ARGUMENT:
            raise HTTPException(422, f"{request.spec_text!r}: Temporal refused it: {err.message}") from err
        raise
    return await _view(await handle.describe(rpc_timeout=settings.api_temporal_timeout))


async def _view(description: ScheduleDescription | ScheduleListDescription) -> ScheduleView:
    memo: Mapping[str, Any] = await description.memo()
    schedule, info = description.schedule, description.info
    return ScheduleView(
        name=description.id,
        spec=str(memo.get("spec", "")),
        playbook=str(memo.get("playbook", "")),
        sha256=str(memo.get("sha256", "")),
        targets=list(memo.get("targets", [])),
        dry_run=bool(memo.get("dry_run", False)),
        paused=bool(schedule and schedule.state.paused),
        next_runs=list(info.next_action_times[:3]) if info else [],
        recent_runs=[
            run.action.workflow_id
            for run in (info.recent_actions if info else [])
            if isinstance(run.action, ScheduleActionExecutionStartWorkflow)
        ],
    )


async def _ours(client: Client, settings: Settings, name: str) -> ScheduleDescription:
    """The schedule `name`, if it starts operations; 404 otherwise (other schedules are not ours)."""
    try:
        description = await client.get_schedule_handle(name).describe(
            rpc_timeout=settings.api_temporal_timeout
        )
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise HTTPException(404, f"no schedule named {name!r}") from err
        raise
    action = description.schedule.action
    if not isinstance(action, ScheduleActionStartWorkflow) or action.workflow != OPERATION_WORKFLOW:
        raise HTTPException(404, f"schedule {name!r} does not start operations")
    return description


async def list_schedules(client: Client, settings: Settings) -> list[ScheduleView]:
    """Every schedule that starts an OperationWorkflow (visibility lags creation by a moment)."""
    views: list[ScheduleView] = []
    async for listed in await client.list_schedules(rpc_timeout=settings.api_temporal_timeout):
        action = listed.schedule.action if listed.schedule else None
        if isinstance(action, ScheduleListActionStartWorkflow) and action.workflow == OPERATION_WORKFLOW:
            views.append(await _view(listed))
    return sorted(views, key=lambda v: v.name)


async def delete_schedule(client: Client, settings: Settings, name: str) -> ScheduleView:
    view = await _view(await _ours(client, settings, name))
    await client.get_schedule_handle(name).delete(rpc_timeout=settings.api_temporal_timeout)
    return view


async def trigger_schedule(client: Client, settings: Settings, name: str) -> ScheduleView:
    await _ours(client, settings, name)
    handle = client.get_schedule_handle(name)
    await handle.trigger(rpc_timeout=settings.api_temporal_timeout)
    return await _view(await handle.describe(rpc_timeout=settings.api_temporal_timeout))
