"""Every shipped playbook run by the IncidentWorkflow on the time-skipping server.

Executors and reads are faked at the activity boundary (tests/workflows/fakes.py); the interpreter,
the policy, the approvals and the limiter are the real ones. Each test asserts the path the playbook
took (the timeline's `playbook path`), what was applied and the phase the incident ended in.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from tests.workflows.fakes import Fakes, detail, events, shipped, start, wait_event, worker
from worker.dry_run import load_sample
from workflows.activity_names import KUBE_EVENTS, KUBE_LOGS, KUBE_ROLLOUT_HISTORY
from workflows.alerts import Alert
from workflows.decisions import Decision, DecisionRequest
from workflows.evidence import Evidence
from workflows.incident import IncidentWorkflow
from workflows.incident_models import IncidentState
from workflows.phases import Phase
from workflows.policy import Policy

SAMPLES = Path(__file__).parents[1] / "playbooks" / "samples"
# Every environment auto-approves change actions: the approval paths have tests of their own.
AUTO = Policy(
    environments={"dev": {"auto_approve": ["read", "change"]}, "prod": {"auto_approve": ["read", "change"]}}
)
Steer = Callable[[WorkflowHandle[Any, Any]], Awaitable[None]]


def sample_alert(name: str, **labels: str) -> Alert:
    """The playbook's sample alert (tests/playbooks/samples), under a fingerprint of this test's own."""
    alert = load_sample(SAMPLES / f"{name}.json").alert
    return alert.model_copy(
        update={"fingerprint": uuid.uuid4().hex[:16], "labels": {**alert.labels, **labels}}
    )


async def run(
    env: WorkflowEnvironment,
    fakes: Fakes,
    name: str,
    policy: Policy = AUTO,
    steer: Steer | None = None,
    **labels: str,
) -> IncidentState:
    """Run the shipped playbook `name` for its sample alert until the incident ends."""
    queue = f"playbooks-{uuid.uuid4().hex[:8]}"
    async with worker(env.client, fakes, queue):
        handle = await start(
            env.client,
            sample_alert(name, **labels),
            playbook=shipped(f"{name}.yaml"),
            policy=policy,
            queue=queue,
        )
        if steer is not None:
            await steer(handle)
        state: IncidentState = await handle.result()
    return state


async def refused(handle: WorkflowHandle[Any, Any], approver: str) -> str:
    """Why the `decide` update's validator refused `approver`'s approval."""
    with pytest.raises(WorkflowUpdateFailedError) as raised:
        await handle.execute_update(IncidentWorkflow.decide, DecisionRequest(approve=True, approver=approver))
    return str(raised.value.cause).removeprefix("ValueError: ")


def path(state: IncidentState) -> str:
    return detail(state, "playbook path")


async def test_service_down_restarts_through_ansible_and_verifies(time_env: WorkflowEnvironment) -> None:
    fakes = Fakes(reads={"probe.http": [{"ok": False}, {"ok": False}, {"ok": True, "status": 200}]})
    state = await run(time_env, fakes, "service_down", policy=Policy())

    assert state.phase == Phase.RESOLVED
    assert path(state) == "probe -> still_down -> restart -> healthy"
    assert fakes.applied() == ["restart"]
    assert state.playbook is not None and state.playbook.name == "ServiceDown"
    assert len(state.playbook.sha256) == 64
    # The policy verdict, with its reason, and the decision with the values it compared.
    assert detail(state, "policy for restart") == "allowed: dev auto-approves change action 'restart-service'"
    assert detail(state, "decide still_down: then") == "equals(${steps.probe.ok}=false, false) -> true"
    assert state.plan is not None
    [restart] = state.plan.actions
    assert restart.preview and restart.result and restart.result.ok and restart.snapshot
    assert [n.phase for n in fakes.notifications if n.level == 0][-3:] == [
        Phase.EXECUTING,
        Phase.VERIFYING,
        Phase.RESOLVED,
    ]


async def test_service_down_that_answers_again_is_left_alone(time_env: WorkflowEnvironment) -> None:
    fakes = Fakes(reads={"probe.http": [{"ok": True, "status": 200}]})
    state = await run(time_env, fakes, "service_down", policy=Policy())
    assert state.phase == Phase.RESOLVED
    assert path(state) == "probe -> still_down -> healed"
    assert fakes.applied() == [] and "ansible.preview" not in fakes.calls


async def test_service_down_in_prod_waits_for_a_human(time_env: WorkflowEnvironment) -> None:
    async def approve(handle: WorkflowHandle[Any, Any]) -> None:
        waiting = await wait_event(handle, "awaiting approval")
        assert waiting.phase == Phase.AWAITING_APPROVAL
        assert "prod needs approval for change actions" in detail(waiting, "awaiting approval")
        await handle.signal(IncidentWorkflow.approve, Decision(approver="alice", reason="go"))

    fakes = Fakes(reads={"probe.http": [{"ok": False}, {"ok": True}]})
    state = await run(time_env, fakes, "service_down", policy=Policy(), steer=approve, environment="prod")
    assert state.phase == Phase.RESOLVED
    assert detail(state, "approved restart") == "alice"
    assert [(a.approver, a.approved) for a in state.approvals] == [("alice", True)]


async def test_high_cpu_scales_out_when_sustained(time_env: WorkflowEnvironment) -> None:
    fakes = Fakes(reads={"metrics.query": [{"value": 0.93}, {"value": 0.4}]})
    state = await run(time_env, fakes, "high_cpu")
    assert state.phase == Phase.RESOLVED
    assert path(state) == "cpu -> sustained -> scale_out -> relieved"
    assert fakes.steps[-2:] == ["kubernetes.snapshot:scale_out", "kubernetes.apply:scale_out"]


async def test_high_cpu_scales_back_when_it_does_not_help(time_env: WorkflowEnvironment) -> None:
    fakes = Fakes(reads={"metrics.query": [{"value": 0.93}, {"value": 0.95}]})
    state = await run(time_env, fakes, "high_cpu")
    assert state.phase == Phase.ROLLED_BACK
    assert path(state) == "cpu -> sustained -> scale_out -> relieved (failed)"
    assert fakes.steps[-1] == "kubernetes.rollback:scale_out"
    assert state.plan is not None and state.plan.actions[0].rollback is not None


@pytest.mark.parametrize(("minutes_ago", "fix"), [(10, "undo_deploy"), (60 * 24, "raise_limit")])
async def test_high_memory_undoes_a_recent_deploy_or_raises_the_limit(
    time_env: WorkflowEnvironment, minutes_ago: int, fix: str
) -> None:
    changed = await time_env.get_current_time() - timedelta(minutes=minutes_ago)
    evidence = Evidence(deployments=[{"name": "web", "revision": 7, "changed_at": changed}])
    fakes = Fakes(
        reads={"gather_evidence": [evidence.model_dump(mode="json")], "metrics.query": [{"value": 0}]}
    )
    state = await run(time_env, fakes, "high_memory")
    assert state.phase == Phase.RESOLVED
    assert path(state) == f"evidence -> recent_deploy -> {fix} -> stable"
    assert fakes.applied() == [fix]


async def test_disk_full_cleans_up_and_reports(time_env: WorkflowEnvironment) -> None:
    fakes = Fakes(reads={"metrics.query": [{"value": 4.5}, {"value": 30}]})
    state = await run(time_env, fakes, "disk_full")
    assert state.phase == Phase.RESOLVED
    assert path(state) == "free -> short -> cleanup -> space_back -> report"
    assert fakes.steps[-1] == "ansible.apply:cleanup"
    assert any(n.message == "disk on db-1:/var cleaned; 30.0% free" for n in fakes.notifications)


async def test_high_latency_with_a_dependency_down_escalates(time_env: WorkflowEnvironment) -> None:
    fakes = Fakes(reads={"metrics.query": [{"value": 1}]})
    state = await run(time_env, fakes, "high_latency")
    assert state.phase == Phase.ESCALATED
    assert path(state) == "dependencies_down -> dependency_problem -> tell_owners -> escalate"
    assert fakes.applied() == []
    assert [n.level for n in fakes.notifications if n.message.startswith("web is slow")] == [1]


async def test_high_latency_when_saturated_scales_out(time_env: WorkflowEnvironment) -> None:
    fakes = Fakes(reads={"metrics.query": [{"value": 0}, {"value": 0.9}, {"value": 0.2}]})
    state = await run(time_env, fakes, "high_latency")
    assert state.phase == Phase.RESOLVED
    assert (
        path(state)
        == "dependencies_down -> dependency_problem -> cpu -> saturated -> scale_out -> fast_again"
    )


async def test_crash_looping_pod_with_an_old_rollout_is_restarted(time_env: WorkflowEnvironment) -> None:
    history = {
        "current_revision": 4,
        "revisions": [{"name": "web-7f8a", "revision": 4, "changed_at": "2000-01-02T00:00:00Z"}],
    }
    fakes = Fakes(
        reads={
            KUBE_LOGS: [{"lines": ["panic: config key DATABASE_URL missing"]}],
            KUBE_EVENTS: [{"events": [{"type": "Warning", "reason": "BackOff"}]}],
            KUBE_ROLLOUT_HISTORY: [history],
            "metrics.query": [{"value": 0}],
        }
    )
    state = await run(time_env, fakes, "kube_pod_crash_looping")
    assert state.phase == Phase.RESOLVED
    assert path(state) == "logs -> events -> history -> recent_rollout -> restart -> stopped_crashing"
    assert "DATABASE_URL missing" in detail(state, "check logs")
    assert fakes.applied() == ["restart"]


async def test_replicas_mismatch_rolls_back(time_env: WorkflowEnvironment) -> None:
    fakes = Fakes(reads={"metrics.query": [{"value": 2}, {"value": 0}]})
    state = await run(time_env, fakes, "kube_deployment_replicas_mismatch")
    assert state.phase == Phase.RESOLVED
    assert path(state) == "undo -> available"
    assert "attempt 2" in detail(state, "verify available passed")


async def test_node_not_ready_needs_two_distinct_eligible_approvers(time_env: WorkflowEnvironment) -> None:
    policy = Policy(groups={"sre": ["alice", "bob"]}, approvers={"destructive": ["sre"]})

    async def approve(handle: WorkflowHandle[Any, Any]) -> None:
        waiting = await wait_event(handle, "awaiting approval")
        assert "needs 2 distinct approver(s)" in detail(waiting, "awaiting approval")
        await handle.execute_update(IncidentWorkflow.decide, DecisionRequest(approve=True, approver="alice"))
        assert "alice has already decided" in await refused(handle, "alice")
        await handle.signal(IncidentWorkflow.approve, Decision(approver="alice"))  # ignored, recorded
        # Mallory may approve the playbook's step, which names no group, but not the destructive drain.
        await handle.signal(IncidentWorkflow.approve, Decision(approver="mallory"))
        drain = await wait_event(handle, "awaiting approval", times=2)
        assert "of alice, bob" in drain.timeline[-1].detail and fakes.applied() == ["cordon"]
        assert await refused(handle, "mallory") == "mallory may not decide on this (eligible: alice, bob)"
        await handle.signal(IncidentWorkflow.approve, Decision(approver="bob"))

    fakes = Fakes(reads={"metrics.query": [{"value": 0}]})
    state = await run(time_env, fakes, "node_not_ready", policy=policy, steer=approve)
    assert state.phase == Phase.RESOLVED, events(state)
    assert path(state) == "approve_drain -> cordon -> uncordon -> drain -> emptied -> hand_over"
    assert fakes.applied() == ["cordon", "drain"]
    assert "destructive actions need 2 distinct approvers" in detail(state, "policy for drain")
    assert detail(state, "approved drain") == "alice, bob"
    assert "ignored approval" in events(state)
    assert [a.approver for a in state.approvals] == ["alice", "mallory", "bob"]


async def test_certificate_is_renewed_through_terraform(time_env: WorkflowEnvironment) -> None:
    fakes = Fakes(reads={"metrics.query": [{"value": 89}]})
    state = await run(time_env, fakes, "certificate_expiring_soon")
    assert state.phase == Phase.RESOLVED
    assert path(state) == "renew -> fresh"
    assert fakes.steps[-2:] == ["terraform.snapshot:renew", "terraform.apply:renew"]


async def test_terraform_drift_applies_the_approved_plan(time_env: WorkflowEnvironment) -> None:
    async def approve(handle: WorkflowHandle[Any, Any]) -> None:
        waiting = await wait_event(handle, "awaiting approval")
        assert "network: 1 to change" in detail(waiting, "awaiting approval")
        assert fakes.applied() == []
        await handle.signal(IncidentWorkflow.approve, Decision(approver="carol"))

    fakes = Fakes(
        previews={
            "plan": {"changed": True, "summary": "network: 1 to change"},
            "converged": {"changed": False, "summary": "network: no changes"},
        }
    )
    state = await run(time_env, fakes, "terraform_drift", steer=approve)
    assert state.phase == Phase.RESOLVED
    assert path(state) == "plan -> drifted -> approve_apply -> apply -> converged"
    assert fakes.steps == [
        "terraform.preview:plan",
        "terraform.preview:apply",
        "terraform.snapshot:apply",
        "terraform.apply:apply",
        "terraform.preview:converged",
    ]
