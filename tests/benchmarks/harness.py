"""What the benchmarks share: the stack under test, the processes' CPU and memory, the report.

`BenchStack` is `remediator dev --no-demo` as a real subprocess on free ports (embedded Temporal dev
server, API and worker), with the shipped ServiceDown playbook, two benchmark playbooks, a local
Ansible inventory and the tests' API keys. Every figure is printed beside a raw-Temporal baseline
measured in the same run, with the ratio ours/raw.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import yaml
from temporalio.client import Client

from activities.config import REPO_ROOT, Settings
from tests.credentials import ApiKeys
from tests.stack.devstack import Dev
from worker.client import connect
from worker.devserver import free_port
from workflows.alerts import prometheus_fingerprint

TICKS = os.sysconf("SC_CLK_TCK")
PARKED_ALERT = "BenchParked"  # alertname of the playbook that asks for approval at once (no preview)
NOOP_ALERT = "BenchNoop"  # alertname of the playbook of K no-op steps
SERVICE_DOWN = "ServiceDown"


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile; 0 for no values."""
    if not values:
        return 0.0
    ranked = sorted(values)
    return ranked[max(0, math.ceil(q / 100 * len(ranked)) - 1)]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of `pid` and of its children that have exited and been waited for."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return sum(int(f) for f in fields[11:15]) / TICKS


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def self_rss() -> float:
    return rss_mb(os.getpid())


def own_cpu() -> float:
    """This process's CPU (every thread, the SDK's Rust core included) and that of its children that
    have exited and been waited for (the floor's ansible-playbook runs)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


@dataclass
class Figure:
    name: str
    ours: float
    raw: float | None
    unit: str

    @property
    def ratio(self) -> float | None:
        return round(self.ours / self.raw, 2) if self.raw else None


@dataclass
class Report:
    title: str
    params: dict[str, Any] = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, name: str, ours: float, raw: float | None, unit: str) -> None:
        self.figures.append(Figure(name, round(ours, 4), None if raw is None else round(raw, 4), unit))

    def as_dict(self) -> dict[str, Any]:
        return {
            "benchmark": self.title,
            "params": self.params,
            "figures": {
                f.name: {"ours": f.ours, "raw": f.raw, "ratio": f.ratio, "unit": f.unit} for f in self.figures
            },
            "notes": self.notes,
        }

    def text(self) -> str:
        params = " ".join(f"{k}={v}" for k, v in self.params.items())
        lines = [f"== {self.title} ({params})", f"{'figure':<34}{'ours':>12}{'raw':>12}{'ratio':>8}  unit"]
        for f in self.figures:
            raw = "-" if f.raw is None else f"{f.raw:.4g}"
            ratio = "-" if f.ratio is None else f"{f.ratio:.2f}"
            lines.append(f"{f.name:<34}{f.ours:>12.4g}{raw:>12}{ratio:>8}  {f.unit}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def emit(report: Report, as_json: bool) -> None:
    print(json.dumps(report.as_dict(), indent=2) if as_json else report.text(), flush=True)


Measure = Callable[["BenchStack", argparse.Namespace], Awaitable[Report]]


def run_cli(
    parser: argparse.ArgumentParser,
    measure: Measure,
    stack_options: Callable[[argparse.Namespace], dict[str, Any]] = lambda _: {},
) -> None:
    """A benchmark's command line: parse (adding --env and --json), measure on a fresh stack, print."""
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="a setting of the stack under test"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args()
    env = dict(item.split("=", 1) for item in args.env)

    async def run() -> Report:
        with BenchStack.running(env=env, **stack_options(args)) as stack:
            report = await measure(stack, args)
        report.params.update(env)
        return report

    emit(asyncio.run(run()), args.json)


