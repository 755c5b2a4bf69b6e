"""The raw-Temporal baseline: a minimal workflow of K no-op activities that may then park on a signal.

It runs on a worker inside the benchmark process, on a task queue of its own on the stack's server,
so it measures what Temporal itself costs for the same shape of work.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from pydantic import BaseModel
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():
    from workflows import search_attributes as sa

RAW_QUEUE = "bench-raw"
RAW_TYPE = "BenchRaw"
PARKED = "Parked"  # IncidentPhase of a parked raw workflow, suffixed per run to count one run


class RawInput(BaseModel):
    steps: int
    park: str = ""  # when set: upsert IncidentPhase to it, then wait for `release`


@activity.defn(name="bench.noop")
async def noop(step: int) -> int:
    return step


@workflow.defn(name=RAW_TYPE)
class RawWorkflow:
    def __init__(self) -> None:
        self._released = False

    @workflow.signal
    def release(self) -> None:
        self._released = True

    @workflow.run
    async def run(self, inp: RawInput) -> int:
        for step in range(inp.steps):
            await workflow.execute_activity(
                noop,
                step,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_attempts=3),
            )
        if inp.park:
            workflow.upsert_search_attributes([sa.INCIDENT_PHASE.value_set(inp.park)])
            await workflow.wait_condition(lambda: self._released)
        return inp.steps


@asynccontextmanager
async def raw_worker(client: Client) -> AsyncIterator[Worker]:
    worker = Worker(client, task_queue=RAW_QUEUE, workflows=[RawWorkflow], activities=[noop])
    async with worker:
        yield worker
