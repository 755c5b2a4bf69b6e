"""`remediator schedule create|list|trigger|delete` against Temporal Schedules on the real dev server."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionStartWorkflow,
    ScheduleSpec,
    ScheduleState,
)
from temporalio.service import RPCError, RPCStatusCode

from tests.api.support import wait_for
from tests.api.test_cli import cli, failed_cleanly
from workflows import search_attributes as sa
from workflows.operation_models import OperationState
from workflows.phases import Phase

pytestmark = pytest.mark.integration


async def test_create_list_trigger_and_delete(ops_api: str, dev_client: Client) -> None:
    name = f"nightly-health-{uuid.uuid4().hex[:6]}"
    target = ops_api.removeprefix("http://")
    created = await cli(
        "schedule", "create", name, "--playbook", "OpsHealthCheck", "--cron", "0 3 * * *",
        "-t", target, "-p", "path=/healthz", "--api-url", ops_api,
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    assert created.output.startswith(f"created schedule {name}: OpsHealthCheck cron 0 3 * * *; next run ")
    assert created.output.rstrip().endswith(":00:00") or "03:00:00" in created.output

    async def listed() -> str | None:
        result = await cli("schedule", "list", "--api-url", ops_api)
        row = next((line for line in result.output.splitlines() if name in line), None)
        return row

    row = await wait_for(listed, timeout=30, every=0.5)  # visibility lags creation a moment
    assert "cron 0 3 * * *" in row and "OpsHealthCheck" in row and target in row

    await dev_client.get_schedule_handle(name).trigger()

    async def started() -> str | None:
        info = (await dev_client.get_schedule_handle(name).describe()).info
        runs = [
            r.action
            for r in info.recent_actions
            if isinstance(r.action, ScheduleActionExecutionStartWorkflow)
        ]
        return runs[0].workflow_id if runs else None

    workflow_id = await wait_for(started, timeout=30, every=0.5)
    assert workflow_id.startswith(f"operation-{name}-")
    handle = dev_client.get_workflow_handle(workflow_id, result_type=OperationState)
    state = await handle.result()
    assert state.phase == Phase.RESOLVED and state.health_score == 100
    assert state.started_by.startswith(f"schedule {name} (created by ")
    description = await handle.describe()
    assert description.workflow_type == "OperationWorkflow"
    assert description.typed_search_attributes.get(sa.ALERT_NAME) == "OpsHealthCheck"
    assert description.typed_search_attributes.get(sa.INCIDENT_PHASE) == "Resolved"

    deleted = await cli("schedule", "delete", name, "--api-url", ops_api)
    assert deleted.exit_code == 0 and deleted.output.strip() == f"deleted schedule {name}"
    with pytest.raises(RPCError) as gone:
        await dev_client.get_schedule_handle(name).describe()
    assert gone.value.status == RPCStatusCode.NOT_FOUND
    failed_cleanly(
        await cli("schedule", "delete", name, "--api-url", ops_api), f"no schedule named '{name}' (HTTP 404)"
    )


async def test_every_interval_and_trigger_from_the_cli(ops_api: str, dev_client: Client) -> None:
    name = f"hourly-{uuid.uuid4().hex[:6]}"
    created = await cli(
        "schedule", "create", name, "--playbook", "OpsHealthCheck", "--every", "1h",
        "-t", ops_api.removeprefix("http://"), "-p", "path=/healthz", "--dry-run", "--api-url", ops_api,
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    assert f"created schedule {name}: OpsHealthCheck every 1:00:00; next run " in created.output
    triggered = await cli("schedule", "trigger", name, "--api-url", ops_api)
    assert triggered.exit_code == 0, triggered.output

    async def ran() -> bool:
        info = (await dev_client.get_schedule_handle(name).describe()).info
        return bool(info.recent_actions)

    assert await wait_for(ran, timeout=30, every=0.5)
    await dev_client.get_schedule_handle(name).delete()


async def test_bad_schedules_fail_in_one_line(ops_api: str, dev_client: Client) -> None:
    base = ["--playbook", "OpsHealthCheck", "-t", "web-1:80", "--api-url", ops_api]
    failed_cleanly(
        await cli("schedule", "create", "bad-cron", "--cron", "61 * * * *", *base), "cron 61 * * * *"
    )
    failed_cleanly(await cli("schedule", "create", "bad-every", "--every", "often", *base), "every: ")
    failed_cleanly(
        await cli("schedule", "create", "both", "--every", "1h", "--cron", "0 3 * * *", *base), "exactly one"
    )
    failed_cleanly(await cli("schedule", "create", "bad name", "--every", "1h", *base), "name: ")
    failed_cleanly(
        await cli(
            "schedule", "create", "x", "--every", "1h", "--playbook", "Nope", "-t", "a", "--api-url", ops_api
        ),
        "no playbook named 'Nope'",
    )

    # A schedule that starts something else is not ours to delete.
    other = f"other-{uuid.uuid4().hex[:6]}"
    await dev_client.create_schedule(
        other,
        Schedule(
            action=ScheduleActionStartWorkflow("SomethingElse", id="something-else", task_queue="elsewhere"),
            spec=ScheduleSpec(intervals=[]),
            state=ScheduleState(paused=True),
        ),
    )
    failed_cleanly(await cli("schedule", "delete", other, "--api-url", ops_api), "does not start operations")
    assert (await dev_client.get_schedule_handle(other).describe()).id == other
    await dev_client.get_schedule_handle(other).delete()

    name = f"twice-{uuid.uuid4().hex[:6]}"
    assert (await cli("schedule", "create", name, "--every", "1d", *base)).exit_code == 0
    failed_cleanly(await cli("schedule", "create", name, "--every", "1d", *base), "already exists")
    await dev_client.get_schedule_handle(name).delete()
    assert timedelta(days=1)  # the interval form accepts days
