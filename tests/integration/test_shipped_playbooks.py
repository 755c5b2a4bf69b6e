"""Shipped playbooks through IncidentWorkflow on the real worker (`build_worker`), end to end.

Every shipped playbook has a case here. Nothing of ours is faked: the real dev server, the worker's own
activity registration, the real Kubernetes client and kubectl against the Kubernetes emulator (a real
HTTP server), real ansible-runner on an inventory of this machine, and the embedded Terraform. Prometheus, which
cannot run with these series here, is a local HTTP server answering its query API (`FakePrometheus`).
Approvals arrive as the `approve` signal, as `temporal workflow signal` sends them.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle

from activities.config import Settings
from tests.diagnosis.crashloop import POD, crashlooping_pod
from tests.k8s_emulator.harness import RS_OWNER, KubeTarget, deployment, emulated, pod
from tests.registration import called_by, real_activity_names
from tests.workflows.fakes import CONFIG, shipped, start
from worker.devserver import free_port
from worker.main import activity_pool, build_worker
from workflows.alerts import Alert, label_fingerprint
from workflows.decisions import Decision
from workflows.incident import IncidentWorkflow
from workflows.incident_models import IncidentState
from workflows.phases import TERMINAL_PHASES, Phase

pytestmark = [pytest.mark.integration, pytest.mark.kubernetes]

TERRAFORM = Path(__file__).resolve().parents[2] / "deploy" / "terraform"
APPROVERS = ("alice", "bob")  # two distinct people: destructive actions need both


@dataclass
class FakePrometheus:
    """Prometheus' query API on 127.0.0.1: a query answers the next value of the first metric it names.

    Each metric's values are answered in order, the last one repeating. `/health` is a service that
    answers, for the probes of a case (its labels name it as `{local}`); `probed` counts its requests.
    """

    values: dict[str, list[float]] = field(default_factory=dict)  # metric name -> answers in order
    queries: list[str] = field(default_factory=list)
    url: str = ""
    probed: int = 0
    up_when: Path | None = None  # /health answers 503 until this file exists

    async def _health(self, _: web.Request) -> web.Response:
        self.probed += 1
        up = self.up_when is None or self.up_when.exists()
        return web.Response(text="ok" if up else "down", status=200 if up else 503)

    async def _query(self, request: web.Request) -> web.Response:
        query = request.query["query"]
        self.queries.append(query)
        script = next((v for name, v in self.values.items() if name in query), [])
        value = script.pop(0) if len(script) > 1 else next(iter(script), None)
        result = [] if value is None else [{"metric": {}, "value": [0, str(value)]}]
        return web.json_response({"status": "success", "data": {"resultType": "vector", "result": result}})

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[FakePrometheus]:
        app = web.Application()
        app.router.add_get("/api/v1/query", self._query)
        app.router.add_get("/health", self._health)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"
        try:
            yield self
        finally:
            await runner.cleanup()


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeTarget]:
    with emulated(tmp_path_factory.mktemp("cluster")) as target:
        yield target


@asynccontextmanager
async def real_worker(client: Client, kube: KubeTarget, prometheus: str, tmp: Path) -> AsyncIterator[str]:
    """The worker as `remediator worker` builds it, on a task queue of its own; yields the queue."""
    settings = Settings(
        state_dir=tmp / "state",
        task_queue=f"shipped-{uuid.uuid4().hex[:8]}",
        kubeconfig=str(kube.kubeconfig),
        kube_namespaces=[kube.namespace],
        prometheus_url=prometheus,
        terraform_modules_dir=terraform_modules(tmp),
        ansible_inventory=str(inventory(tmp)),
        probe_allow=["127.0.0.1"],  # the OpsHealthCheck case probes a server of its own
    )
    with activity_pool(settings) as pool:
        async with build_worker(client, settings, pool):
            yield settings.task_queue


def alert(**labels: str) -> Alert:
    labels = {"severity": "critical", "environment": "dev", "run": uuid.uuid4().hex[:8], **labels}
    return Alert(fingerprint=label_fingerprint(labels), labels=labels)


async def finish(handle: WorkflowHandle[Any, Any], seconds: float = 60) -> IncidentState:
    """Approve whatever asks (each approver once), until the incident ends; its final state."""
    approvals: list[str] = []
    for _ in range(int(seconds / 0.1)):
        state: IncidentState = await handle.query(IncidentWorkflow.state)
        if state.phase in TERMINAL_PHASES:
            return state
        if state.phase == Phase.AWAITING_APPROVAL and len(approvals) < len(APPROVERS):
            approvals.append(APPROVERS[len(approvals)])
            await handle.signal(IncidentWorkflow.approve, Decision(approver=approvals[-1], reason="test"))
        await asyncio.sleep(0.1)
    raise AssertionError(f"{handle.id} still {state.phase}: {[e.event for e in state.timeline][-8:]}")


async def activity_types(handle: WorkflowHandle[Any, Any]) -> list[str]:
    return [
        event.activity_task_scheduled_event_attributes.activity_type.name
        async for event in handle.fetch_history_events()
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]


@dataclass
class Case:
    playbook: str
    labels: dict[str, str]
    metrics: dict[str, list[float]]
    prepare: Callable[[KubeTarget, Path], None]  # the cluster, and the test's own directory
    path: str  # the steps taken, as the timeline's "playbook path" shows them
    changed: Callable[[KubeTarget, Path], object]  # what the fix changed (cluster or files) ...
    expected: object  # ... and what it must be afterwards


def terraform_modules(tmp: Path) -> Path:
    """The shipped certificates module, and a module whose state has drifted (none yet applied).

    Only the renewal command is replaced (certbot cannot run here), by a Terraform override file: the
    module, its variables and its validation are the shipped ones.
    """
    modules = tmp / "modules"
    shutil.copytree(TERRAFORM / "certificates", modules / "certificates")
    command = f"printf '%s\\n' >> {tmp / 'renewed.log'}"
    override = {"variable": {"renew_command": {"default": command}}}
    (modules / "certificates" / "renew_override.tf.json").write_text(json.dumps(override))
    (modules / "flags").mkdir()
    (modules / "flags" / "main.tf").write_text(
        'resource "terraform_data" "flag" {\n  input = "off"\n  provisioner "local-exec" {\n'
        f'    command = "printf off > {tmp / "flag"}"\n  }}\n}}\n'
    )
    return modules


def inventory(tmp: Path) -> Path:
    """One host, this machine as `127.0.0.1` (so an `instance` label with a port names it), whose
    directories and restart command are the test's own: the inventory, not the alert, decides them."""
    host = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "remediator_marker_dir": str(tmp / "markers"),
        "restart_commands": {"web": f"touch {tmp / 'restarted'}"},
        "cleanup_dirs": [str(tmp / "logs")],
        "log_dirs": [str(tmp / "logs")],
        "backup_paths": [str(tmp / "data")],
        "backup_dir": str(tmp / "backups"),
        "rotate_logs": False,  # no logrotate of this machine's own logs
    }
    path = tmp / "inventory.json"
    path.write_text(json.dumps({"all": {"hosts": {"127.0.0.1": host}}}))
    return path


