"""Blast-radius limits, enforced durably by the RemediationLimiter, on the time-skipping server.

Incidents reach the real limiter through the real `limits.*` activities; each test has a limiter of
its own (its own workflow id), so counts never leak between tests.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.playbooks.builders import alert, ansible, pin, playbook, probe_verify
from tests.workflows.fakes import (
    Fakes,
    detail,
    events,
    expect_cancelled,
    settled,
    shipped,
    start,
    wait_event,
    worker,
)
from worker.sandbox import SANDBOX_RUNNER
from workflows.activity_names import LIMITS_ACQUIRE, LIMITS_RELEASE
from workflows.decisions import Decision
from workflows.incident import IncidentWorkflow
from workflows.incident_models import IncidentState
from workflows.limiter import RemediationLimiter
from workflows.limiter_models import AcquireRequest, LimiterState, ReleaseRequest, UsageRequest
from workflows.phases import Phase
from workflows.policy import Limits, Policy

# A verify step: a change auto-approves only when the playbook can verify it.
HEALTHY: dict[str, list[dict[str, Any]]] = {"probe.http": [{"ok": True, "status": 200}]}
RESTART = pin(playbook([ansible("restart"), probe_verify()]))
# Acts, then waits for a human: the incident holds its limiter lease while it waits.
HOLD = pin(
    playbook([ansible("restart"), {"id": "confirm", "kind": "approval", "timeout": "1h"}, probe_verify()])
)
SERVICE_DOWN = shipped("service_down.yaml")
# Each incident's probe: down at its check, up at its verification.
TWICE_DOWN_THEN_UP: dict[str, list[dict[str, Any]]] = {
    "probe.http": [{"ok": False}, {"ok": True}, {"ok": False}, {"ok": True}]
}


class Limited:
    """One test's worker, limiter and queue."""

    def __init__(self, env: WorkflowEnvironment) -> None:
        self.client: Client = env.client
        self.limiter = f"limiter-{uuid.uuid4().hex[:8]}"
        self.queue = f"limits-{uuid.uuid4().hex[:8]}"

    @asynccontextmanager
    async def worker(self, fakes: Fakes | None = None) -> AsyncIterator[None]:
        """IncidentWorkflow with `fakes` and the limiter; without fakes, the limiter alone."""
        if fakes is None:
            running = Worker(
                self.client,
                task_queue=self.queue,
                workflows=[RemediationLimiter],
                workflow_runner=SANDBOX_RUNNER,
            )
        else:
            running = worker(self.client, fakes, self.queue, self.limiter)
        async with running:
            try:
                yield
            finally:
                await self.stop_limiter()

    async def stop_limiter(self) -> None:
        """The limiter runs forever. Left running on the shared time-skipping test server, limiters
        started by update-with-start make it skip years ahead and, later, hang other tests' skips."""
        with contextlib.suppress(RPCError):
            await self.client.get_workflow_handle(self.limiter).terminate("test over")

    async def start(self, pinned: Any, policy: Policy, service: str = "web") -> WorkflowHandle[Any, Any]:
        labels = {"alertname": "Test", "service": service, "environment": "dev", "run": uuid.uuid4().hex[:8]}
        if pinned is SERVICE_DOWN:
            labels["alertname"] = "ServiceDown"
        incident = alert({"probe_url": "http://web/health"}, **labels)
        return await start(self.client, incident, playbook=pinned, policy=policy, queue=self.queue)

    async def leases(self) -> list[str]:
        state = await self.client.get_workflow_handle(self.limiter).query(RemediationLimiter.leases)
        return [lease.incident_id for lease in state.leases]


def applied_at(state: IncidentState, step: str = "restart") -> Any:
    return next(e.at for e in state.timeline if e.event == f"step {step} applied")


def slot_at(state: IncidentState, step: str = "restart") -> Any:
    return next(e.at for e in state.timeline if e.event == f"blast-radius slot for {step}")


