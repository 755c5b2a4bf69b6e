"""StormWorkflow on the time-skipping server: it records every absorbed alert and closes with its window."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from worker.sandbox import SANDBOX_RUNNER
from workflows.incident_models import IncidentState
from workflows.phases import Phase
from workflows.storm import Absorbed, StormInput, StormState, StormWorkflow


async def test_a_storm_counts_every_alert_and_reads_as_an_escalated_incident(
    time_env: WorkflowEnvironment,
) -> None:
    queue = f"storm-{uuid.uuid4().hex[:8]}"
    start = datetime.now(UTC)
    async with Worker(
        time_env.client, task_queue=queue, workflows=[StormWorkflow], workflow_runner=SANDBOX_RUNNER
    ):
        handle = await time_env.client.start_workflow(
            StormWorkflow.run,
            StormInput(
                alertname="Flood",
                environment="prod",
                window_start=start,
                window_end=start + timedelta(hours=1),
            ),
            id=f"incident-storm-{queue}",
            task_queue=queue,
            start_signal="absorb",
            start_signal_args=[
                [Absorbed(fingerprint="f1", sender="am"), Absorbed(fingerprint="f2", sender="am")]
            ],
        )
        await handle.signal(StormWorkflow.absorb, [Absorbed(fingerprint="f1", sender="grafana", repeats=3)])
        storm = await handle.query(StormWorkflow.storm, result_type=StormState)
        assert (storm.count, storm.fingerprints, storm.senders) == (5, {"f1": 4, "f2": 1}, ["am", "grafana"])
        assert storm.first_at is not None and storm.last_at is not None
        state = await handle.query("state", result_type=IncidentState)
        assert state.phase == Phase.ESCALATED and state.alert_updates == 5
        assert [e.detail for e in state.timeline] == ["2 (total 2): f1, f2", "3 (total 5): f1 x3"]
        assert "storm: 5 notifications of Flood from 2 alerts" in state.evidence_summary
        final = StormState.model_validate(await handle.result())  # the window ends (time skips): it closes
    assert final.count == 5
