"""On the real dev server: an incident waiting for approval outlives 60 re-fires with large annotations.

Sent as full alerts straight to the workflow (a sender bypassing the API's slim notices), 60 re-fires
of 400 KB each would take a run to 24 MB of history; the incident continues as new at 8 MB (the
default `continue_after_bytes`) and stays approvable, with the approval given before the re-fires.
"""

from __future__ import annotations

import uuid

from temporalio.client import Client

from tests.workflows.fakes import Fakes, events, make_alert, shipped, start, wait_phase, wait_state, worker
from workflows.incident import IncidentWorkflow
from workflows.models import Decision, IncidentConfig, IncidentState, Phase
from workflows.policy import Policy

REFIRES = 60
ANNOTATION = "x" * 400_000
TWO_APPROVERS = Policy.model_validate({"environments": {"prod": {"approvers_required": 2}}})


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
        await wait_phase(latest, Phase.AWAITING_APPROVAL)
        await latest.signal(IncidentWorkflow.approve, Decision(approver="alice", reason="before the storm"))
        for _ in range(REFIRES):
            await latest.signal(IncidentWorkflow.alert, big)
        state = await wait_state(latest, lambda s: s.alert_updates == REFIRES + 1, "counted every re-fire")
        assert (await latest.describe()).run_id != first.result_run_id, "it continued as new"
        assert state.phase == Phase.AWAITING_APPROVAL and [a.approver for a in state.approvals] == ["alice"]
        await latest.signal(IncidentWorkflow.approve, Decision(approver="bob", reason="after"))
        final = await latest.result()
    assert final.phase == Phase.RESOLVED and fakes.applied() == ["restart"]
    assert events(final).count("alert re-fired") == REFIRES
    assert final.alert.annotations == alert.annotations, "the incident kept the alert it started with"