async def test_second_incident_on_a_service_waits_for_its_hourly_slot(time_env: WorkflowEnvironment) -> None:
    policy = Policy(limits={"actions_per_service_per_hour": 1}, max_wait="2h")
    run = Limited(time_env)
    async with run.worker(Fakes(reads=TWICE_DOWN_THEN_UP)):
        first = await settled(await run.start(SERVICE_DOWN, policy))
        second: IncidentState = await (await run.start(SERVICE_DOWN, policy)).result()
        assert await run.leases() == []

    assert (first.phase, second.phase) == (Phase.RESOLVED, Phase.RESOLVED)
    assert "1 action(s) on 'web' in the last hour reach the limit of 1" in detail(
        second, "policy for restart"
    )
    assert "waiting before restart" in events(second)
    # The hour counts from when each took its slot; `applied` comes an apply's duration later.
    assert slot_at(second) >= slot_at(first) + timedelta(hours=1)


async def test_a_wait_beyond_max_wait_escalates(time_env: WorkflowEnvironment) -> None:
    policy = Policy(limits={"actions_per_service_per_hour": 1}, max_wait="30m")
    run = Limited(time_env)
    fakes = Fakes(reads=TWICE_DOWN_THEN_UP)
    async with run.worker(fakes):
        await settled(await run.start(SERVICE_DOWN, policy))
        second = await settled(await run.start(SERVICE_DOWN, policy))

    assert second.phase == Phase.ESCALATED
    assert "would wait past max_wait" in second.timeline[-1].detail
    assert fakes.applied() == ["restart"]  # the first incident's only


async def test_concurrent_remediations_are_capped(time_env: WorkflowEnvironment) -> None:
    policy = Policy(limits={"concurrent_remediations": 1, "recheck": "1m"})
    run = Limited(time_env)
    fakes = Fakes(reads=HEALTHY)
    async with run.worker(fakes):
        holder = await run.start(HOLD, policy, service="a")
        await wait_event(holder, "awaiting approval")
        assert await run.leases() == [holder.id]
        waiter = await run.start(RESTART, policy, service="b")
        waiting = await wait_event(waiter, "waiting before restart")
        assert "1 remediation(s) running reach the limit of 1" in detail(waiting, "policy for restart")
        assert fakes.applied() == ["restart"]  # only the holder's

        await holder.signal(IncidentWorkflow.approve, Decision(approver="alice"))
        held: IncidentState = await holder.result()
        freed: IncidentState = await waiter.result()
        assert await run.leases() == []

    assert (held.phase, freed.phase) == (Phase.RESOLVED, Phase.RESOLVED)
    assert applied_at(freed) >= held.timeline[-1].at


async def hold_then(handle: WorkflowHandle[Any, Any], ending: str) -> None:
    await wait_event(handle, "awaiting approval")
    if ending == "resolved":
        await handle.signal(IncidentWorkflow.approve, Decision(approver="alice"))
    elif ending == "rejected":
        await handle.signal(IncidentWorkflow.reject, Decision(approver="bob", reason="no"))
    elif ending == "cancelled":
        await handle.cancel()


@pytest.mark.parametrize(
    ("ending", "phase"),
    [
        ("resolved", Phase.RESOLVED),
        ("rejected", Phase.REJECTED),
        ("escalated", Phase.ESCALATED),  # nobody confirms within the approval's hour
        ("cancelled", Phase.CANCELLED),
        ("failed", Phase.FAILED),
    ],
)
async def test_the_lease_is_released_on_every_ending(
    time_env: WorkflowEnvironment, ending: str, phase: Phase
) -> None:
    policy = Policy(limits={"concurrent_remediations": 3})
    run = Limited(time_env)
    async with run.worker(Fakes(reads=HEALTHY, failing={"restart"} if ending == "failed" else set())):
        handle = await run.start(HOLD, policy)
        if ending == "failed":
            await handle.result()
        else:
            await hold_then(handle, ending)
            if ending == "cancelled":
                await expect_cancelled(handle)
            else:
                await handle.result()
        state: IncidentState = await handle.query(IncidentWorkflow.state)
        assert await run.leases() == []

    assert state.phase == phase
    assert "blast-radius slot for restart" in events(state)
    assert "blast-radius lease released" in events(state)