def read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def roll_out(kube: KubeTarget, name: str, image: str) -> None:
    patch = {"spec": {"template": {"spec": {"containers": [{"name": name, "image": image}]}}}}
    kube.admin.call("rollout", kube.admin.apps.patch_namespaced_deployment, name, kube.namespace, patch)


def image(kube: KubeTarget, name: str) -> str:
    return str(kube.deployment(name)["spec"]["template"]["spec"]["containers"][0]["image"])


def bad_checkout_rollout(kube: KubeTarget, _: Path) -> None:
    """The crash-looping checkout (tests/diagnosis/crashloop.py), after a rollout of a new image."""
    crashlooping_pod(kube)
    roll_out(kube, "checkout", "checkout:1.44.0")


def bad_ledger_rollout(kube: KubeTarget, _: Path) -> None:
    kube.create(deployment("ledger", image="ledger:1.0"))
    roll_out(kube, "ledger", "ledger:1.1")


def create(name: str, replicas: int) -> Callable[[KubeTarget, Path], None]:
    def prepare(kube: KubeTarget, _: Path) -> None:
        kube.create(deployment(name, replicas=replicas))

    return prepare


def old_rotated_log(_: KubeTarget, tmp: Path) -> None:
    (tmp / "logs").mkdir()
    stale = tmp / "logs" / "app.log.1"
    stale.write_text("old")
    month_ago = time.time() - 30 * 86400
    os.utime(stale, (month_ago, month_ago))
    (tmp / "logs" / "app.log").write_text("x" * 2048)


def files_to_back_up(_: KubeTarget, tmp: Path) -> None:
    (tmp / "data").mkdir()
    (tmp / "data" / "orders.db").write_text("orders")


def big_log(_: KubeTarget, tmp: Path) -> None:
    """An 11 MB log (sparse), over the playbook's 10m threshold."""
    (tmp / "logs").mkdir()
    with (tmp / "logs" / "app.log").open("wb") as log:
        log.truncate(11 * 2**20)


