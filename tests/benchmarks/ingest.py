"""Benchmark (a): alerts in through the webhook vs the raw SDK's signal-with-start, same server, same run.

    .venv/bin/python -m tests.benchmarks.ingest [--singles 200] [--groups 10] [--concurrency 8] [--env NAME=VALUE ...] [--json]

A `remediator api` process of its own talks to the stack's Temporal server with a task queue no
worker polls, so only ingest is measured (no incident runs and competes for the CPU). Ours: POST
/alerts/alertmanager with one alert, then with groups of 20. Raw: this process starts the same
IncidentWorkflow input with `start_workflow(..., start_signal="alert")`, one call per alert (a group:
20 calls at once). Both sides keep `concurrency` requests in flight; throughput is alerts per second,
latency is per request (a group is one request).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from temporalio.client import Client

from activities.config import Settings
from api.ingest import WORKFLOW_TYPE, Pinning, search_attributes
from api.schemas import AlertmanagerWebhook
from tests.benchmarks.harness import (
    NO_STORM,
    PARKED_ALERT,
    BenchStack,
    Report,
    am_alert,
    am_webhook,
    percentile,
    post_alerts,
    run_cli,
)
from tests.stack.devstack import REMEDIATOR, wait_for
from worker.devserver import free_port
from workflows.incident_models import IncidentInput

GROUP = 20
UNPOLLED_QUEUE = "bench-ingest"


@contextmanager
def ingest_api(stack: BenchStack) -> Iterator[str]:
    """`remediator api` on the stack's server and keys, starting incidents on a queue nobody polls."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REMEDIATOR_", "TEMPORAL_"))}
    env |= NO_STORM | {
        "TEMPORAL_ADDRESS": stack.dev.address,
        "REMEDIATOR_TASK_QUEUE": UNPOLLED_QUEUE,
        "REMEDIATOR_API_KEYS_FILE": str(stack.dev.keys_file),
        "REMEDIATOR_PLAYBOOK_DIR": str(stack.root / "playbooks"),
    }
    log = stack.root / f"ingest-api-{port}.out"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [REMEDIATOR, "api", "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"remediator api exited: {log.read_text()}")
        try:
            return httpx.get(f"{url}/readyz", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for("the ingest API", ready, timeout=60)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _batches(tag: str, requests: int, size: int) -> list[list[dict[str, Any]]]:
    return [
        [am_alert(PARKED_ALERT, {"service": "bench", "instance": f"{tag}-{r}-{i}"}) for i in range(size)]
        for r in range(requests)
    ]


async def _drive(
    requests: list[Callable[[], Awaitable[None]]], concurrency: int
) -> tuple[float, list[float]]:
    """(wall seconds, per-request latencies) with `concurrency` requests in flight."""
    queue = list(reversed(requests))
    latencies: list[float] = []

    async def lane() -> None:
        while queue:
            request = queue.pop()
            began = time.perf_counter()
            await request()
            latencies.append(time.perf_counter() - began)

    began = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return time.perf_counter() - began, latencies


class Raw:
    """Signal-with-start as the SDK does it, with the input the API would build."""

    def __init__(self, client: Client, stack: BenchStack) -> None:
        self.client = client
        settings = Settings(playbook_dir=stack.root / "playbooks")
        self.settings, self.pinning = settings, Pinning.load(settings)

    async def start(self, body: dict[str, Any]) -> None:
        alert = AlertmanagerWebhook.model_validate(body).alerts[0].to_alert("alertmanager")
        chosen, _ = self.pinning.catalogue.select(alert)
        inp = IncidentInput(
            alert=alert,
            config=self.settings.incident_config(),
            playbook=chosen.pinned() if chosen else None,
            policy=self.pinning.policy,
            environment="prod",
            opened_by="bench-sender",
        )
        await self.client.start_workflow(
            WORKFLOW_TYPE,
            inp,
            id=alert.workflow_id,
            task_queue=UNPOLLED_QUEUE,
            start_signal="alert",
            start_signal_args=[alert],
            search_attributes=search_attributes(alert, "prod"),
        )

    async def group(self, alerts: list[dict[str, Any]]) -> None:
        await asyncio.gather(*(self.start(am_webhook([a])) for a in alerts))


async def _compare(
    report: Report, what: str, http: httpx.AsyncClient, raw: Raw, requests: int, size: int, concurrency: int
) -> None:
    run = uuid.uuid4().hex[:8]

    def post(batch: list[dict[str, Any]]) -> Callable[[], Awaitable[None]]:
        async def send() -> None:
            await post_alerts(http, batch)

        return send

    def direct(batch: list[dict[str, Any]]) -> Callable[[], Awaitable[None]]:
        return lambda: raw.group(batch)

    ours_wall, ours = await _drive([post(b) for b in _batches(f"api-{run}", requests, size)], concurrency)
    raw_wall, base = await _drive([direct(b) for b in _batches(f"raw-{run}", requests, size)], concurrency)
    alerts = requests * size
    report.add(f"{what}: alerts/s", alerts / ours_wall, alerts / raw_wall, "alerts/s")
    report.add(f"{what}: latency p50", percentile(ours, 50) * 1000, percentile(base, 50) * 1000, "ms")
    report.add(f"{what}: latency p99", percentile(ours, 99) * 1000, percentile(base, 99) * 1000, "ms")


async def measure(stack: BenchStack, singles: int = 200, groups: int = 10, concurrency: int = 8) -> Report:
    report = Report(
        "ingest: webhook vs raw signal-with-start", {"singles": singles, "groups": groups, "group": GROUP}
    )
    report.params["concurrency"] = concurrency
    raw = Raw(await stack.client(), stack)
    with ingest_api(stack) as url:
        async with httpx.AsyncClient(base_url=url, headers=stack.headers("sender"), timeout=60) as http:
            await _compare(report, "warm-up", http, raw, concurrency, 1, concurrency)
            report.figures.clear()
            await _compare(report, "single alerts", http, raw, singles, 1, concurrency)
            await _compare(report, f"groups of {GROUP}", http, raw, groups, GROUP, min(concurrency, groups))
    report.notes.append("raw and ours start identical IncidentWorkflow inputs on one unpolled task queue")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--singles", type=int, default=200, help="requests of one alert")
    parser.add_argument("--groups", type=int, default=10, help=f"requests of {GROUP} alerts")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight")
    run_cli(parser, lambda stack, args: measure(stack, args.singles, args.groups, args.concurrency))


if __name__ == "__main__":
    main()
