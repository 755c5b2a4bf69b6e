"""No notification channel configured: no `notify` activity is scheduled at all, and such runs replay.

With one configured, every phase change is announced, carrying what Slack and email show: the
diagnosis, the plan with its previews, the open approval's risk and who decided.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from tests.workflows.fakes import CONFIG, Fakes, make_alert, start, wait_phase, worker
from worker.sandbox import SANDBOX_RUNNER
from workflows.activity_names import NOTIFY
from workflows.decisions import Decision
from workflows.incident import IncidentWorkflow
from workflows.incident_models import IncidentState
from workflows.phases import Phase


@pytest.fixture
async def fakes(time_env: WorkflowEnvironment) -> AsyncIterator[Fakes]:
    fakes = Fakes()
    async with worker(time_env.client, fakes):
        yield fakes


async def scheduled(handle: WorkflowHandle[Any, Any]) -> list[str]:
    history = await handle.fetch_history()
    return [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]


async def approved(time_env: WorkflowEnvironment, notifications: bool) -> WorkflowHandle[Any, Any]:
    config = CONFIG.model_copy(update={"notifications": notifications})
    handle = await start(time_env.client, make_alert(), config=config)
    await wait_phase(handle, Phase.AWAITING_APPROVAL)
    await handle.signal(IncidentWorkflow.approve, Decision(approver="alice", reason="looks right"))
    state: IncidentState = await handle.result()
    assert state.phase == Phase.RESOLVED
    return handle


async def test_without_a_channel_no_notify_activity_is_scheduled(
    time_env: WorkflowEnvironment, fakes: Fakes
) -> None:
    handle = await approved(time_env, notifications=False)
    activities = await scheduled(handle)
    assert NOTIFY not in activities and fakes.notifications == []
    assert "ansible.apply" in activities  # the incident itself ran as ever
    # A run that skipped its notifications replays on today's code.
    replayer = Replayer(
        workflows=[IncidentWorkflow], data_converter=pydantic_data_converter, workflow_runner=SANDBOX_RUNNER
    )
    result = await replayer.replay_workflow(await handle.fetch_history(), raise_on_replay_failure=False)
    assert result.replay_failure is None


async def test_with_a_channel_every_phase_change_says_what_to_decide(
    time_env: WorkflowEnvironment, fakes: Fakes
) -> None:
    handle = await approved(time_env, notifications=True)
    assert (await scheduled(handle)).count(NOTIFY) == len(fakes.notifications) >= 7
    asked = next(n for n in fakes.notifications if n.phase == Phase.AWAITING_APPROVAL)
    assert asked.approvers_required == 1 and asked.risk == "change"
    assert asked.diagnosis == "dependency_down (0.80): probe refused"
    assert "(change): preview done" in asked.preview
    assert "needs 1 distinct approver(s)" in asked.detail
    assert asked.decisions == []
    resolved = fakes.notifications[-1]
    assert resolved.phase == Phase.RESOLVED and resolved.approvers_required == 0
    assert resolved.decisions == ["approved by alice via temporal: looks right"]