def am_alert(alertname: str, labels: dict[str, str], probe_url: str = "") -> dict[str, Any]:
    """One entry of an Alertmanager webhook, with the fingerprint Alertmanager computes."""
    labels = {"alertname": alertname, "severity": "critical", "environment": "prod", **labels}
    annotations = {"probe_url": probe_url, "summary": "benchmark"} if probe_url else {"summary": "benchmark"}
    return {
        "status": "firing",
        "labels": labels,
        "annotations": annotations,
        "startsAt": "2026-01-01T00:00:00Z",
        "fingerprint": prometheus_fingerprint(labels),
    }


def am_webhook(alerts: list[dict[str, Any]]) -> dict[str, Any]:
    return {"version": "4", "status": "firing", "receiver": "remediator", "alerts": alerts}


# Storm control would fold alerts past these rates into one storm incident (README "Alert ingest"):
# a benchmark measures one incident per alert, so it lifts them, and `post_alerts` checks each started.
NO_STORM = {
    "REMEDIATOR_ALERT_NEW_INCIDENTS_PER_MINUTE": "1000000",
    "REMEDIATOR_ALERT_SENDER_NEW_INCIDENTS_PER_MINUTE": "1000000",
}


async def post_alerts(http: httpx.AsyncClient, alerts: list[dict[str, Any]]) -> None:
    """POST /alerts/alertmanager; fails unless every alert started an incident of its own."""
    response = await http.post("/alerts/alertmanager", json=am_webhook(alerts))
    response.raise_for_status()
    outcomes = [o.get("outcome") for o in response.json()]
    assert outcomes == ["started"] * len(alerts), outcomes


def _noop_playbook(steps: int, closed_url: str) -> dict[str, Any]:
    """K checks that each run one cheap activity (a probe refused at once), then a stop."""
    checks = [
        {"id": f"s{i}", "kind": "check", "check": {"type": "probe", "url": closed_url}} for i in range(steps)
    ]
    return {
        "name": NOOP_ALERT,
        "description": "benchmark: K no-op steps",
        "match": {"matchers": [f'alertname="{NOOP_ALERT}"']},
        "steps": [
            *checks,
            {"id": "done", "kind": "stop", "outcome": "resolved", "reason": "no-op steps done"},
        ],
    }


def _parked_playbook() -> dict[str, Any]:
    """Asks for approval first thing: an incident parked without an Ansible preview."""
    return {
        "name": PARKED_ALERT,
        "description": "benchmark: park at AwaitingApproval",
        "match": {"matchers": [f'alertname="{PARKED_ALERT}"']},
        "steps": [
            {"id": "ask", "kind": "approval", "message": "benchmark incident"},
            {"id": "done", "kind": "stop", "outcome": "resolved", "reason": "approved"},
        ],
    }


