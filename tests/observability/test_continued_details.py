"""A run continued as new while waiting for approval still tells the Web UI what it waits for.

On the real dev server, as the re-fire tests of tests/workflows/test_continue_as_new.py are.
"""

from __future__ import annotations

import asyncio

from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client

from tests.workflows.fakes import Fakes, make_alert, worker
from tests.workflows.test_continue_as_new import approved_then_refired

QUEUE = "incident-continued-details"


async def test_a_continued_run_still_shows_who_is_awaited_and_who_decided(
    dev_client: Client,
) -> None:
    alert = make_alert(environment="prod")
    async with worker(dev_client, Fakes(reads={"probe.http": [{"ok": False}]}), QUEUE):
        first, latest, _ = await approved_then_refired(dev_client, alert, QUEUE)
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
