"""What a Kubernetes test needs, whichever cluster is behind the kubeconfig (emulator or real).

`KubeTarget` builds the executor and the read tools from Settings, as the worker does, runs their
activities in an ActivityEnvironment (recording heartbeats), and gives tests an unrestricted
client of their own to create fixtures and to look at what changed.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

from temporalio.testing import ActivityEnvironment

from activities.config import Settings
from activities.kubernetes.cluster import KubeCluster, api_errors
from activities.kubernetes.executor import KubernetesExecutor
from activities.kubernetes.reads import KubernetesReads
from tests.k8s_emulator.runner import running_emulator, write_kubeconfig
from tests.k8s_emulator.server import ClusterEmulator
from workflows.actions import KubernetesAction
from workflows.plans import ActionRequest

T = TypeVar("T")
PAUSE = "registry.k8s.io/pause:3.9"  # a container that does nothing, for clusters that really run pods
# A controller for pods that drain may evict (drain refuses pods nobody would recreate).
RS_OWNER = {
    "apiVersion": "apps/v1",
    "kind": "ReplicaSet",
    "name": "web-5d9c",
    "uid": "rs-uid",
    "controller": True,
}


def deployment(name: str, image: str = PAUSE, replicas: int = 1) -> dict[str, Any]:
    labels = {"app": name}
    container = {"name": name, "image": image, "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }


def pod(name: str, node: str = "", labels: dict[str, str] | None = None, **meta: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "main", "image": PAUSE}]}
    if node:
        spec["nodeName"] = node
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {"app": name}, **meta},
        "spec": spec,
    }


@dataclasses.dataclass
class KubeTarget:
    kubeconfig: Path
    namespace: str
    state_dir: Path
    emulator: ClusterEmulator | None = None
    run_id: str = dataclasses.field(default_factory=lambda: f"run-{uuid.uuid4().hex[:8]}")
    heartbeats: list[Any] = dataclasses.field(default_factory=list)
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)

    def settings(self, **overrides: Any) -> Settings:
        base: dict[str, Any] = {
            "kubeconfig": str(self.kubeconfig),
            "kube_namespaces": [self.namespace],
            "state_dir": self.state_dir,
        }
        return Settings(**{**base, **self.overrides, **overrides})

    @cached_property
    def cluster(self) -> KubeCluster:
        return KubeCluster(self.settings())

    @cached_property
    def executor(self) -> KubernetesExecutor:
        return KubernetesExecutor(self.cluster)

    @cached_property
    def reads(self) -> KubernetesReads:
        return KubernetesReads(self.cluster)

    @cached_property
    def admin(self) -> KubeCluster:
        """A client for the test itself: every namespace allowed."""
        return KubeCluster(self.settings(kube_namespaces=["*"]))

    def environment(self, attempt: int = 1, scheduled: datetime | None = None) -> ActivityEnvironment:
        env = ActivityEnvironment()
        env.info = dataclasses.replace(
            env.info,
            workflow_run_id=self.run_id,
            attempt=attempt,
            scheduled_time=scheduled or datetime.now(UTC),
            heartbeat_timeout=None,
        )
        env.on_heartbeat = lambda *details: self.heartbeats.append(details)
        return env

    def run(self, fn: Callable[[Any], T], arg: Any, attempt: int = 1, scheduled: datetime | None = None) -> T:
        return self.environment(attempt, scheduled).run(fn, arg)

    def request(
        self, operation: str, args: dict[str, Any], step: str = "fix", **fields: Any
    ) -> ActionRequest:
        namespace = "" if operation in ("cordon", "uncordon", "drain") else self.namespace
        action = KubernetesAction(
            name=f"{operation} in a test",
            operation=operation,
            namespace=namespace,
            args=args,
            **fields,  # type: ignore[arg-type]
        )
        return ActionRequest(incident_id="incident-k8s-test", step=step, action=action)

    def key(self, request: ActionRequest) -> str:
        return f"{request.idempotency_key}@{self.run_id}"

    # --- fixtures and inspection through the API ----------------------------------------------------

    def create(self, manifest: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        resource = self.admin.dynamic.resources.get(api_version=manifest["apiVersion"], kind=manifest["kind"])
        with api_errors(f"creating {manifest['kind']} {manifest['metadata']['name']}"):
            if resource.namespaced:
                created = resource.create(body=manifest, namespace=namespace or self.namespace)
            else:
                created = resource.create(body=manifest)
        return dict(created.to_dict())

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        resource = self.admin.dynamic.resources.get(api_version=api_version, kind=kind)
        ns = (namespace or self.namespace) if resource.namespaced else None
        try:
            with api_errors(f"reading {kind} {name}"):
                return dict(resource.get(name=name, namespace=ns).to_dict())
        except Exception as err:
            if getattr(err, "type", "") == "KubernetesNotFound":
                return None
            raise

    def deployment(self, name: str) -> dict[str, Any]:
        found = self.get("apps/v1", "Deployment", name)
        assert found is not None, f"deployment {name} is gone"
        return found


@contextmanager
def emulated(tmp: Path) -> Iterator[KubeTarget]:
    """A target on a fresh emulator: namespace `shop` allowed, one node `node-1`."""
    with running_emulator() as (emulator, url):
        target = KubeTarget(write_kubeconfig(tmp / "kubeconfig", url), "shop", tmp / "state", emulator)
        target.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"}, "spec": {}})
        yield target


def requests(target: KubeTarget, method: str, path: str = "") -> list[Any]:
    """The HTTP requests the emulator received (kmock records them all), by method and path."""
    assert target.emulator is not None
    return [r for r in target.emulator if r.method.value == method and path in r.url.path]


def evictions(target: KubeTarget) -> list[str]:
    """The pods evicted for real (dry-run evictions carry dryRun in their body), by name."""
    posts = requests(target, "POST", "/eviction")
    return sorted(r.url.path.split("/")[-2] for r in posts if "dryRun" not in r.text)
