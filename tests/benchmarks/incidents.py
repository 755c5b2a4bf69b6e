"""Benchmark (b): N ServiceDown incidents to AwaitingApproval on the full `remediator dev` stack.

    .venv/bin/python -m tests.benchmarks.incidents [--n 30 | --n 100] [--approval-first] [--env NAME=VALUE ...] [--json]

N alerts (`environment: prod`, a probe URL on a closed local port) are posted to the webhook at
once; each incident gathers evidence, diagnoses (heuristic), runs the ServiceDown playbook's probe
and its Ansible check-mode preview, and waits for a human. Reported: wall time until all wait,
time-to-approvable (alert sent -> IncidentPhase=AwaitingApproval in history) p50/p95, CPU-seconds
per incident (worker+API and Temporal server processes, /proc; the worker's share includes the
ansible-playbook processes it ran), history events per incident, RSS.

`--approval-first` sends the alerts of the BenchParked playbook instead, which asks for approval
before any probe or preview: the same path (evidence, heuristic diagnosis, approval) without the
Ansible check run, to show what that run costs.

The baseline: a raw workflow running as many no-op activities as an incident ran before it waited,
then parking on a signal, N at once on the same server (CPU: this process's worker and client plus
the server).

The floor (ServiceDown only): the same raw workflow whose last activity is a real Ansible check run
of the ServiceDown playbook (`restart_service.yml`, the benchmark's inventory), shared as ours are,
never with a result older than its request (tests/benchmarks/raw.py `CheckRuns`). It is what Temporal
and Ansible cost on this machine for the path with none of our code on it, so a target below it
cannot be met here by anything we change. The loosest floor lets a workflow share the run in flight
(a result up to one run older than its request), which ours never does.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from pathlib import Path

import httpx

from activities.config import REPO_ROOT
from tests.benchmarks.harness import (
    PARKED_ALERT,
    SERVICE_DOWN,
    BenchStack,
    Report,
    activity_seconds,
    am_alert,
    count,
    cpu_seconds,
    history_bytes,
    own_cpu,
    percentile,
    poll,
    post_alerts,
    reached,
    run_cli,
    self_rss,
)
from tests.benchmarks.raw import PARKED, RAW_QUEUE, RAW_TYPE, CheckRuns, RawInput, raw_worker
from workflows.alerts import prometheus_fingerprint
from workflows.phases import Phase

APPROVABLE = Phase.AWAITING_APPROVAL.value


async def _ours(
    stack: BenchStack, n: int, timeout: float, alertname: str
) -> tuple[dict[str, float], dict[str, float]]:
    """Send time per incident id, and the CPU-seconds each process spent until all were approvable."""
    run = uuid.uuid4().hex[:8]
    alerts = [
        am_alert(alertname, {"service": "bench", "instance": f"{run}-{i}"}, stack.closed_url)
        for i in range(n)
    ]
    client = await stack.client()
    query = f"WorkflowType='IncidentWorkflow' AND AlertName='{alertname}' AND IncidentPhase='{APPROVABLE}'"
    before = await count(client, query)
    sent: dict[str, float] = {}
    cpu = stack.cpu_by_process()
    async with httpx.AsyncClient(base_url=stack.dev.api, headers=stack.headers("sender"), timeout=60) as http:

        async def post(alert: dict[str, object]) -> None:
            sent[f"incident-{prometheus_fingerprint(alert['labels'])}"] = time.time()  # type: ignore[arg-type]
            await post_alerts(http, [alert])

        await asyncio.gather(*(post(a) for a in alerts))

    async def all_waiting() -> bool:
        return await count(client, query) >= before + n

    await poll(f"{n} incidents at {APPROVABLE}", all_waiting, timeout, every=0.5)
    return sent, {name: spent - cpu[name] for name, spent in stack.cpu_by_process().items()}


async def _raw(
    stack: BenchStack, n: int, activities: int, timeout: float, checks: CheckRuns | None = None
) -> tuple[str, dict[str, float], float]:
    """`checks`: the floor, whose last activity is a check run of `checks`."""
    client = await stack.client()
    temporal = stack.pids()["temporal"]
    run = uuid.uuid4().hex[:8]
    sent: dict[str, float] = {}
    async with raw_worker(client, checks):
        cpu = own_cpu() + cpu_seconds(temporal)

        async def start(i: int) -> None:
            workflow_id = f"raw-{run}-{i}"
            sent[workflow_id] = time.time()
            await client.start_workflow(
                RAW_TYPE,
                RawInput(steps=activities, park=f"{PARKED}-{run}", check_last=checks is not None),
                id=workflow_id,
                task_queue=RAW_QUEUE,
            )

        await asyncio.gather(*(start(i) for i in range(n)))
        query = f"WorkflowType='{RAW_TYPE}' AND IncidentPhase='{PARKED}-{run}'"

        async def all_parked() -> bool:
            return await count(client, query) >= n

        await poll(f"{n} raw workflows parked", all_parked, timeout, every=0.5)
        spent = own_cpu() + cpu_seconds(temporal) - cpu
        await asyncio.gather(*(client.get_workflow_handle(w).signal("release") for w in sent))
    return run, sent, spent


def _floor_checks(stack: BenchStack, share_in_flight: bool) -> CheckRuns:
    """The ServiceDown preview's check run as Ansible alone: its playbook, the stack's inventory."""
    playbook = REPO_ROOT / "playbooks" / "ansible" / "restart_service.yml"
    ansible = Path(sys.executable).parent / "ansible-playbook"
    flags = ["--check", "--diff", "-v", "-e", "service=bench"]  # as the executor runs a preview
    return CheckRuns([str(ansible), "-i", str(stack.inventory), str(playbook), *flags], share_in_flight)


async def _floor(
    stack: BenchStack, report: Report, activities: int, timeout: float, took: list[float], cpu: float
) -> None:
    """Add both floors beside ours: `took` (time-to-approvable) and `cpu` (CPU-s, all incidents).

    Each on a fresh stack, as ours ran: a server that has just run two bursts is slower (a third
    burst on the same one took up to half as long again here), which would flatter us."""
    for share_in_flight, which in ((False, "the floor"), (True, "the loosest floor")):
        with BenchStack.running(stack.noop_steps) as fresh:
            client = await fresh.client()
            checks = _floor_checks(fresh, share_in_flight)
            run, sent, floor_cpu = await _raw(fresh, len(took), activities, timeout, checks)
            parked = [await reached(client, i, f"{PARKED}-{run}") for i in sent]
        if any(checks.codes):
            raise RuntimeError(f"a floor check run failed (exit codes {checks.codes}): {checks.argv}")
        floor = [r.at - at for r, at in zip(parked, sent.values(), strict=True) if r]
        report.add(f"p95 against {which}", percentile(took, 95), percentile(floor, 95), "s")
        report.add(f"p50 against {which}", percentile(took, 50), percentile(floor, 50), "s")
        report.add(f"CPU per incident against {which}", cpu / len(took), floor_cpu / len(took), "CPU-s")
        report.notes.append(
            f"{which}: raw, its last activity a real check run of restart_service.yml; "
            f"check runs shared by {', '.join(map(str, checks.sizes))} workflows"
        )


async def measure(
    stack: BenchStack, n: int = 30, timeout: float = 900, approval_first: bool = False
) -> Report:
    alertname = PARKED_ALERT if approval_first else SERVICE_DOWN
    report = Report("incidents to AwaitingApproval (full stack)", {"n": n, "alert": alertname})
    client = await stack.client()
    started = time.time()
    sent, cpu = await _ours(stack, n, timeout, alertname)
    ours = {i: await reached(client, i, APPROVABLE) for i in sent}
    rss = stack.rss()
    first = next(r for r in ours.values() if r)
    run, raw_sent, raw_cpu = await _raw(stack, n, first.activities, timeout)
    raw = {i: await reached(client, i, f"{PARKED}-{run}") for i in raw_sent}
    took = [r.at - sent[i] for i, r in ours.items() if r]
    raw_took = [r.at - raw_sent[i] for i, r in raw.items() if r]
    report.add(
        "wall time, all approvable", max(r.at for r in ours.values() if r) - started, max(raw_took), "s"
    )
    report.add("time-to-approvable p50", percentile(took, 50), percentile(raw_took, 50), "s")
    report.add("time-to-approvable p95", percentile(took, 95), percentile(raw_took, 95), "s")
    report.add("CPU per incident", sum(cpu.values()) / n, raw_cpu / n, "CPU-s")
    for process, seconds in cpu.items():
        report.add(f"  of which {process}", seconds / n, None, "CPU-s")
    events = [r.events for r in ours.values() if r]
    raw_events = [r.events for r in raw.values() if r]
    report.add(
        "history events to approvable", sum(events) / len(events), sum(raw_events) / len(raw_events), "events"
    )
    report.add("history bytes (one incident)", await history_bytes(client, next(iter(sent))), None, "bytes")
    report.add("activities before approvable", first.activities, first.activities, "activities")
    report.add("RSS worker+API", rss["worker+api"], self_rss(), "MB")
    report.add("RSS Temporal server", rss["temporal"], None, "MB")
    spent: dict[str, float] = {}
    for workflow_id in sent:
        for name, seconds in (await activity_seconds(client, workflow_id)).items():
            spent[name] = spent.get(name, 0.0) + seconds / n
    report.notes.append(
        "mean seconds per incident in each activity (scheduled to closed): "
        + ", ".join(f"{name} {seconds:.2f}" for name, seconds in sorted(spent.items(), key=lambda i: -i[1]))
    )
    report.notes.append(
        "raw: a workflow of as many no-op activities, parked on a signal; its worker runs in the "
        "benchmark process, whose RSS is the raw RSS"
    )
    if not approval_first:
        await _floor(stack, report, first.activities, timeout, took, sum(cpu.values()))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--n", type=int, default=30, help="incidents in flight at once (the issue's target: 100)"
    )
    parser.add_argument(
        "--approval-first",
        action="store_true",
        help="alerts of a playbook that asks for approval before any probe or preview (no Ansible run)",
    )
    run_cli(parser, lambda stack, args: measure(stack, args.n, approval_first=args.approval_first))


if __name__ == "__main__":
    main()
