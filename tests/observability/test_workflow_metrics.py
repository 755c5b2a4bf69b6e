"""The workflow-side metrics of endings the live stack does not reach: a rollback and a rejection.

The worker's client carries a runtime of its own with the Prometheus endpoint (`worker_runtime`);
incidents start and end through the time-skipping server's own client, so their timers skip.
"""

from __future__ import annotations

import uuid

import httpx
from temporalio.testing import WorkflowEnvironment

from activities.config import Settings
from tests.observability.conftest import parse, value
from tests.workflows.fakes import CONFIG, Fakes, make_alert, start, wait_phase, worker
from worker.client import connect
from worker.devserver import free_port
from worker.telemetry import worker_runtime
from workflows import metrics
from workflows.decisions import Decision
from workflows.incident import IncidentWorkflow
from workflows.phases import Phase


async def test_rollbacks_rejections_and_time_to_approvable_are_counted(time_env: WorkflowEnvironment) -> None:
    settings = Settings(worker_metrics_port=free_port())
    runtime = worker_runtime(settings)
    client = await connect(time_env.client.service_client.config.target_host, runtime=runtime)
    queue = f"metrics-{uuid.uuid4().hex[:8]}"
    async with worker(client, Fakes(verify_ok=False), queue=queue):
        auto = CONFIG.model_copy(update={"auto_approve": True})
        rolled_back = await start(time_env.client, make_alert(), auto, queue=queue)
        assert (await rolled_back.result()).phase == Phase.ROLLED_BACK

        rejected = await start(time_env.client, make_alert(), queue=queue)
        await wait_phase(rejected, Phase.AWAITING_APPROVAL)
        await rejected.signal(IncidentWorkflow.reject, Decision(approver="bob", reason="not now"))
        assert (await rejected.result()).phase == Phase.REJECTED

    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://127.0.0.1:{settings.worker_metrics_port}/metrics")).text
    samples = parse(text)  # counters read as `<name>_total` (see test_metrics.py)
    ours = {"task_queue": queue, "workflow_type": "IncidentWorkflow"}
    assert value(samples, f"{metrics.ACTIONS}_total", executor="ansible", result="ok", **ours) == 1
    assert value(samples, f"{metrics.ROLLBACKS}_total", executor="ansible", result="ok", **ours) == 1
    assert value(samples, f"{metrics.APPROVALS}_total", outcome="rejected", **ours) == 1
    assert (
        value(samples, f"{metrics.APPROVALS}_total", outcome="approved", **ours) == 0
    )  # auto-approval asks nobody
    assert value(samples, f"{metrics.TIME_TO_APPROVABLE}_count", **ours) == 1
    assert 'le="14400"' in text  # our buckets (up to 4 h), not the SDK's millisecond ones
    assert value(samples, f"{metrics.PHASE_ENTERED}_total", phase="RolledBack", **ours) == 1