def service_up(_: KubeTarget, tmp: Path) -> None:
    (tmp / "restarted").touch()


def pods_on_sick_node(kube: KubeTarget, _: Path) -> None:
    kube.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-7"}, "spec": {}})
    for name in ("orders-1", "orders-2"):
        kube.create(pod(name, node="node-7", ownerReferences=[RS_OWNER]))


def pods_left_on(node: str) -> Callable[[KubeTarget, Path], object]:
    def left(kube: KubeTarget, _: Path) -> object:
        listing = kube.admin.call(
            "pods", kube.admin.core.list_pod_for_all_namespaces, field_selector=f"spec.nodeName={node}"
        )
        unschedulable = (kube.get("v1", "Node", node) or {})["spec"].get("unschedulable")
        return unschedulable, [p["metadata"]["name"] for p in listing["items"]]

    return left


def nothing(kube: KubeTarget, tmp: Path) -> None:
    """Nothing to set up: the case's world is its own directory and servers."""


def bad_cart_rollout(kube: KubeTarget, _: Path) -> None:
    kube.create(deployment("cart", image="cart:2.0", replicas=3))
    roll_out(kube, "cart", "cart:2.1")


CASES = {
    "KubePodCrashLooping": Case(
        "kube_pod_crash_looping.yaml",
        {
            "alertname": "KubePodCrashLooping",
            "namespace": "shop",
            "pod": POD,
            "container": "checkout",
            "deployment": "checkout",
            "service": "checkout",
        },
        {"kube_pod_container_status_restarts_total": [0]},
        bad_checkout_rollout,
        "logs -> events -> history -> recent_rollout -> undo -> stopped_crashing",
        lambda kube, _: image(kube, "checkout"),
        "registry.example.com/shop/checkout:1.43.0",
    ),
    "HighCPU": Case(
        "high_cpu.yaml",
        {"alertname": "HighCPU", "namespace": "shop", "deployment": "api", "service": "api"},
        # CPU over 15 minutes is saturated; over the last 5 (after scaling out), no longer.
        {'container!=""}[15m]': [0.93], 'container!=""}[5m]': [0.3]},
        create("api", 2),
        "cpu -> sustained -> scale_out -> relieved",
        lambda kube, _: kube.deployment("api")["spec"]["replicas"],
        4,
    ),
    "KubeDeploymentReplicasMismatch": Case(
        "kube_deployment_replicas_mismatch.yaml",
        {"alertname": "KubeDeploymentReplicasMismatch", "namespace": "shop", "deployment": "cart"},
        {"kube_deployment_spec_replicas": [0]},
        bad_cart_rollout,
        "undo -> available",
        lambda kube, _: image(kube, "cart"),
        "cart:2.0",
    ),
    "HighLatency": Case(
        "high_latency.yaml",
        {"alertname": "HighLatency", "namespace": "shop", "deployment": "web", "service": "web"},
        # No dependency down, the service saturated; after scaling out, p99 is back under the SLO.
        {"sum(1 - up{": [0], "container_cpu_usage_seconds_total": [0.95], "http_request_duration": [0.2]},
        create("web", 2),
        "dependencies_down -> dependency_problem -> cpu -> saturated -> scale_out -> fast_again",
        lambda kube, _: kube.deployment("web")["spec"]["replicas"],
        4,
    ),
    "HighMemory": Case(
        "high_memory.yaml",
        {"alertname": "HighMemory", "namespace": "shop", "deployment": "ledger", "container": "ledger"},
        {"kube_pod_container_status_restarts_total": [0]},
        bad_ledger_rollout,  # a deploy minutes ago: roll it back rather than raise the limit
        "evidence -> recent_deploy -> undo_deploy -> stable",
        lambda kube, _: image(kube, "ledger"),
        "ledger:1.0",
    ),
    "CertificateExpiringSoon": Case(
        "certificate_expiring_soon.yaml",
        {"alertname": "CertificateExpiringSoon", "certificate": "shop-tls", "instance": "shop.example:443"},
        {"probe_ssl_earliest_cert_expiry": [89]},  # days left after the renewal
        nothing,
        "renew -> fresh",
        lambda _, tmp: read(tmp / "renewed.log"),
        "shop-tls\n",
    ),
    "TerraformDrift": Case(
        "terraform_drift.yaml",
        {"alertname": "TerraformDrift", "module": "flags", "workspace": "shop-flags"},
        {},
        nothing,
        "plan -> drifted -> approve_apply -> apply -> converged",
        lambda _, tmp: read(tmp / "flag"),
        "off",
    ),
    "OpsHealthCheck": Case(
        "ops_health_check.yaml",
        {"alertname": "OpsHealthCheck", "target": "{local}"},
        {},
        service_up,
        "probe -> answers -> fast -> metrics",
        lambda _, __: None,  # a check changes nothing; the test asserts the probe reached the service
        None,
    ),
    "ServiceDown": Case(
        "service_down.yaml",
        {
            "alertname": "ServiceDown",
            "service": "web",
            "host": "127.0.0.1",
            "probe_url": "http://{local}/health",
        },
        {},
        nothing,  # /health answers 503 until the inventory's restart command has run
        "probe -> still_down -> restart -> healthy",
        lambda _, tmp: (tmp / "restarted").exists(),
        True,
    ),
    "OpsBatchRestart": Case(
        "ops_batch_restart.yaml",
        {"alertname": "OpsBatchRestart", "service": "web", "target": "{local}"},
        {},
        nothing,
        "restart -> healthy",
        lambda _, tmp: (tmp / "restarted").exists(),
        True,
    ),
    "DiskFull": Case(
        "disk_full.yaml",
        {"alertname": "DiskFull", "host": "127.0.0.1", "instance": "127.0.0.1:9100"},
        {"100 * node_filesystem_avail_bytes": [4, 40]},  # 4% free, then 40% after the cleanup
        old_rotated_log,
        "free -> short -> cleanup -> space_back -> report",
        lambda _, tmp: sorted(p.name for p in (tmp / "logs").iterdir()),
        ["app.log"],
    ),
    "OpsBackup": Case(
        "ops_backup.yaml",
        {"alertname": "OpsBackup", "target": "127.0.0.1"},
        {},
        files_to_back_up,
        "backup -> verified",
        lambda _, tmp: sorted(p.suffix for p in (tmp / "backups").iterdir()),
        [".gz", ".sha256"],
    ),
    "OpsLogRotation": Case(
        "ops_log_rotation.yaml",
        {"alertname": "OpsLogRotation", "target": "127.0.0.1"},
        {},
        big_log,
        "rotate -> rotated",
        lambda _, tmp: [(p.suffix, p.stat().st_size) for p in sorted((tmp / "logs").iterdir())][:1],
        [(".log", 0)],
    ),
    "NodeNotReady": Case(
        "node_not_ready.yaml",
        {"alertname": "NodeNotReady", "node": "node-7"},
        {"kube_pod_info": [0]},
        pods_on_sick_node,
        "approve_drain -> cordon -> uncordon -> drain -> emptied -> hand_over",
        pods_left_on("node-7"),
        (True, []),
    ),
}


