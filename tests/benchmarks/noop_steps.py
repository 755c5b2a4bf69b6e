"""Benchmark (c): an incident whose playbook is K no-op steps vs a raw workflow of K no-op activities.

    .venv/bin/python -m tests.benchmarks.noop_steps [--steps 20] [--runs 5] [--env NAME=VALUE ...] [--json]

Ours: an alert whose playbook (written by the harness) is K `check` steps, each one probe refused at
once by a closed local port, then `stop: resolved`; the whole incident runs (evidence, diagnosis,
the playbook, memory) from the webhook to its close. Raw: `BenchRaw` with K no-op activities on the
same server. Runs are one after another; durations are the workflow's start to close on the server.
"""

from __future__ import annotations

import argparse
import statistics
import uuid

import httpx
from temporalio.client import Client, WorkflowExecutionStatus

from tests.benchmarks.harness import (
    NOOP_ALERT,
    BenchStack,
    Report,
    am_alert,
    cpu_seconds,
    own_cpu,
    poll,
    post_alerts,
    run_cli,
)
from tests.benchmarks.raw import RAW_QUEUE, RAW_TYPE, RawInput, raw_worker
from workflows.alerts import prometheus_fingerprint


async def _duration(client: Client, workflow_id: str, timeout: float = 120) -> float:
    handle = client.get_workflow_handle(workflow_id)

    async def closed() -> float | None:
        info = await handle.describe()
        if info.status == WorkflowExecutionStatus.RUNNING or info.close_time is None:
            return None
        assert info.status == WorkflowExecutionStatus.COMPLETED, f"{workflow_id} ended {info.status}"
        return (info.close_time - info.start_time).total_seconds()

    result: float = await poll(f"{workflow_id} to close", closed, timeout, every=0.05)
    return result


async def measure(stack: BenchStack, runs: int = 5) -> Report:
    steps = stack.noop_steps
    report = Report("K no-op steps: incident vs raw workflow", {"steps": steps, "runs": runs})
    client = await stack.client()
    tag = uuid.uuid4().hex[:8]
    ours: list[float] = []
    cpu = stack.cpu()
    async with httpx.AsyncClient(base_url=stack.dev.api, headers=stack.headers("sender"), timeout=60) as http:
        for run in range(runs):
            alert = am_alert(NOOP_ALERT, {"service": "bench", "instance": f"{tag}-{run}"})
            await post_alerts(http, [alert])
            ours.append(await _duration(client, f"incident-{prometheus_fingerprint(alert['labels'])}"))
    ours_cpu = stack.cpu() - cpu
    raw: list[float] = []
    temporal = stack.pids()["temporal"]
    async with raw_worker(client):
        cpu = own_cpu() + cpu_seconds(temporal)
        for run in range(runs):
            workflow_id = f"raw-noop-{tag}-{run}"
            await client.start_workflow(RAW_TYPE, RawInput(steps=steps), id=workflow_id, task_queue=RAW_QUEUE)
            raw.append(await _duration(client, workflow_id))
        raw_cpu = own_cpu() + cpu_seconds(temporal) - cpu
    report.add("duration median", statistics.median(ours), statistics.median(raw), "s")
    report.add("duration max", max(ours), max(raw), "s")
    report.add("CPU per run", ours_cpu / runs, raw_cpu / runs, "CPU-s")
    report.notes.append(
        "ours is the whole incident (evidence, diagnosis, the K steps, memory); raw is K activities"
    )
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="K: no-op steps (and raw activities)")
    parser.add_argument("--runs", type=int, default=5)
    run_cli(parser, lambda stack, args: measure(stack, args.runs), lambda args: {"noop_steps": args.steps})


if __name__ == "__main__":
    main()