@dataclass
class BenchStack:
    """`remediator dev --no-demo` with the benchmark's playbooks, inventory and keys."""

    root: Path
    dev: Dev
    keys: ApiKeys
    closed_port: int
    noop_steps: int  # K of the BenchNoop playbook

    @classmethod
    @contextmanager
    def running(cls, noop_steps: int = 20, env: dict[str, str] | None = None) -> Iterator[BenchStack]:
        root = Path(tempfile.mkdtemp(prefix="remediator-bench-"))
        closed_port = free_port()  # nothing listens there: every probe is refused at once
        playbooks = root / "playbooks"
        playbooks.mkdir()
        shutil.copy(REPO_ROOT / "playbooks" / "service_down.yaml", playbooks)
        closed_url = f"http://127.0.0.1:{closed_port}/health"
        (playbooks / "bench_noop.yaml").write_text(yaml.safe_dump(_noop_playbook(noop_steps, closed_url)))
        (playbooks / "bench_parked.yaml").write_text(yaml.safe_dump(_parked_playbook()))
        inventory = root / "inventory.yml"  # BenchStack.inventory
        host = {
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            "ansible_pipelining": True,
            "remediator_marker_dir": str(root / "markers"),
            "restart_commands": {"bench": "true"},  # skipped in check mode; never applied here
        }
        inventory.write_text(yaml.safe_dump({"all": {"hosts": {"localhost": host}}}))
        # The stack's settings: a clean REMEDIATOR_* environment plus what the benchmark needs.
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("REMEDIATOR_", "TEMPORAL_"))}
        settings = {
            **NO_STORM,
            "REMEDIATOR_PROBE_ALLOW": "127.0.0.1",
            "REMEDIATOR_PLAYBOOK_DIR": str(playbooks),
            "REMEDIATOR_ANSIBLE_INVENTORY": str(inventory),
            **(env or {}),
        }
        dev = Dev(root / "state", ["--no-demo"])
        try:
            with mock.patch.dict(os.environ, {**clean, **settings}, clear=True):
                dev.start()
            keys = ApiKeys.create(dev.keys_file, prefix="bench-")
            dev.reader_key = keys.keys["viewer"]
            yield cls(root=root, dev=dev, keys=keys, closed_port=closed_port, noop_steps=noop_steps)
        finally:
            if dev.proc is not None:
                dev.stop(timeout=60)
            shutil.rmtree(root, ignore_errors=True)

    @property
    def inventory(self) -> Path:
        return self.root / "inventory.yml"

    @property
    def closed_url(self) -> str:
        return f"http://127.0.0.1:{self.closed_port}/health"

    def pids(self) -> dict[str, int]:
        assert self.dev.proc is not None
        return {"worker+api": self.dev.proc.pid, "temporal": self.dev.temporal_pid()}

    def cpu_by_process(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) for name, pid in self.pids().items()}

    def cpu(self) -> float:
        return sum(self.cpu_by_process().values())

    def rss(self) -> dict[str, float]:
        return {name: rss_mb(pid) for name, pid in self.pids().items()}

    def headers(self, key: str) -> dict[str, str]:
        return self.keys.headers(key)

    async def client(self) -> Client:
        """A plain client of the stack's server (no codec: benchmarks read timestamps, not payloads)."""
        return await connect(self.dev.address, settings=Settings())


async def poll(what: str, check: Any, timeout: float, every: float = 0.2) -> Any:
    """Await `check()` until truthy; AssertionError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(every)


@dataclass(frozen=True)
class Reached:
    """When a workflow first set IncidentPhase to a value, read from its history."""

    at: float  # epoch seconds (server clock, the same machine's)
    events: int  # history events up to and including that one
    activities: int  # activities scheduled before it


async def reached(client: Client, workflow_id: str, phase: str) -> Reached | None:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    wanted = json.dumps(phase).encode()
    activities = 0
    for index, event in enumerate(history.events, 1):
        if event.HasField("activity_task_scheduled_event_attributes"):
            activities += 1
        if event.HasField("upsert_workflow_search_attributes_event_attributes"):
            fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
            if "IncidentPhase" in fields and fields["IncidentPhase"].data == wanted:
                return Reached(
                    at=event.event_time.ToMicroseconds() / 1e6, events=index, activities=activities
                )
    return None


async def activity_seconds(client: Client, workflow_id: str) -> dict[str, float]:
    """Seconds from scheduled to closed, summed per activity type (where an incident's time went)."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    scheduled: dict[int, tuple[str, float]] = {}
    spent: dict[str, float] = {}
    closing = {f"activity_task_{kind}_event_attributes" for kind in ("completed", "failed", "timed_out")}
    for event in history.events:
        at = event.event_time.ToMicroseconds() / 1e6
        kind = event.WhichOneof("attributes")
        if kind == "activity_task_scheduled_event_attributes":
            scheduled[event.event_id] = (
                event.activity_task_scheduled_event_attributes.activity_type.name,
                at,
            )
        elif kind in closing:
            name, began = scheduled[getattr(event, kind).scheduled_event_id]
            spent[name] = spent.get(name, 0.0) + at - began
    return spent


async def history_bytes(client: Client, workflow_id: str) -> int:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return sum(e.ByteSize() for e in history.events)


async def count(client: Client, query: str) -> int:
    return (await client.count_workflows(query)).count
