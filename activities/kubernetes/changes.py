"""Changes made with one patch through the client: scale, rollout restart, set resources, cordon, uncordon.

Apply sends ONE strategic-merge patch that carries the change, the idempotency key
(`remediator.io/applied`), what the rollback restores (`remediator.io/previous`, JSON) and the
resourceVersion it was computed from: the change and its marker land together or not at all, and a
concurrent writer makes it fail with a retryable 409 instead of being overwritten. A retried apply
finds the key and does nothing. Rollback is one JSON patch that first `test`s the key, restores the
recorded values and removes both annotations, so it too happens at most once.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from datetime import UTC, datetime
from typing import Any

from activities.errors import PermanentError
from activities.kubernetes.cluster import APPLIED, PREVIOUS, KubeCluster, diff_text
from workflows.actions import KubernetesAction, NodeArgs, ResourcesArgs, ScaleArgs
from workflows.error_types import ErrorType
from workflows.plans import ActionOutcome

STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
# What `kubectl rollout restart` sets, so that a restart of ours reads the same as one by hand.
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
MIRROR = "kubernetes.io/config.mirror"


def pointer(*parts: str | int) -> str:
    """A JSON pointer; `/` and `~` in annotation keys are escaped as RFC 6901 says."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def marker(obj: dict[str, Any]) -> str:
    return str((obj["metadata"].get("annotations") or {}).get(APPLIED, ""))


def snapshot_of(obj: dict[str, Any] | None) -> dict[str, Any]:
    """The object before the change, resourceVersion included (managedFields are only noise)."""
    if obj is None:
        return {"absent": True}
    meta = {k: v for k, v in obj["metadata"].items() if k != "managedFields"}
    return {"object": {**obj, "metadata": meta}, "resourceVersion": meta.get("resourceVersion", "")}


def already_applied(what: str, key: str) -> ActionOutcome:
    return ActionOutcome(
        ok=True,
        changed=True,
        summary=f"{what}: already applied by an earlier attempt ({key})",
        details={"key": key, "earlier_attempt": True},
    )


def not_applied(what: str) -> ActionOutcome:
    return ActionOutcome(
        ok=True,
        summary=f"{what}: nothing to roll back (this step's change is not on it: never applied, or undone)",
    )


