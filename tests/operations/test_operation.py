"""OperationWorkflow on the time-skipping server: targets, concurrency, retry, dry-run, health score."""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from tests.operations.fakes import Ops, OpsFakes, pinned, restart
from workflows.decisions import Decision
from workflows.incident_models import IncidentState
from workflows.operation_models import OperationInput, OperationState
from workflows.phases import Phase

HEALTH = pinned("ops_health_check.yaml")


async def test_every_target_runs_and_no_more_than_the_concurrency_at_once(
    time_env: WorkflowEnvironment,
) -> None:
    fakes = OpsFakes()
    targets = [f"web-{n}:8080" for n in range(1, 6)]
    state = await Ops(time_env.client, fakes).run(restart(targets, concurrency=2))

    assert state.phase == Phase.RESOLVED, state.summary
    assert [t.status for t in state.targets] == ["resolved"] * 5
    assert sorted(fakes.applies) == sorted(targets) and set(fakes.applies.values()) == {1}
    assert fakes.max_in_flight == 2  # the limit held, and it was used
    assert state.health_score == 100
    assert [t.workflow_id for t in state.targets] == [f"{state.operation_id}.{t}" for t in targets]
    assert all(t.path[-1].step == "healthy" and t.path[-1].status == "ok" for t in state.targets)
    assert state.summary == "5 of 5 target(s) resolved (5 resolved); health score 100"


async def test_concurrency_one_is_a_rolling_restart_in_target_order(time_env: WorkflowEnvironment) -> None:
    fakes = OpsFakes(apply_seconds=0.05)
    targets = ["c:1", "a:1", "b:1"]
    await Ops(time_env.client, fakes).run(restart(targets, concurrency=1))
    assert fakes.max_in_flight == 1
    assert fakes.called("ansible.apply") == targets


async def test_a_failed_target_is_run_again_by_its_retry_policy(time_env: WorkflowEnvironment) -> None:
    fakes = OpsFakes(fail_first={"b:1"}, apply_seconds=0.01)
    state = await Ops(time_env.client, fakes).run(restart(["a:1", "b:1"], attempts=2, concurrency=2))

    by_target = {t.target: t for t in state.targets}
    assert by_target["b:1"].status == "resolved" and by_target["b:1"].attempts == 2
    assert by_target["a:1"].attempts == 1
    assert fakes.applies == {"a:1": 1, "b:1": 2}
    assert fakes.called("ansible.rollback") == ["b:1"]  # the failed attempt was compensated first
    assert state.phase == Phase.RESOLVED


async def test_without_retries_a_failure_stops_the_batch_past_max_failures(
    time_env: WorkflowEnvironment,
) -> None:
    fakes = OpsFakes(fail_first={"a:1"}, apply_seconds=0.01)
    state = await Ops(time_env.client, fakes).run(restart(["a:1", "b:1", "c:1"], max_failures=0))

    assert [(t.target, t.status) for t in state.targets] == [
        ("a:1", "failed"),
        ("b:1", "skipped"),
        ("c:1", "skipped"),
    ]
    assert state.targets[0].reason == "action restart failed: a:1 did not come back"
    assert state.targets[1].reason == "not started: more than 0 target(s) failed"
    assert fakes.applies == {"a:1": 1}
    assert state.phase == Phase.FAILED
    assert state.health_score == 0


async def test_dry_run_previews_and_executes_nothing(time_env: WorkflowEnvironment) -> None:
    fakes = OpsFakes()
    state = await Ops(time_env.client, fakes).run(restart(["a:1", "b:1"], dry_run=True))

    assert sorted(fakes.called("ansible.preview")) == ["a:1", "b:1"]
    for op in ("ansible.snapshot", "ansible.apply", "ansible.rollback"):
        assert fakes.called(op) == []
    assert all(t.status == "resolved" and t.applied == [] for t in state.targets)
    assert all(t.path[0].status == "dry-run" for t in state.targets)
    # Nothing was done, so like a dry-run incident the targets end Escalated: a human must act.
    assert state.phase == Phase.ESCALATED
    assert state.summary.endswith("; dry-run: nothing was executed")


async def test_health_check_scores_the_share_of_healthy_targets(time_env: WorkflowEnvironment) -> None:
    fakes = OpsFakes(unhealthy={"db-1"}, slow={"cache-1"})
    inp = OperationInput(
        pinned=HEALTH, targets=["web-1:80", "web-2:80", "db-1:5432", "cache-1:6379"], concurrency=4
    )
    state = await Ops(time_env.client, fakes).run(inp)

    assert state.health_score == 50
    assert state.phase == Phase.ESCALATED
    by_target = {t.target: t for t in state.targets}
    assert by_target["web-1:80"].status == "resolved"
    assert by_target["db-1:5432"].status == "escalated"
    assert by_target["db-1:5432"].reason == (
        "down: http://db-1:5432/health does not answer: ConnectError: refused"
    )
    assert by_target["cache-1:6379"].reason == (
        "slow: http://cache-1:6379/health took 5000.0 ms (limit 1000.0 ms)"
    )
    assert fakes.called("ansible.apply") == []
    assert state.summary.startswith("2 of 4 target(s) resolved (2 resolved, 2 escalated)")


async def test_approval_sent_to_the_operation_reaches_the_waiting_target(
    time_env: WorkflowEnvironment,
) -> None:
    fakes = OpsFakes(apply_seconds=0.01)
    ops = Ops(time_env.client, fakes)
    async with ops.worker():
        handle = await ops.start(restart(["web-1:8080"], environment="prod"))
        target = time_env.client.get_workflow_handle(f"{handle.id}.web-1:8080")
        assert await _reaches(target, Phase.AWAITING_APPROVAL)
        assert fakes.called("ansible.apply") == []  # prod: change actions wait for a human
        await handle.signal("approve", Decision(approver="alice", reason="planned maintenance"))
        state = await handle.result()
        child = await target.query("state", result_type=IncidentState)

    assert state.phase == Phase.RESOLVED
    assert fakes.called("ansible.apply") == ["web-1:8080"]
    assert [(a.approver, a.approved, a.reason) for a in child.approvals] == [
        ("alice", True, "planned maintenance")
    ]
    assert any(e.event == "approve by alice" for e in state.timeline)


async def _reaches(handle: WorkflowHandle[Any, Any], phase: Phase) -> bool:
    for _ in range(200):
        try:
            if (await handle.query("state", result_type=IncidentState)).phase == phase:
                return True
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:  # not started yet
                raise
        await asyncio.sleep(0.05)
    return False


async def test_cancelling_the_operation_cancels_its_running_targets(time_env: WorkflowEnvironment) -> None:
    ops = Ops(time_env.client, OpsFakes())
    async with ops.worker():
        handle = await ops.start(restart(["web-1:8080", "web-2:8080"], environment="prod"))
        target = time_env.client.get_workflow_handle(f"{handle.id}.web-1:8080")
        assert await _reaches(target, Phase.AWAITING_APPROVAL)
        await handle.cancel()
        assert await _reaches(target, Phase.CANCELLED)
        state = await handle.query("state", result_type=OperationState)
    assert state.phase == Phase.CANCELLED
    assert [t.status for t in state.targets] == ["cancelled", "pending"]  # web-2 never started
