"""What a workflow's history says it ran: every activity and local activity, as the Web UI lists them."""

from __future__ import annotations

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

LOCAL_ACTIVITY_MARKER = "core_local_activity"  # the marker the SDK records for each local activity


async def activity_calls(client: Client, workflow_id: str) -> list[tuple[str, str]]:
    """(activity type, summary) of every activity scheduled and local activity recorded, in order.

    Reads (evidence, diagnosis, a step's checks) are local activities (LOCAL_READS_PATCH): the type of
    one is in its marker's `data`, a payload decoded like any other (the codec may have sealed it).
    """
    converter = client.data_converter
    calls = []
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            name = event.activity_task_scheduled_event_attributes.activity_type.name
        elif event.marker_recorded_event_attributes.marker_name == LOCAL_ACTIVITY_MARKER:
            [data] = await converter.decode(event.marker_recorded_event_attributes.details["data"].payloads)
            name = data["activity_type"]
        else:
            continue
        calls.append((name, await _summary(client, event)))
    return calls


async def _summary(client: Client, event: HistoryEvent) -> str:
    if not event.user_metadata.HasField("summary"):
        return ""
    [summary] = await client.data_converter.decode([event.user_metadata.summary])
    return str(summary)
