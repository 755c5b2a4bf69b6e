"""Why each test's workflows are terminated as it ends (`tests/conftest.py::time_env`).

On a time-skipping server of its own, since the second half leaves that server unable to skip:
an incident left waiting for approval with its worker gone is harmless once terminated before its
reminder comes due, and stops all time skipping once that reminder does come due.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from tests.conftest import skips_time, start_time_server, terminate_open
from tests.workflows.fakes import CONFIG, Fakes, make_alert, start, wait_phase, worker
from workflows.phases import Phase


@pytest.fixture
async def own_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await start_time_server()
    yield env
    await env.shutdown()


async def left_waiting(client: Client) -> WorkflowHandle[object, object]:
    """An incident waiting for approval whose worker has stopped."""
    queue = f"left-open-{uuid.uuid4().hex[:8]}"
    async with worker(client, Fakes(), queue=queue):
        handle = await start(client, make_alert(), queue=queue)
        await wait_phase(handle, Phase.AWAITING_APPROVAL)
    return handle


async def test_an_incident_left_open_stops_time_skipping_once_its_reminder_is_due(
    own_env: WorkflowEnvironment,
) -> None:
    terminated = await left_waiting(own_env.client)
    assert await terminate_open(own_env.client) == [terminated.id]
    assert (await terminated.describe()).status == WorkflowExecutionStatus.TERMINATED
    assert await skips_time(own_env)

    left = await left_waiting(own_env.client)
    assert CONFIG.notify_after < timedelta(hours=1)  # its reminder comes due in the skip below
    with pytest.raises(TimeoutError):  # an hour that takes longer than 5 s of ours: no skipping
        await asyncio.wait_for(own_env.sleep(timedelta(hours=1)), 5)
    last = [event.event_type for event in (await left.fetch_history()).events][-2:]
    assert last == [EventType.EVENT_TYPE_TIMER_FIRED, EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED]