def test_a_stopped_worker_leaves_the_lease_to_the_run_that_carries_on() -> None:
    # tests/workflows/stopped_worker.py says why this runs in a process of its own.
    result = subprocess.run(
        [sys.executable, "-m", "tests.workflows.stopped_worker"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parents[2],
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["collected"] == []  # no error while Python closed the run: its `finally` did nothing
    assert LIMITS_ACQUIRE in report["scheduled"] and LIMITS_RELEASE not in report["scheduled"]


async def test_a_terminated_incident_frees_its_slot_when_the_lease_expires(
    time_env: WorkflowEnvironment,
) -> None:
    # Seconds, not hours, and no `result()`: this one runs in real time, because many rounds of time
    # skipping (a recheck every few minutes for the two hours of the default lease) can hang the
    # time-skipping test server.
    policy = Policy(limits={"concurrent_remediations": 1, "recheck": "1s", "lease_ttl": "4s"}, max_wait="1m")
    run = Limited(time_env)
    async with run.worker(Fakes(reads=HEALTHY)):
        holder = await run.start(HOLD, policy, service="a")
        held = await wait_event(holder, "awaiting approval")
        await holder.terminate("operator pulled the plug")  # its `finally` never runs
        waiter = await run.start(RESTART, policy, service="b")
        freed = await settled(waiter, seconds=30)

    assert freed.phase == Phase.RESOLVED
    slot = next(e.at for e in held.timeline if e.event == "blast-radius slot for restart")
    assert applied_at(freed) >= slot + timedelta(seconds=4)  # the lease's time to live
    assert "1 remediation(s) running reach the limit of 1" in detail(freed, "policy for restart")
    assert sum(e == "policy for restart" for e in events(freed)) >= 2


async def test_the_limiter_counts_once_per_step_and_continues_as_new(time_env: WorkflowEnvironment) -> None:
    run = Limited(time_env)
    limits = Limits(actions_per_service_per_hour=5, concurrent_remediations=1, recheck=timedelta(minutes=2))

    def request(incident: str, step: str = "restart", risk: str = "change") -> AcquireRequest:
        return AcquireRequest(incident_id=incident, step=step, service="web", risk=risk, limits=limits)  # type: ignore[arg-type]

    async def acquire(req: AcquireRequest) -> Any:
        op = WithStartWorkflowOperation(
            RemediationLimiter.run,
            LimiterState(continue_after=4),
            id=run.limiter,
            task_queue=run.queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        return await run.client.execute_update_with_start_workflow(
            RemediationLimiter.acquire, req, start_workflow_operation=op
        )

    async with run.worker():
        first = await acquire(request("incident-1"))
        again = await acquire(request("incident-1"))  # a retried activity
        assert (first.granted, again.granted, again.reason) == (True, True, "already granted")
        handle = run.client.get_workflow_handle(run.limiter)
        usage = await handle.query(RemediationLimiter.usage, UsageRequest(service="web"))
        assert usage.service_actions_last_hour == 1 and usage.concurrent_remediations == 1

        refused = await acquire(request("incident-2"))
        assert not refused.granted
        assert refused.reason == "1 remediation(s) running reach the limit of 1"
        assert refused.retry_at is not None
        with pytest.raises(WorkflowUpdateFailedError):
            await acquire(request("incident-2", "look", risk="read"))

        first_run = (await handle.describe()).run_id
        await handle.signal(RemediationLimiter.release, ReleaseRequest(incident_id="incident-1"))
        granted = await acquire(request("incident-2"))
        assert granted.granted
        # Three updates and a signal (the refused read never reached it): it continued as new,
        # carrying its counts along.
        assert (await handle.describe()).run_id != first_run
        usage = await handle.query(RemediationLimiter.usage, UsageRequest(service="web", incident_id="x"))
        assert usage.service_actions_last_hour == 2 and usage.concurrent_remediations == 1
