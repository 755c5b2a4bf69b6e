"""IncidentWorkflow on the time-skipping server, with activities mocked under their real names."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.registration import fake
from tests.workflows.fakes import (
    CONFIG,
    QUEUE,
    Fakes,
    detail,
    events,
    expect_cancelled,
    make_alert,
    shipped,
    start,
    wait_event,
    wait_phase,
    worker,
)
from worker.sandbox import SANDBOX_RUNNER
from workflows.activity_names import GATHER_EVIDENCE, VERIFY
from workflows.alerts import Alert
from workflows.decisions import Decision, DecisionRequest
from workflows.diagnosis import Diagnosis, ProposedAction
from workflows.evidence import Evidence
from workflows.incident import IncidentWorkflow
from workflows.incident_models import IncidentState
from workflows.phases import Phase
from workflows.plans import VerifyRequest
from workflows.policy import Policy

SERVICE_DOWN = shipped("service_down.yaml")


@pytest.fixture
async def fakes(time_env: WorkflowEnvironment) -> AsyncIterator[Fakes]:
    fakes = Fakes()
    async with worker(time_env.client, fakes):
        yield fakes


async def test_approval_runs_fix_and_verifies(time_env: WorkflowEnvironment, fakes: Fakes) -> None:
    handle = await start(time_env.client, make_alert())
    waiting = await wait_phase(handle, Phase.AWAITING_APPROVAL)
    assert waiting.plan is not None and waiting.plan.actions[0].preview is not None
    assert waiting.plan.actions[0].preview.summary == "preview done"
    assert "ansible.apply" not in fakes.calls  # nothing runs before a human says so

    await handle.signal(IncidentWorkflow.approve, Decision(approver="alice", reason="looks right"))
    state: IncidentState = await handle.result()

    assert state.phase == Phase.RESOLVED
    assert [(a.approver, a.approved, a.reason) for a in state.approvals] == [("alice", True, "looks right")]
    assert fakes.calls[-3:] == ["ansible.snapshot", "ansible.apply", "verify"]
    assert "approval by alice" in events(state)
    assert [r.outcome for r in fakes.remembered] == [Phase.RESOLVED]  # closed incidents become memory
    phases = [n.phase for n in fakes.notifications if n.level == 0]
    assert phases == [
        Phase.RECEIVED,
        Phase.GATHERING,
        Phase.DIAGNOSING,
        Phase.AWAITING_APPROVAL,
        Phase.EXECUTING,
        Phase.VERIFYING,
        Phase.RESOLVED,
    ]


async def test_escalation_chain_runs_over_hours_in_moments(
    time_env: WorkflowEnvironment, fakes: Fakes
) -> None:
    handle = await start(time_env.client, make_alert())
    state: IncidentState = await handle.result()

    assert state.phase == Phase.ESCALATED
    assert [n.level for n in fakes.notifications if n.level] == [1, 2]
    waited = state.timeline[-1].at - next(e.at for e in state.timeline if e.event == "awaiting approval")
    assert waited >= CONFIG.give_up_after  # the durable timers really elapsed, in server time
    assert "ansible.apply" not in fakes.calls


async def test_approval_after_first_escalation_still_counts(
    time_env: WorkflowEnvironment, fakes: Fakes
) -> None:
    handle = await start(time_env.client, make_alert())
    await wait_phase(handle, Phase.AWAITING_APPROVAL)
    await time_env.sleep(timedelta(minutes=20))  # past the first reminder
    await handle.signal(IncidentWorkflow.approve, Decision(approver="bob"))
    state: IncidentState = await handle.result()

    assert state.phase == Phase.RESOLVED
    assert "approval still pending" in events(state)
    assert "escalated to the next level" not in events(state)


async def test_rejection(time_env: WorkflowEnvironment, fakes: Fakes) -> None:
    handle = await start(time_env.client, make_alert())
    await wait_phase(handle, Phase.AWAITING_APPROVAL)
    await handle.signal(IncidentWorkflow.reject, Decision(approver="carol", reason="not during peak"))
    state: IncidentState = await handle.result()

    assert state.phase == Phase.REJECTED
    assert state.approvals[0].approved is False and state.approvals[0].approver == "carol"
    assert state.timeline[-1].detail == "not during peak"
    assert "ansible.apply" not in fakes.calls


async def test_resolved_alert_before_approval_cancels(time_env: WorkflowEnvironment, fakes: Fakes) -> None:
    alert = make_alert()
    handle = await start(time_env.client, alert)
    await wait_phase(handle, Phase.AWAITING_APPROVAL)
    await handle.signal(IncidentWorkflow.alert, alert.model_copy(update={"status": "resolved"}))
    state: IncidentState = await handle.result()

    assert state.phase == Phase.CANCELLED
    assert state.resolved_at is not None
    assert "ansible.apply" not in fakes.calls and "ansible.snapshot" not in fakes.calls


async def test_resolved_after_action_is_only_recorded(time_env: WorkflowEnvironment) -> None:
    """A resolve that arrives once the fix has run must not cancel verification."""
    fakes = Fakes()
    gate = asyncio.Event()
    verify_calls: list[str] = []

    @fake(VERIFY)
    async def slow_verify(request: VerifyRequest) -> str:
        verify_calls.append(request.probe_url)
        await gate.wait()
        return "healthy"

    acts = [a for a in fakes.activities() if getattr(a, "__temporal_activity_definition").name != VERIFY]
    alert = make_alert()
    async with Worker(
        time_env.client,
        task_queue=QUEUE,
        workflows=[IncidentWorkflow],
        activities=[*acts, slow_verify],
        workflow_runner=SANDBOX_RUNNER,
    ):
        handle = await start(time_env.client, alert, CONFIG.model_copy(update={"auto_approve": True}))
        await wait_phase(handle, Phase.VERIFYING)
        await handle.signal(IncidentWorkflow.alert, alert.model_copy(update={"status": "resolved"}))
        gate.set()
        state: IncidentState = await handle.result()

    assert state.phase == Phase.RESOLVED
    assert "alert resolved" in events(state)
    assert verify_calls == ["http://demo/health"]


async def test_late_and_duplicate_decisions(time_env: WorkflowEnvironment, fakes: Fakes) -> None:
    handle = await start(time_env.client, make_alert())
    await wait_phase(handle, Phase.AWAITING_APPROVAL)

    # Dave approves, then presses again and Erin rejects once the incident has moved on: one approval
    # counts, the rest are recorded as ignored rather than dropped silently. (Waiting for Dave's to be
    # recorded keeps the test deterministic: decisions landing in one workflow task all count.)
    await handle.signal(IncidentWorkflow.approve, Decision(approver="dave"))
    await wait_event(handle, "approval by dave")
    await handle.signal(IncidentWorkflow.approve, Decision(approver="dave"))
    await handle.signal(IncidentWorkflow.reject, Decision(approver="erin", reason="too late"))
    state: IncidentState = await handle.result()
    assert state.phase == Phase.RESOLVED
    assert [a.approver for a in state.approvals] == ["dave"]
    ignored = [e for e in state.timeline if e.event.startswith("ignored")]
    assert {e.event for e in ignored} >= {"ignored rejection"}
    assert len(ignored) == 2

    # A signal to a closed incident fails at the server (the API turns this into a 409).
    with pytest.raises(Exception, match=r"(?i)completed"):
        await handle.signal(IncidentWorkflow.approve, Decision(approver="frank"))


async def test_update_validator_rejects_outside_approval(time_env: WorkflowEnvironment) -> None:
    fakes = Fakes()
    gate = asyncio.Event()

    @fake(GATHER_EVIDENCE)
    async def slow_gather(alert: Alert) -> Evidence:
        await gate.wait()
        return Evidence()

    acts = [
        a for a in fakes.activities() if getattr(a, "__temporal_activity_definition").name != GATHER_EVIDENCE
    ]
    async with Worker(
        time_env.client,
        task_queue=QUEUE,
        workflows=[IncidentWorkflow],
        activities=[*acts, slow_gather],
        workflow_runner=SANDBOX_RUNNER,
    ):
        handle = await start(time_env.client, make_alert())
        await wait_phase(handle, Phase.GATHERING)
        with pytest.raises(WorkflowUpdateFailedError) as raised:
            await handle.execute_update(
                IncidentWorkflow.decide, DecisionRequest(approve=True, approver="frank")
            )
        assert "not AwaitingApproval" in str(raised.value.cause)

        # An early signal is not lost silently: it is recorded as ignored.
        await handle.signal(IncidentWorkflow.approve, Decision(approver="frank"))
        gate.set()
        state = await wait_phase(handle, Phase.AWAITING_APPROVAL)
        assert "ignored approval" in events(state)

        await handle.execute_update(IncidentWorkflow.decide, DecisionRequest(approve=True, approver="grace"))
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update(
                IncidentWorkflow.decide, DecisionRequest(approve=True, approver="grace")
            )
        final: IncidentState = await handle.result()
    assert final.phase == Phase.RESOLVED
    assert [a.approver for a in final.approvals] == ["grace"]


async def test_failed_verification_rolls_back(time_env: WorkflowEnvironment) -> None:
    fakes = Fakes(verify_ok=False)
    async with Worker(
        time_env.client,
        task_queue=QUEUE,
        workflows=[IncidentWorkflow],
        activities=fakes.activities(),
        workflow_runner=SANDBOX_RUNNER,
    ):
        handle = await start(time_env.client, make_alert(), CONFIG.model_copy(update={"auto_approve": True}))
        state: IncidentState = await handle.result()

    assert state.phase == Phase.ROLLED_BACK
    assert fakes.calls[-2:] == ["verify", "ansible.rollback"]
    assert state.plan is not None and state.plan.actions[0].rollback is not None
    assert "rollback of restart" in events(state)


async def test_failed_apply_compensates_and_fails(time_env: WorkflowEnvironment) -> None:
    fakes = Fakes(apply_fails=True)
    async with Worker(
        time_env.client,
        task_queue=QUEUE,
        workflows=[IncidentWorkflow],
        activities=fakes.activities(),
        workflow_runner=SANDBOX_RUNNER,
    ):
        handle = await start(time_env.client, make_alert(), CONFIG.model_copy(update={"auto_approve": True}))
        state: IncidentState = await handle.result()

    assert state.phase == Phase.FAILED
    assert "task failed on localhost" in state.timeline[-1].detail
    assert "verify" not in fakes.calls
    assert fakes.calls[-1] == "ansible.rollback"


async def test_unknown_alert_escalates_with_diagnosis(time_env: WorkflowEnvironment, fakes: Fakes) -> None:
    handle = await start(time_env.client, make_alert(name="SomethingNobodyPlannedFor"))
    state: IncidentState = await handle.result()

    assert state.phase == Phase.ESCALATED
    assert state.diagnosis is not None and state.diagnosis.category == "dependency_down"
    assert "no remediation known" in events(state)


async def test_refire_signals_same_incident(time_env: WorkflowEnvironment, fakes: Fakes) -> None:
    alert = make_alert()
    first = await start(time_env.client, alert)
    second = await start(time_env.client, alert)  # signal-with-start onto the running incident
    assert second.result_run_id == first.result_run_id
    state = await wait_phase(first, Phase.AWAITING_APPROVAL)
    assert state.alert_updates == 2
    assert "alert re-fired" in events(state)
    await first.cancel()
    await expect_cancelled(first)


async def test_cancellation_is_visible(time_env: WorkflowEnvironment, fakes: Fakes) -> None:
    handle = await start(time_env.client, make_alert())
    await wait_phase(handle, Phase.AWAITING_APPROVAL)
    await handle.cancel()
    await expect_cancelled(handle)
    state: IncidentState = await handle.query(IncidentWorkflow.state)
    assert state.phase == Phase.CANCELLED


# --- playbooks, policy and the fallback --------------------------------------------------------------


async def test_policy_refusal_escalates_with_its_reason(time_env: WorkflowEnvironment) -> None:
    fakes = Fakes(reads={"probe.http": [{"ok": False}]})
    policy = Policy(services={"deny": ["demo*"]})
    async with worker(time_env.client, fakes, "incident-policy"):
        handle = await start(
            time_env.client, make_alert(), playbook=SERVICE_DOWN, policy=policy, queue="incident-policy"
        )
        state: IncidentState = await handle.result()

    assert state.phase == Phase.ESCALATED
    assert detail(state, "policy for restart") == "denied: service 'demo' is denied (demo*)"
    assert state.timeline[-1].detail == "policy refused restart: service 'demo' is denied (demo*)"
    assert fakes.applied() == [] and "ansible.preview" not in fakes.calls


async def test_dry_run_records_everything_and_hands_over(time_env: WorkflowEnvironment) -> None:
    """Shadow mode ends Escalated: nothing ran, so the alert is still a human's (see workflows/playbook_run.py)."""
    fakes = Fakes(reads={"probe.http": [{"ok": False}]})
    async with worker(time_env.client, fakes, "incident-dry"):
        handle = await start(
            time_env.client,
            make_alert(),
            playbook=SERVICE_DOWN,
            policy=Policy(dry_run=True),
            queue="incident-dry",
        )
        state: IncidentState = await handle.result()

    assert state.phase == Phase.ESCALATED
    assert state.timeline[-1].event == "dry-run: nothing was executed"
    assert detail(state, "policy for restart").startswith("dry-run, allowed: dev auto-approves")
    assert "dry-run: would apply restart" in events(state)
    assert detail(state, "playbook path") == "probe -> still_down -> restart (dry-run) -> healthy (dry-run)"
    assert fakes.applied() == [] and "ansible.preview" in fakes.calls
    assert [n.phase for n in fakes.notifications if n.level == 0][-1] == Phase.ESCALATED