class MarkedPatch(ABC):
    """One object, changed by a marked strategic-merge patch and restored by a guarded JSON patch."""

    what: str
    cluster: KubeCluster

    @abstractmethod
    def read(self) -> dict[str, Any]: ...

    @abstractmethod
    def patch(self, body: Any, content_type: str, dry_run: bool = False) -> dict[str, Any]: ...

    @abstractmethod
    def change(self, live: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """The patch that makes the change, and the values its rollback restores."""

    @abstractmethod
    def restore(self, live: dict[str, Any], previous: dict[str, Any]) -> list[dict[str, Any]]:
        """JSON patch operations that put `previous` back."""

    @abstractmethod
    def describe(self, live: dict[str, Any]) -> str:
        """The change in words, e.g. `scale deployment shop/web from 2 to 5 replicas`."""

    def settle(self) -> str:
        """Wait for what the change set in motion (a rollout); returns a note for the summary."""
        return ""

    def preview(self) -> ActionOutcome:
        live = self.read()
        body, _ = self.change(live)
        after = self.patch(body, STRATEGIC, dry_run=True)
        diff = diff_text(live, after, self.what)
        return ActionOutcome(ok=True, changed=bool(diff), summary=f"would {self.describe(live)}", diff=diff)

    def snapshot(self) -> dict[str, Any]:
        return snapshot_of(self.read())

    def apply(self, key: str) -> ActionOutcome:
        live = self.read()
        if marker(live) == key:  # an earlier attempt made the change; it may have died waiting for it
            done = already_applied(self.what, key)
            return done.model_copy(update={"summary": done.summary + self.settle()})
        body, previous = self.change(live)
        annotations = {APPLIED: key, PREVIOUS: json.dumps(previous, separators=(",", ":"))}
        meta = {"resourceVersion": live["metadata"]["resourceVersion"], "annotations": annotations}
        after = self.patch({**body, "metadata": meta}, STRATEGIC)
        summary = self.describe(live) + self.settle()
        return ActionOutcome(
            ok=True,
            changed=True,
            summary=summary,
            diff=diff_text(live, after, self.what),
            details={"key": key, "resourceVersion": after["metadata"]["resourceVersion"]},
        )

    def rollback(self, key: str) -> ActionOutcome:
        live = self.read()
        if marker(live) != key:
            return not_applied(self.what)
        previous = json.loads(live["metadata"]["annotations"][PREVIOUS])
        operations = [
            {"op": "test", "path": pointer("metadata", "annotations", APPLIED), "value": key},
            *self.restore(live, previous),
            {"op": "remove", "path": pointer("metadata", "annotations", APPLIED)},
            {"op": "remove", "path": pointer("metadata", "annotations", PREVIOUS)},
        ]
        after = self.patch(operations, JSON_PATCH)
        return ActionOutcome(
            ok=True,
            changed=True,
            summary=f"restored {self.what} as it was before this step ({json.dumps(previous)})"
            + self.settle(),
            diff=diff_text(live, after, self.what),
        )


class DeploymentTarget:
    """A Deployment to read, patch, and wait for (`wait_seconds` of the action)."""

    def __init__(self, cluster: KubeCluster, action: KubernetesAction, deployment: str) -> None:
        self.cluster, self.wait_seconds = cluster, action.wait_seconds
        self.name, self.namespace = deployment, action.namespace
        self.what = f"deployment {self.namespace}/{deployment}"

    def read(self) -> dict[str, Any]:
        return dict(
            self.cluster.call(
                self.what, self.cluster.apps.read_namespaced_deployment, self.name, self.namespace
            )
        )

    def patch(self, body: Any, content_type: str, dry_run: bool = False) -> dict[str, Any]:
        return dict(
            self.cluster.call(
                self.what,
                self.cluster.apps.patch_namespaced_deployment,
                self.name,
                self.namespace,
                body,
                dry_run="All" if dry_run else None,
                field_manager=self.cluster.field_manager,
                _content_type=content_type,
            )
        )

    def settle(self) -> str:
        if not self.wait_seconds:
            return ""
        out = self.cluster.kubectl(
            f"waiting for the rollout of {self.what}",
            [
                "rollout",
                "status",
                f"deployment/{self.name}",
                "-n",
                self.namespace,
                f"--timeout={self.wait_seconds}s",
            ],
        )
        return f"; {out.strip().splitlines()[-1]}" if out.strip() else ""


class DeploymentChange(DeploymentTarget, MarkedPatch):
    """A marked patch of a Deployment; apply and rollback wait for the rollout when asked to."""


class Scale(DeploymentChange):
    def __init__(self, cluster: KubeCluster, action: KubernetesAction, args: ScaleArgs) -> None:
        super().__init__(cluster, action, args.deployment)
        self.args = args

    def change(self, live: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        return {"spec": {"replicas": self.args.replicas}}, {"replicas": live["spec"].get("replicas", 1)}

    def restore(self, live: dict[str, Any], previous: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"op": "replace", "path": "/spec/replicas", "value": previous["replicas"]}]

    def describe(self, live: dict[str, Any]) -> str:
        return f"scale {self.what} from {live['spec'].get('replicas', 1)} to {self.args.replicas} replicas"


class Restart(DeploymentChange):
    def change(self, live: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        old = (live["spec"]["template"].get("metadata", {}).get("annotations") or {}).get(RESTARTED_AT)
        body = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}}
        return body, {"restartedAt": old}

    def restore(self, live: dict[str, Any], previous: dict[str, Any]) -> list[dict[str, Any]]:
        path = pointer("spec", "template", "metadata", "annotations", RESTARTED_AT)
        if previous["restartedAt"] is None:
            return [{"op": "remove", "path": path}]
        return [{"op": "replace", "path": path, "value": previous["restartedAt"]}]

    def describe(self, live: dict[str, Any]) -> str:
        return f"restart the pods of {self.what} (rolling, as `kubectl rollout restart`)"


