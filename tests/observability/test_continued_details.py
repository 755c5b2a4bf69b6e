"""A run continued as new while waiting for approval still tells the Web UI what it waits for.

On the real dev server, as the re-fire tests of tests/workflows/test_continue_as_new.py are.
"""

from __future__ import annotations

import asyncio

from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client

from tests.workflows import fakes as wf
from tests.workflows.fakes import Fakes, make_alert, shipped, start, wait_phase, worker
from tests.workflows.test_continue_as_new import LOW, TWO_APPROVERS, refire
from workflows.decisions import Decision
from workflows.incident import IncidentWorkflow
from workflows.incident_models import IncidentState
from workflows.phases import Phase

QUEUE = "incident-continued-details"


async def test_a_continued_run_still_shows_who_is_awaited_and_who_decided(
    dev_client: Client,
) -> None:
    alert = make_alert(environment="prod")
    async with worker(dev_client, Fakes(reads={"probe.http": [{"ok": False}]}), QUEUE):
        first = await start(dev_client, alert, LOW, shipped("service_down.yaml"), TWO_APPROVERS, QUEUE)
        latest = dev_client.get_workflow_handle(alert.workflow_id, result_type=IncidentState)  # any run
        await wait_phase(latest, Phase.AWAITING_APPROVAL)
        await latest.signal(IncidentWorkflow.approve, Decision(approver="alice"))
        await refire(latest, alert, 40)
        await wf.wait_state(latest, lambda s: s.alert_updates == 41, "counted every re-fire")
        assert (await latest.describe()).run_id != first.result_run_id, "the incident continued as new"
        details = ""
        for _ in range(100):
            metadata = await latest.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
            details = metadata.current_details
            if "Waiting for" in details:
                break
            await asyncio.sleep(0.05)
        assert "**Waiting for:** 2 distinct approver(s)" in details, details
        assert "approved by `alice` via temporal" in details
        await latest.terminate("test over")
