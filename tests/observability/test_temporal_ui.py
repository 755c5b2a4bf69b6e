"""What the Temporal Web UI shows of an incident: summary, details, current details, step summaries.

Everything is read the way the UI reads it: `DescribeWorkflowExecution` (static summary and details,
search attributes), the `__temporal_workflow_metadata` query (current details) and the history's
user metadata (timer and activity summaries).
"""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.sdk.v1 import WorkflowMetadata

from tests.api.support import LIVE_SERVICE
from tests.observability.conftest import Driven, Stack
from workflows import search_attributes as sa

pytestmark = [pytest.mark.integration, pytest.mark.ansible]


def summaries(stack: Stack, events: list[HistoryEvent], kind: Any) -> list[str]:
    converter = stack.client.data_converter.payload_converter
    return [
        str(converter.from_payload(e.user_metadata.summary, str))
        for e in events
        if e.event_type == kind and e.HasField("user_metadata")
    ]


async def test_the_incident_page_tells_what_happened_and_who_decided(stack: Stack, driven: Driven) -> None:
    handle = stack.client.get_workflow_handle(driven.incident_id)
    described = await handle.describe()
    environment = driven.state.environment
    assert await described.static_summary() == f"ServiceDown on {LIVE_SERVICE} in {environment} (critical)"
    details = await described.static_details() or ""
    assert f"| Service | `{LIVE_SERVICE}` |\n| Environment | `{environment}` |" in details
    assert "**What is needed:** Runs playbook `ServiceDown`" in details
    assert f"remediator approve {driven.incident_id}" in details
    attributes = described.typed_search_attributes
    # The saved view's columns (README): they exist, and hold this incident's values.
    assert attributes.get(sa.INCIDENT_PHASE) == "Resolved"
    assert attributes.get(sa.ALERT_NAME) == "ServiceDown"
    assert attributes.get(sa.SERVICE) == LIVE_SERVICE

    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    current = metadata.current_details
    assert current.startswith("**Phase:** Resolved")
    assert "approved by `alice` via api" in current
    assert f"**Trace:** `{driven.state.trace_id}`" in current


async def test_timers_and_activities_say_what_they_are(stack: Stack, driven: Driven) -> None:
    events = [e async for e in stack.client.get_workflow_handle(driven.incident_id).fetch_history_events()]
    timers = summaries(stack, events, EventType.EVENT_TYPE_TIMER_STARTED)
    assert "approval reminder in 15m" in timers, timers
    activities = summaries(stack, events, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
    assert f"gather evidence on {LIVE_SERVICE}" in activities, activities
    assert any(s.startswith("apply ") and ": ansible " in s for s in activities), activities
