"""Benchmark (d): many incidents parked at AwaitingApproval: worker RSS and `GET /incidents` latency.

    .venv/bin/python -m tests.benchmarks.parked [--n 1000] [--lists 50] [--env NAME=VALUE ...] [--json]

N alerts whose playbook asks for approval first thing (no Ansible preview, so parking 1,000 stays
quick) are posted in Alertmanager groups of 20 until all wait. Then the worker's RSS (`remediator
dev` runs worker and API in one process) and `GET /incidents` (its default limit of 100) timed
`lists` times. Baselines: the raw SDK's `list_workflows` with the same query and limit, and the RSS
of this process once its raw worker holds N parked raw workflows.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

import httpx

from api.ingest import WORKFLOW_TYPE
from tests.benchmarks.harness import (
    PARKED_ALERT,
    BenchStack,
    Report,
    am_alert,
    count,
    percentile,
    poll,
    post_alerts,
    run_cli,
    self_rss,
)
from tests.benchmarks.raw import PARKED, RAW_QUEUE, RAW_TYPE, RawInput, raw_worker
from workflows.phases import Phase

GROUP = 20
LIST_LIMIT = 100


async def _park(stack: BenchStack, n: int, timeout: float) -> None:
    client = await stack.client()
    query = f"WorkflowType='{WORKFLOW_TYPE}' AND AlertName='{PARKED_ALERT}' AND IncidentPhase='{Phase.AWAITING_APPROVAL.value}'"
    before = await count(client, query)
    tag = uuid.uuid4().hex[:8]
    alerts = [am_alert(PARKED_ALERT, {"service": "bench", "instance": f"{tag}-{i}"}) for i in range(n)]
    groups = [alerts[i : i + GROUP] for i in range(0, n, GROUP)]
    async with httpx.AsyncClient(
        base_url=stack.dev.api, headers=stack.headers("sender"), timeout=120
    ) as http:
        for group in groups:
            await post_alerts(http, group)

    async def all_parked() -> bool:
        return await count(client, query) >= before + n

    await poll(f"{n} incidents parked", all_parked, timeout, every=1.0)


async def _timed(call: object, times: int) -> list[float]:
    took = []
    for _ in range(times):
        began = time.perf_counter()
        await call()  # type: ignore[operator]
        took.append((time.perf_counter() - began) * 1000)
    return took


async def measure(stack: BenchStack, n: int = 1000, lists: int = 50, timeout: float = 1800) -> Report:
    report = Report("incidents parked at AwaitingApproval", {"n": n, "lists": lists, "limit": LIST_LIMIT})
    report.notes.append(
        "raw list: list_workflows, same query and limit; raw RSS: this process with N parked raw workflows"
    )
    began = time.monotonic()
    await _park(stack, n, timeout)
    report.notes.append(f"parking {n} took {time.monotonic() - began:.1f} s")
    client = await stack.client()
    query = f"WorkflowType='{WORKFLOW_TYPE}'"
    async with httpx.AsyncClient(base_url=stack.dev.api, headers=stack.headers("viewer"), timeout=60) as http:

        async def ours() -> None:
            response = await http.get("/incidents", params={"limit": LIST_LIMIT})
            response.raise_for_status()
            assert len(response.json()) >= min(LIST_LIMIT, n), len(response.json())

        async def raw() -> None:
            found = [e async for e in client.list_workflows(query, limit=LIST_LIMIT)]
            assert len(found) >= min(LIST_LIMIT, n), len(found)

        await ours()  # warm both paths
        await raw()
        ours_ms, raw_ms = await _timed(ours, lists), await _timed(raw, lists)
    rss = stack.rss()
    tag = uuid.uuid4().hex[:8]
    async with raw_worker(client):
        handles = [
            await client.start_workflow(
                RAW_TYPE,
                RawInput(steps=0, park=f"{PARKED}-{tag}"),
                id=f"raw-park-{tag}-{i}",
                task_queue=RAW_QUEUE,
            )
            for i in range(n)
        ]

        async def raw_parked() -> bool:
            return await count(client, f"WorkflowType='{RAW_TYPE}' AND IncidentPhase='{PARKED}-{tag}'") >= n

        await poll(f"{n} raw workflows parked", raw_parked, timeout, every=1.0)
        raw_rss = self_rss()
        await asyncio.gather(*(h.signal("release") for h in handles))
    report.add("worker+API RSS", rss["worker+api"], raw_rss, "MB")
    report.add("Temporal server RSS", rss["temporal"], None, "MB")
    report.add("GET /incidents p50", percentile(ours_ms, 50), percentile(raw_ms, 50), "ms")
    report.add("GET /incidents p95", percentile(ours_ms, 95), percentile(raw_ms, 95), "ms")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="incidents to park")
    parser.add_argument("--lists", type=int, default=50, help="GET /incidents requests timed")
    run_cli(parser, lambda stack, args: measure(stack, args.n, args.lists))


if __name__ == "__main__":
    main()