class Resources(DeploymentChange):
    def __init__(self, cluster: KubeCluster, action: KubernetesAction, args: ResourcesArgs) -> None:
        super().__init__(cluster, action, args.deployment)
        self.args = args
        self.wanted = {k: v for k, v in (("requests", args.requests), ("limits", args.limits)) if v}

    def _container(self, live: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        containers = live["spec"]["template"]["spec"]["containers"]
        for index, container in enumerate(containers):
            if container["name"] == self.args.container:
                return index, container
        names = ", ".join(c["name"] for c in containers)
        raise PermanentError(
            f"{self.what} has no container {self.args.container!r} (it has {names})",
            type=ErrorType.BAD_ARGUMENTS,
        )

    def change(self, live: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        _, container = self._container(live)
        body = {
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": self.args.container, "resources": self.wanted}]}
                }
            }
        }
        return body, {"container": self.args.container, "resources": container.get("resources") or {}}

    def restore(self, live: dict[str, Any], previous: dict[str, Any]) -> list[dict[str, Any]]:
        index, _ = self._container(live)
        base = ("spec", "template", "spec", "containers", index)
        return [
            {"op": "test", "path": pointer(*base, "name"), "value": previous["container"]},
            {"op": "add", "path": pointer(*base, "resources"), "value": previous["resources"]},
        ]

    def describe(self, live: dict[str, Any]) -> str:
        _, container = self._container(live)
        was = json.dumps(container.get("resources") or {})
        return f"set resources of {self.what} container {self.args.container} to {json.dumps(self.wanted)} (was {was})"


class Schedulable(MarkedPatch):
    """cordon (unschedulable) or uncordon, as kubectl does it: spec.unschedulable."""

    def __init__(self, cluster: KubeCluster, args: NodeArgs, unschedulable: bool) -> None:
        self.cluster, self.node, self.unschedulable = cluster, args.node, unschedulable
        self.what = f"node {self.node}"

    def read(self) -> dict[str, Any]:
        return dict(self.cluster.call(self.what, self.cluster.core.read_node, self.node))

    def patch(self, body: Any, content_type: str, dry_run: bool = False) -> dict[str, Any]:
        return dict(
            self.cluster.call(
                self.what,
                self.cluster.core.patch_node,
                self.node,
                body,
                dry_run="All" if dry_run else None,
                field_manager=self.cluster.field_manager,
                _content_type=content_type,
            )
        )

    def change(self, live: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        return {"spec": {"unschedulable": self.unschedulable or None}}, restorable_schedulability(live)

    def restore(self, live: dict[str, Any], previous: dict[str, Any]) -> list[dict[str, Any]]:
        return restore_schedulability(live, previous)

    def describe(self, live: dict[str, Any]) -> str:
        return f"{'cordon' if self.unschedulable else 'uncordon'} {self.what}"


def node_workloads(cluster: KubeCluster, node: str) -> list[dict[str, Any]]:
    """The pods a node action reaches (DaemonSet and mirror pods aside), once the allow-list took them.

    A node has no namespace, so the namespace allow-list bounds a node action by what runs there:
    cordon, uncordon and drain act on a node only while every pod on it is in an allowed namespace
    (REMEDIATOR_KUBE_NAMESPACES). DaemonSet and mirror pods run on every node and belong to the
    cluster, not to a tenant, so they do not count; with no namespace allowed, no node is.
    """
    what = f"node {node}"
    if not cluster.allows_any:
        raise PermanentError(
            f"{what}: REMEDIATOR_KUBE_NAMESPACES allows no namespace, so no node",
            type=ErrorType.NAMESPACE_NOT_ALLOWED,
        )
    listing = cluster.call(
        f"pods on {what}", cluster.core.list_pod_for_all_namespaces, field_selector=f"spec.nodeName={node}"
    )
    pods = [
        pod
        for pod in listing.get("items") or []
        if MIRROR not in (pod["metadata"].get("annotations") or {})
        and not any(o.get("kind") == "DaemonSet" for o in pod["metadata"].get("ownerReferences") or [])
    ]
    for namespace in sorted({pod["metadata"]["namespace"] for pod in pods}):
        cluster.allow(namespace)
    return pods


def restorable_schedulability(node: dict[str, Any]) -> dict[str, Any]:
    return {"unschedulable": bool(node.get("spec", {}).get("unschedulable"))}


def restore_schedulability(live: dict[str, Any], previous: dict[str, Any]) -> list[dict[str, Any]]:
    if previous["unschedulable"]:
        return [{"op": "add", "path": "/spec/unschedulable", "value": True}]
    return (
        [{"op": "remove", "path": "/spec/unschedulable"}] if "unschedulable" in live.get("spec", {}) else []
    )