def test_every_shipped_playbook_has_a_case() -> None:
    shipped_files = {path.name for path in (TERRAFORM.parents[1] / "playbooks").glob("*.yaml")}
    assert shipped_files == {case.playbook for case in CASES.values()}


@pytest.mark.parametrize("name", CASES)
async def test_shipped_playbook_resolves_on_the_real_worker(
    dev_client: Client, kube: KubeTarget, tmp_path: Path, name: str
) -> None:
    case = CASES[name]
    case.prepare(kube, tmp_path)
    playbook = shipped(case.playbook)
    assert playbook.playbook.name == name
    async with (
        FakePrometheus(
            {k: list(v) for k, v in case.metrics.items()}, up_when=tmp_path / "restarted"
        ).serving() as prometheus,
        real_worker(dev_client, kube, prometheus.url, tmp_path) as queue,
    ):
        local = prometheus.url.removeprefix("http://")
        labels = {name: value.replace("{local}", local) for name, value in case.labels.items()}
        handle = await start(dev_client, alert(**labels), CONFIG, playbook, queue=queue)
        state = await finish(handle)
    assert state.phase == Phase.RESOLVED, [(e.event, e.detail) for e in state.timeline][-6:]
    assert next(e.detail for e in state.timeline if e.event == "playbook path") == case.path
    assert case.changed(kube, tmp_path) == case.expected
    if any("{local}" in value for value in case.labels.values()):
        assert prometheus.probed, "the probe never reached the service"
    called = await activity_types(handle)
    assert set(called) <= real_activity_names()
    # Every read the playbook's path takes ran through its registered activity (kube_logs, not kubernetes.logs).
    reads, _ = called_by(playbook.playbook, taken=case.path.split(" -> "))
    assert reads & set(called) == reads
    # Every series a case scripts was asked for: the checks and verifications went to Prometheus.
    assert all(any(name in query for query in prometheus.queries) for name in case.metrics), (
        prometheus.queries
    )
