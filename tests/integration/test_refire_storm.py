"""On the real dev server: an incident waiting for approval outlives 60 re-fires with large annotations.

Sent as full alerts straight to the workflow (a sender bypassing the API's slim notices), 60 re-fires
of 400 KB each would take a run to 24 MB of history; the incident continues as new at 8 MB (the
default `continue_after_bytes`) and stays approvable, with the approval given before the re-fires.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from tests.workflows.fakes import Fakes, events, make_alert, shipped, start, worker
from workflows.decisions import Decision
from workflows.incident import IncidentWorkflow
from workflows.incident_models import IncidentConfig, IncidentState
from workflows.phases import Phase
from workflows.policy import Policy

REFIRES = 60
ANNOTATION = "x" * 400_000
TWO_APPROVERS = Policy.model_validate({"environments": {"prod": {"approvers_required": 2}}})


async def until(handle: WorkflowHandle[Any, Any], holds: Callable[[IncidentState], bool]) -> IncidentState:
    """The state once `holds`. A signal landing while a run completes with continue-as-new fails that
    workflow task (the server's UnhandledCommand) and the retry takes it; a query in between is refused."""
    for _ in range(600):
        try:
            state: IncidentState = await handle.query(IncidentWorkflow.state)
        except RPCError as err:
            if err.status != RPCStatusCode.FAILED_PRECONDITION:
                raise
        else:
            if holds(state):
                return state
        await asyncio.sleep(0.1)
    raise AssertionError("the incident never got there")


async def test_sixty_large_refires_leave_the_incident_alive_and_approvable(dev_client: Client) -> None:
    queue = f"refire-storm-{uuid.uuid4().hex[:8]}"
    fakes = Fakes(reads={"probe.http": [{"ok": False}, {"ok": True, "status": 200}]})
    alert = make_alert(environment="prod")
    big = alert.model_copy(update={"annotations": {**alert.annotations, "description": ANNOTATION}})
    async with worker(dev_client, fakes, queue):
        first = await start(
            dev_client, alert, IncidentConfig(), shipped("service_down.yaml"), TWO_APPROVERS, queue
        )
        latest = dev_client.get_workflow_handle(alert.workflow_id, result_type=IncidentState)
        await until(latest, lambda s: s.phase == Phase.AWAITING_APPROVAL)
        await latest.signal(IncidentWorkflow.approve, Decision(approver="alice", reason="before the storm"))
        for _ in range(REFIRES):
            await latest.signal(IncidentWorkflow.alert, big)
        state = await until(latest, lambda s: s.alert_updates == REFIRES + 1)
        assert (await latest.describe()).run_id != first.result_run_id, "it continued as new"
        assert state.phase == Phase.AWAITING_APPROVAL and [a.approver for a in state.approvals] == ["alice"]
        await latest.signal(IncidentWorkflow.approve, Decision(approver="bob", reason="after"))
        # Bounded: were bob's approval lost, the incident would wait, and the test should say so.
        final = await asyncio.wait_for(latest.result(), timeout=120)
    assert final.phase == Phase.RESOLVED and fakes.applied() == ["restart"]
    assert events(final).count("alert re-fired") == REFIRES
    assert final.alert.annotations == alert.annotations, "the incident kept the alert it started with"
