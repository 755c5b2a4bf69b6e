"""The private Temporal SDK attributes we read, pinned: each test names the SDK version it ran on, so an
upgrade that moves one fails here, by name, rather than in production.

- `WorkflowHandle._start_workflow_response` (api/ingest.py): whether a signal-with-start started a run.
  The public API does not say, and the answer decides whether an alert opened an incident.
- `activity._Definition` / `workflow._Definition` (worker/plugins.py, activities/llm.py): the name a
  decorated function or class registers under, to refuse plugins that clash with ours before the
  worker starts. The SDK has no public reader for it.
"""

from __future__ import annotations

import uuid
from importlib.metadata import version

from temporalio import activity, workflow
from temporalio.client import Client

from activities.llm import activity_names
from api.ingest import _started
from worker.plugins import _activity_name, _workflow_name
from workflows.incident import IncidentWorkflow

SDK = f"temporalio {version('temporalio')}"


@activity.defn(name="pinned.activity")
def pinned_activity() -> None:
    """Only its definition is read."""


async def test_signal_with_start_says_whether_it_started_a_run(dev_client: Client) -> None:
    workflow_id = f"sdk-pin-{uuid.uuid4().hex[:8]}"
    started = []
    for _ in range(2):  # no worker polls this queue: the run only has to exist
        handle = await dev_client.start_workflow(
            "SdkPin", id=workflow_id, task_queue="sdk-pins", start_signal="ping", start_signal_args=[]
        )
        started.append(_started(handle))
    await handle.terminate(reason="test over")
    assert started == [True, False], f"{SDK}: _start_workflow_response.started no longer says it"


def test_definitions_name_what_they_register() -> None:
    assert _workflow_name(IncidentWorkflow) == "IncidentWorkflow", SDK
    assert _activity_name(pinned_activity) == "pinned.activity", SDK
    assert activity_names([pinned_activity]) == ["pinned.activity"], SDK
    assert workflow._Definition.from_class(int) is None, f"{SDK}: undecorated classes are no longer None"