async def test_a_playbook_missing_a_label_falls_back_to_the_catalogue(
    time_env: WorkflowEnvironment, fakes: Fakes
) -> None:
    alert = make_alert().model_copy(update={"annotations": {}})  # ServiceDown needs probe_url
    handle = await start(time_env.client, alert, playbook=SERVICE_DOWN)
    state = await wait_phase(handle, Phase.AWAITING_APPROVAL)
    assert "param probe_url: no default" in detail(state, "no playbook")
    assert detail(state, "policy for restart") == "allowed: dev auto-approves change action 'restart-service'"
    assert state.playbook is None and state.plan is not None and state.plan.actions[0].preview is not None
    await handle.signal(IncidentWorkflow.reject, Decision(approver="carol"))
    assert (await handle.result()).phase == Phase.REJECTED


async def test_unknown_alert_with_a_proposed_action_gets_a_plan_for_approval(
    time_env: WorkflowEnvironment,
) -> None:
    proposal = ProposedAction(name="restart-service", args={"service": "demo"}, reason="it hangs")
    fakes = Fakes(
        diagnosis=Diagnosis(category="unknown", confidence=0.7, explanation="?", proposed_actions=[proposal])
    )
    async with worker(time_env.client, fakes, "incident-proposal"):
        handle = await start(time_env.client, make_alert(name="Weird"), queue="incident-proposal")
        state = await wait_phase(handle, Phase.AWAITING_APPROVAL)
        assert "no playbook matches Weird" in detail(state, "no playbook")
        assert state.plan is not None and state.plan.summary.startswith("restart service 'demo'")
        await handle.signal(IncidentWorkflow.approve, Decision(approver="alice"))
        final: IncidentState = await handle.result()
    assert final.phase == Phase.RESOLVED and fakes.applied() == ["restart"]


async def test_fallback_plan_refused_by_policy_escalates(time_env: WorkflowEnvironment, fakes: Fakes) -> None:
    handle = await start(time_env.client, make_alert(), policy=Policy(services={"allow": ["other"]}))
    state: IncidentState = await handle.result()
    assert state.phase == Phase.ESCALATED
    assert state.timeline[-1].event == "policy refused the plan"
    assert state.timeline[-1].detail == "service 'demo' is not in the allow list"
    assert "ansible.preview" not in fakes.calls
