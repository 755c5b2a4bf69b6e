"""Record histories of the workflow types other than IncidentWorkflow and the operations (which have
recorders of their own): `python -m tests.replay.record_types [VERSION]`.

- RemediationLimiter: two incidents acquire, one releases, a refusal, then continue-as-new.
- PlaybookDryRun: `remediator playbook test` of the shipped HighCPU playbook with its sample.
- StormWorkflow: started by signal-with-start, absorbs two batches, closes when its window ends.

`python -m tests.replay.record_types v1 StormWorkflow-absorbed` records only the names given.

Keep old files: they are what running workflows look like (tests/replay/test_every_type.py replays them).
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client, Interceptor, OutboundInterceptor, StartWorkflowInput, WorkflowHandle
from temporalio.worker import Worker

from tests.conftest import start_time_server
from tests.workflows.fakes import shipped
from worker.dry_run import dry_run_on, load_sample
from workflows.limiter import RemediationLimiter
from workflows.limiter_models import AcquireRequest, LimiterState, ReleaseRequest
from workflows.policy import Limits, Policy
from workflows.storm import Absorbed, StormInput, StormWorkflow

BY_TYPE = Path(__file__).parent / "histories_by_type"
SAMPLES = Path(__file__).parents[1] / "playbooks" / "samples"


class _Started(Interceptor):
    """Remembers the id of every workflow the client starts (the dry run picks its own)."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        started = self.ids

        class Outbound(OutboundInterceptor):
            async def start_workflow(self, input: StartWorkflowInput) -> WorkflowHandle[Any, Any]:
                started.append(input.id)
                return await super().start_workflow(input)

        return Outbound(next)


async def limiter(client: Client) -> WorkflowHandle[Any, Any]:
    limits = Limits(actions_per_service_per_hour=2, on_exceed="deny", lease_ttl=timedelta(minutes=30))
    async with Worker(client, task_queue="record-limiter", workflows=[RemediationLimiter]):
        handle = await client.start_workflow(
            RemediationLimiter.run,
            LimiterState(continue_after=4),
            id="record-limiter",
            task_queue="record-limiter",
        )
        for incident in ("inc-1", "inc-2", "inc-3"):  # the third is over the hourly limit
            request = AcquireRequest(
                incident_id=incident, step="restart", service="web", risk="change", limits=limits
            )
            await handle.execute_update(RemediationLimiter.acquire, request)
        await handle.signal(RemediationLimiter.release, ReleaseRequest(incident_id="inc-1"))
        first = client.get_workflow_handle(handle.id, run_id=handle.result_run_id)
        await _continued(first)
        return first


async def _continued(handle: WorkflowHandle[Any, Any]) -> None:
    """Wait until the run has continued as new (its history then ends there)."""
    for _ in range(200):
        if (await handle.describe()).status.name == "CONTINUED_AS_NEW":  # type: ignore[union-attr]
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{handle.id} did not continue as new")


async def dry_run(client: Client, started: _Started) -> WorkflowHandle[Any, Any]:
    report = await dry_run_on(
        client, shipped("high_cpu.yaml"), Policy(), load_sample(SAMPLES / "high_cpu.json")
    )
    assert [record.step for record in report.result.path] == ["cpu", "sustained", "scale_out", "relieved"], (
        report
    )
    return client.get_workflow_handle(started.ids[-1])


async def storm(client: Client) -> WorkflowHandle[Any, Any]:
    async with Worker(client, task_queue="record-storm", workflows=[StormWorkflow]):
        start = datetime.now(UTC)
        handle = await client.start_workflow(
            StormWorkflow.run,
            StormInput(
                alertname="Flood",
                environment="prod",
                window_start=start,
                window_end=start + timedelta(hours=1),
            ),
            id="incident-storm-record",
            task_queue="record-storm",
            start_signal="absorb",
            start_signal_args=[[Absorbed(fingerprint="aa01", service="web", sender="am")]],
        )
        await handle.signal(
            StormWorkflow.absorb,
            [Absorbed(fingerprint="aa02", sender="am"), Absorbed(fingerprint="aa01", sender="am", repeats=3)],
        )
        await handle.result()
        return handle


async def main(version: str, names: list[str]) -> None:
    env = await start_time_server()
    started = _Started()
    config = env.client.config()
    config["interceptors"] = [started]
    client = Client(**config)
    BY_TYPE.mkdir(exist_ok=True)
    recorders = {
        "RemediationLimiter-continued": lambda: limiter(client),
        "PlaybookDryRun-high_cpu": lambda: dry_run(client, started),
        "StormWorkflow-absorbed": lambda: storm(env.client),  # its client skips time
    }
    for name, record in recorders.items():
        if names and name not in names:
            continue
        handle = await record()
        (BY_TYPE / f"{name}-{version}.json").write_text((await handle.fetch_history()).to_json())
        print(f"recorded {name}-{version}")
    await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "v1", sys.argv[2:]))
