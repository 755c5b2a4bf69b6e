"""The raw-Temporal baseline: a minimal workflow of K no-op activities that may then park on a signal.

It runs on a worker inside the benchmark process, on a task queue of its own on the stack's server,
so it measures what Temporal itself costs for the same shape of work.

The floor (`RawInput.check_last`): the last of the K activities is a real Ansible check run instead of
a no-op, the operator's playbook alone (no wrapper, no inventory guard, no markers), shared the way
ours are without ever handing a workflow a result older than its request: one run at a time, and
everyone who asks while it runs shares the next (`CheckRuns`). What Temporal and Ansible cost for the
path at the least, with none of our code on it. `CheckRuns(share_in_flight=True)` is the loosest
sharing, under that: a caller shares the run in flight, whose result may be older than its request.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
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
    check_last: bool = False  # the last step is a real Ansible check run (`bench.check`): the floor


@activity.defn(name="bench.noop")
async def noop(step: int) -> int:
    return step


class CheckRuns:
    """One `argv` (an ansible-playbook check) at a time; a caller shares the next run to start, or
    with `share_in_flight` the run in flight if there is one."""

    def __init__(self, argv: Sequence[str], share_in_flight: bool = False) -> None:
        self.argv = list(argv)
        self.share_in_flight = share_in_flight
        self.sizes: list[int] = []  # callers per run, in order
        self.codes: list[int] = []  # each run's exit code: anything but 0 voids the floor
        self._current: asyncio.Future[int] | None = None
        self._next: asyncio.Future[int] | None = None

    @activity.defn(name="bench.check")
    async def check(self, step: int) -> int:
        """`step` as `bench.noop` takes it; the run's exit code."""
        run: asyncio.Future[int]
        if self._current is None:
            self._current = run = asyncio.ensure_future(self._run(None))
            self.sizes.append(1)
        elif self.share_in_flight:
            run = self._current
            self.sizes[-1] += 1
        else:
            if self._next is None:
                self._next = asyncio.ensure_future(self._run(self._current))
                self.sizes.append(0)
            run = self._next
            self.sizes[-1] += 1
        return await asyncio.shield(run)

    async def _run(self, after: asyncio.Future[int] | None) -> int:
        if after is not None:
            await asyncio.wait([after])
            self._current, self._next = self._next, None  # later callers share the run after this
        process = await asyncio.create_subprocess_exec(
            *self.argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        code = await process.wait()
        self.codes.append(code)
        if self._current is asyncio.current_task():
            self._current = None
        return code


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
            last = step == inp.steps - 1
            await workflow.execute_activity(
                "bench.check" if inp.check_last and last else "bench.noop",
                step,
                start_to_close_timeout=timedelta(seconds=120),
                retry_policy=RetryPolicy(maximum_attempts=3),
            )
        if inp.park:
            workflow.upsert_search_attributes([sa.INCIDENT_PHASE.value_set(inp.park)])
            await workflow.wait_condition(lambda: self._released)
        return inp.steps


@asynccontextmanager
async def raw_worker(client: Client, checks: CheckRuns | None = None) -> AsyncIterator[Worker]:
    """`checks`: what runs `bench.check` (for RawInput.check_last)."""
    activities = [noop, *([checks.check] if checks else [])]
    worker = Worker(client, task_queue=RAW_QUEUE, workflows=[RawWorkflow], activities=activities)
    async with worker:
        yield worker
