"""The trust boundary inside IncidentWorkflow: the sender's credential, not alert text, decides policy.

Each test starts the incident as the API would, with the trusted context in `IncidentInput`
(environment, opener, the sender's services), and tries what an attacker's alert would.
"""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from tests.playbooks.builders import pin, playbook, probe_verify
from tests.workflows.fakes import (
    Fakes,
    detail,
    events,
    make_alert,
    shipped,
    start,
    wait_event,
    wait_phase,
    worker,
)
from workflows.alerts import Alert
from workflows.decisions import DecisionRequest
from workflows.incident import IncidentWorkflow
from workflows.incident_models import IncidentState
from workflows.phases import Phase
from workflows.policy import Policy

SERVICE_DOWN = shipped("service_down.yaml")


def scale_step() -> dict[str, Any]:
    action = {
        "executor": "kubernetes",
        "name": "scale-out",
        "operation": "scale",
        "namespace": "shop",
        "args": {"deployment": "${alert.labels.deployment}", "replicas": 3},
    }
    return {"id": "out", "kind": "action", "action": action}


def scale_deployment_from_label() -> Any:
    return pin(playbook([scale_step(), probe_verify()]))


async def test_a_dev_label_from_a_prod_sender_still_needs_a_human(time_env: WorkflowEnvironment) -> None:
    async with worker(time_env.client, Fakes()):
        handle = await start(time_env.client, make_alert(), playbook=SERVICE_DOWN, environment="prod")
        state = await wait_phase(handle, Phase.AWAITING_APPROVAL)
    assert state.environment == "prod"
    assert detail(state, "environment") == "prod from the sender's credential; label says dev"
    assert "prod needs approval for change actions" in detail(state, "policy for restart")
    await handle.terminate()


async def test_the_opener_may_not_approve_and_approvers_are_principals(time_env: WorkflowEnvironment) -> None:
    async with worker(time_env.client, Fakes()):
        handle = await start(
            time_env.client, make_alert(), playbook=SERVICE_DOWN, environment="prod", opened_by="am-prod"
        )
        await wait_phase(handle, Phase.AWAITING_APPROVAL)
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(
                IncidentWorkflow.decide, DecisionRequest(approver="am-prod", approve=True, via="api")
            )
        assert "am-prod opened this incident and so may not approve it" in str(refused.value.cause)
        with pytest.raises(WorkflowUpdateFailedError) as limited:
            await handle.execute_update(
                IncidentWorkflow.decide,
                DecisionRequest(approver="carol", approve=True, via="api", risks=["read"]),
            )
        assert "carol may decide only read actions, not change actions" in str(limited.value.cause)
        with pytest.raises(WorkflowUpdateFailedError) as elsewhere:
            await handle.execute_update(
                IncidentWorkflow.decide,
                DecisionRequest(approver="dan", approve=True, via="api", environments=["dev"]),
            )
        assert "dan may decide only in dev, not prod" in str(elsewhere.value.cause)
        state: IncidentState = await handle.execute_update(
            IncidentWorkflow.decide, DecisionRequest(approver="bob", approve=True, via="api")
        )
        # Ended on its worker: terminated with the restart still to run, it would leave the
        # time-skipping server a task no worker takes (see tests/conftest.py::time_env).
        final: IncidentState = await handle.result()
    assert [(a.approver, a.via) for a in state.approvals] == [("bob", "api")]
    assert detail(state, "approval by bob") == "via api: no reason"
    assert final.phase == Phase.ROLLED_BACK  # the fake probe never answers, so the restart is undone


async def test_a_notification_with_other_labels_cannot_resolve_the_incident(
    time_env: WorkflowEnvironment,
) -> None:
    async with worker(time_env.client, Fakes()):
        alert = make_alert()
        handle = await start(time_env.client, alert, playbook=SERVICE_DOWN, environment="prod")
        await wait_phase(handle, Phase.AWAITING_APPROVAL)
        forged = Alert(
            fingerprint=alert.fingerprint, status="resolved", labels={**alert.labels, "service": "decoy"}
        )
        await handle.signal(IncidentWorkflow.alert, forged)
        state = await wait_event(handle, "refused resolved notification")
    assert state.phase == Phase.AWAITING_APPROVAL and state.resolved_at is None
    assert "its labels differ from this incident's (service)" in detail(
        state, "refused resolved notification"
    )
    await handle.terminate()


async def test_policy_judges_the_deployment_acted_on_not_the_service_label(
    time_env: WorkflowEnvironment,
) -> None:
    policy = Policy(services={"deny": ["payments-*"]})
    alert = make_alert("HighCPU", service="frontend", deployment="payments-api")
    fakes = Fakes()
    async with worker(time_env.client, fakes):
        handle = await start(time_env.client, alert, playbook=scale_deployment_from_label(), policy=policy)
        state: IncidentState = await handle.result()
    assert state.phase == Phase.ESCALATED
    assert "service 'payments-api' is denied (payments-*)" in detail(state, "policy for out")
    assert not [c for c in fakes.calls if c.endswith(".apply")]


async def test_actions_stay_inside_the_senders_services(time_env: WorkflowEnvironment) -> None:
    alert = make_alert("HighCPU", service="frontend", deployment="payments-api")
    fakes = Fakes()
    async with worker(time_env.client, fakes):
        handle = await start(
            time_env.client, alert, playbook=scale_deployment_from_label(), sender_services=["frontend*"]
        )
        state: IncidentState = await handle.result()
    assert state.phase == Phase.ESCALATED
    assert "outside the services the alert's sender may speak for (frontend*)" in state.timeline[-1].detail
    assert not [c for c in fakes.calls if c.endswith(".apply")]


async def test_a_failed_preview_withholds_auto_approval(time_env: WorkflowEnvironment) -> None:
    fakes = Fakes(previews={"restart": {"ok": False, "summary": "check mode failed"}})
    async with worker(time_env.client, fakes):
        handle = await start(time_env.client, make_alert(), playbook=SERVICE_DOWN)  # dev: auto-approves
        state = await wait_phase(handle, Phase.AWAITING_APPROVAL)
    assert "auto-approval withheld for restart" in events(state)
    assert detail(state, "auto-approval withheld for restart") == "the preview failed (check mode failed)"
    assert not [c for c in fakes.calls if c.endswith(".apply")]
    await handle.terminate()


async def test_a_playbook_that_cannot_verify_needs_a_human(time_env: WorkflowEnvironment) -> None:
    unverified = pin(playbook([scale_step()]))
    alert = make_alert("HighCPU", deployment="web")
    async with worker(time_env.client, Fakes()):
        handle = await start(time_env.client, alert, playbook=unverified)
        state = await wait_phase(handle, Phase.AWAITING_APPROVAL)
    assert (
        detail(state, "auto-approval withheld for out") == "the playbook has nothing to verify the fix with"
    )
    await handle.terminate()
