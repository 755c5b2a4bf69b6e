"""Changes where kubectl owns the logic: rollout undo, drain, and server-side apply of a manifest.

Each still marks its object with the idempotency key in the same request that changes it:
  * undo: kubectl copies the target ReplicaSet's annotations into the Deployment with the template
    (one JSON patch), so the key and what the rollback returns to are put on that ReplicaSet first;
  * drain: the cordon is our own marked patch; the evictions that follow are convergent (a pod
    already evicted is not on the node any more), so a retry re-runs `kubectl drain` to finish;
  * apply: the annotations ride in the applied manifest, with the live resourceVersion as precondition.
A kubectl left running by a worker that was killed only repeats what the retry does: the same undo
to the same revision, the same evictions, the same apply.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from temporalio.exceptions import ApplicationError

from activities.errors import PermanentError
from activities.kubernetes.changes import (
    DeploymentTarget,
    Schedulable,
    already_applied,
    marker,
    node_workloads,
    not_applied,
    snapshot_of,
)
from activities.kubernetes.cluster import (
    APPLIED,
    PREVIOUS,
    REVISION,
    KubeCluster,
    api_errors,
    diff_text,
    owned_replicasets,
    strip_server_fields,
)
from workflows.actions import ApplyArgs, DrainArgs, KubernetesAction, NodeArgs, UndoArgs
from workflows.error_types import ErrorType
from workflows.plans import ActionOutcome

HASH_LABEL = "pod-template-hash"


def _revision(obj: dict[str, Any]) -> int:
    return int((obj["metadata"].get("annotations") or {}).get(REVISION, 0))


def _template(rs: dict[str, Any]) -> dict[str, Any]:
    """A ReplicaSet's pod template as the Deployment would carry it (without the hash label)."""
    template = copy.deepcopy(rs["spec"]["template"])
    template.get("metadata", {}).get("labels", {}).pop(HASH_LABEL, None)
    return template


class Undo(DeploymentTarget):
    """`kubectl rollout undo` to the previous revision or to `to_revision`."""

    def __init__(self, cluster: KubeCluster, action: KubernetesAction, args: UndoArgs) -> None:
        super().__init__(cluster, action, args.deployment)
        self.args = args

    def _plan(self, key: str = "") -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any]]:
        """The Deployment, its current ReplicaSet and the one to go back to."""
        deployment, owned = owned_replicasets(self.cluster, self.namespace, self.name)
        current_revision = _revision(deployment)
        current = next((rs for rs in owned if _revision(rs) == current_revision), None)
        target = next((rs for rs in owned if key and marker(rs) == key), None)  # chosen by an earlier attempt
        if target is None and self.args.to_revision:
            target = next((rs for rs in owned if _revision(rs) == self.args.to_revision), None)
        elif target is None:
            older = [rs for rs in owned if _revision(rs) < current_revision]
            target = max(older, key=_revision, default=None)
        if target is None:
            known = ", ".join(str(r) for r in sorted(_revision(rs) for rs in owned)) or "none"
            wanted = self.args.to_revision or "before the current one"
            raise PermanentError(
                f"{self.what} has no revision {wanted} to roll back to (revisions: {known})",
                type=ErrorType.NO_SUCH_REVISION,
            )
        return deployment, current, target

    def _undo(self, revision: int, dry_run: bool = False) -> str:
        args = [
            "rollout",
            "undo",
            f"deployment/{self.name}",
            "-n",
            self.namespace,
            f"--to-revision={revision}",
        ]
        out = self.cluster.kubectl(
            f"rollout undo of {self.what}", [*args, "--dry-run=server"] if dry_run else args
        )
        return out.strip()

    def _diff(self, deployment: dict[str, Any], target: dict[str, Any]) -> str:
        meta = {"name": self.name, "namespace": self.namespace}
        before = {"metadata": meta, "spec": {"template": deployment["spec"]["template"]}}
        return diff_text(before, {"metadata": meta, "spec": {"template": _template(target)}}, self.what)

    def preview(self) -> ActionOutcome:
        deployment, _, target = self._plan()
        said = self._undo(_revision(target), dry_run=True)
        summary = f"would roll {self.what} back from revision {_revision(deployment)} to {_revision(target)}: {said}"
        return ActionOutcome(ok=True, changed=True, summary=summary, diff=self._diff(deployment, target))

    def snapshot(self) -> dict[str, Any]:
        deployment, current, _ = self._plan()
        return {
            **snapshot_of(deployment),
            "revision": _revision(deployment),
            "replicaSet": current["metadata"]["name"] if current else "",
        }

    def apply(self, key: str) -> ActionOutcome:
        deployment, current, target = self._plan(key)
        if marker(deployment) == key:  # an earlier attempt made the change; it may have died waiting for it
            done = already_applied(self.what, key)
            return done.model_copy(update={"summary": done.summary + self.settle()})
        if current is not None and current["metadata"]["name"] == target["metadata"]["name"]:
            return ActionOutcome(ok=True, summary=f"{self.what} already runs revision {_revision(target)}")
        previous = {
            "replicaSet": current["metadata"]["name"] if current else "",
            "revision": _revision(deployment),
        }
        record = {APPLIED: key, PREVIOUS: json.dumps(previous, separators=(",", ":"))}
        rs_name = target["metadata"]["name"]
        self.cluster.call(
            f"replicaset {self.namespace}/{rs_name}",
            self.cluster.apps.patch_namespaced_replica_set,
            rs_name,
            self.namespace,
            {"metadata": {"annotations": record}},
            field_manager=self.cluster.field_manager,
            _content_type="application/merge-patch+json",
        )
        said = self._undo(_revision(target))
        after = self.read()
        if marker(after) != key:  # kubectl skipped it: the template already matched that revision
            return ActionOutcome(ok=True, summary=f"{self.what}: {said}")
        return ActionOutcome(
            ok=True,
            changed=True,
            summary=f"{said} (revision {previous['revision']} -> {_revision(target)})" + self.settle(),
            diff=self._diff(deployment, target),
            details={"key": key, "replicaSet": rs_name},
        )

    def rollback(self, key: str) -> ActionOutcome:
        deployment, owned = owned_replicasets(self.cluster, self.namespace, self.name)
        if marker(deployment) != key:
            return not_applied(self.what)
        previous = json.loads(deployment["metadata"]["annotations"][PREVIOUS])
        back = next((rs for rs in owned if rs["metadata"]["name"] == previous["replicaSet"]), None)
        if back is None:
            raise PermanentError(
                f"{self.what}: ReplicaSet {previous['replicaSet']!r} of the revision before this step is gone",
                type=ErrorType.NO_SUCH_REVISION,
            )
        said = self._undo(_revision(back))
        return ActionOutcome(
            ok=True, changed=True, summary=f"{said} (back to {previous['replicaSet']})" + self.settle()
        )


class Drain:
    """Cordon the node (a marked patch of ours), then `kubectl drain` evicts its pods."""

    def __init__(self, cluster: KubeCluster, args: DrainArgs) -> None:
        self.cluster, self.args = cluster, args
        self.cordon = Schedulable(cluster, NodeArgs(node=args.node), unschedulable=True)
        self.what = f"node {args.node}"

    def _evictable(self) -> list[dict[str, Any]]:
        """The pods drain evicts (not DaemonSet pods, not mirror pods); their namespaces must be allowed."""
        return node_workloads(self.cluster, self.args.node)

    def _drain(self, dry_run: bool) -> str:
        args = ["drain", self.args.node, "--ignore-daemonsets", f"--timeout={self.args.timeout_seconds}s"]
        args += ["--delete-emptydir-data"] if self.args.delete_emptydir_data else []
        args += ["--force"] if self.args.force else []
        args += ["--dry-run=server"] if dry_run else []
        return self.cluster.kubectl(f"drain of {self.what}", args).strip()

    def preview(self) -> ActionOutcome:
        pods = self._evictable()
        cordon = self.cordon.preview()
        said = self._drain(dry_run=True)
        names = ", ".join(f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in pods) or "no pods"
        diff = f"{cordon.diff}# kubectl drain --dry-run=server\n{said}\n"
        return ActionOutcome(
            ok=True, changed=True, summary=f"would cordon {self.what} and evict {names}", diff=diff
        )

    def snapshot(self) -> dict[str, Any]:
        pods = [f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in self._evictable()]
        return {**self.cordon.snapshot(), "pods": pods}

    def apply(self, key: str) -> ActionOutcome:
        pods = self._evictable()
        cordoned = self.cordon.apply(key)
        said = self._drain(dry_run=False)
        resumed = " (resumed after an earlier attempt)" if cordoned.details.get("earlier_attempt") else ""
        evicted = sum(line.endswith(" evicted") for line in said.splitlines())
        return ActionOutcome(
            ok=True,
            changed=True,
            summary=f"drained {self.what}{resumed}: {evicted} of {len(pods)} pods evicted now",
            diff=cordoned.diff + said + "\n",
            details={"key": key},
        )

    def rollback(self, key: str) -> ActionOutcome:
        restored = self.cordon.rollback(key)
        note = "; evicted pods are not brought back (their controllers have rescheduled them)"
        return restored.model_copy(update={"summary": restored.summary + note})


class Manifest:
    """Server-side apply of one namespaced object (a cluster-scoped one the allow-list could not bound)."""

    def __init__(self, cluster: KubeCluster, action: KubernetesAction, args: ApplyArgs) -> None:
        from kubernetes.dynamic.exceptions import ResourceNotFoundError  # loaded by cluster.dynamic

        self.cluster = cluster
        manifest = copy.deepcopy(args.manifest)
        meta = manifest["metadata"]
        kind, self.name = f"{manifest['apiVersion']}/{manifest['kind']}", meta["name"]
        self.namespace = action.namespace or meta.get("namespace", "")
        if self.namespace:  # before discovery: a refused namespace costs no call at all
            cluster.allow(self.namespace)
        try:
            with api_errors(f"discovery of {kind}"):
                self.resource = cluster.dynamic.resources.get(
                    api_version=manifest["apiVersion"], kind=manifest["kind"]
                )
        except ResourceNotFoundError as err:
            raise PermanentError(f"the cluster does not serve {kind}", type=ErrorType.UNKNOWN_KIND) from err
        if not self.resource.namespaced:
            raise PermanentError(
                f"{kind} is cluster-scoped; the namespace allow-list cannot bound it",
                type=ErrorType.CLUSTER_SCOPED,
            )
        if not self.namespace:
            raise PermanentError(
                f"applying {kind} {self.name} needs a namespace", type=ErrorType.BAD_ARGUMENTS
            )
        meta["namespace"] = self.namespace
        self.manifest = manifest
        self.what = f"{manifest['kind']} {self.namespace}/{self.name}"

    def _read(self) -> dict[str, Any] | None:
        try:
            with api_errors(self.what):
                found = self.resource.get(
                    name=self.name, namespace=self.namespace, _request_timeout=self.cluster.timeout
                )
        except ApplicationError as err:
            if err.type == ErrorType.KUBERNETES_NOT_FOUND:
                return None
            raise
        return dict(found.to_dict())

    def _kubectl(self, verb: list[str], manifest: dict[str, Any], ok: tuple[int, ...] = (0,)) -> str:
        args = [*verb, "--server-side", f"--field-manager={self.cluster.field_manager}", "-f", "-"]
        return self.cluster.kubectl(f"{verb[0]} of {self.what}", args, stdin=json.dumps(manifest), ok=ok)

    def preview(self) -> ActionOutcome:
        diff = self._kubectl(["diff"], self.manifest, ok=(0, 1))
        verb = "change" if self._read() else "create"
        summary = f"would {verb} {self.what} (server-side apply)" if diff else f"{self.what} already matches"
        return ActionOutcome(ok=True, changed=bool(diff), summary=summary, diff=diff)

    def snapshot(self) -> dict[str, Any]:
        return snapshot_of(self._read())

    def apply(self, key: str) -> ActionOutcome:
        live = self._read()
        if live is not None and marker(live) == key:
            return already_applied(self.what, key)
        previous: dict[str, Any] = {"absent": True}
        manifest = copy.deepcopy(self.manifest)
        meta = manifest["metadata"]
        if live is not None:
            restorable = strip_server_fields(live)
            annotations = restorable["metadata"].get("annotations") or {}
            restorable["metadata"]["annotations"] = {
                k: v for k, v in annotations.items() if k not in (APPLIED, PREVIOUS)
            }
            previous = {"object": restorable}
            meta["resourceVersion"] = live["metadata"]["resourceVersion"]  # precondition: nobody wrote since
        meta["annotations"] = {
            **(meta.get("annotations") or {}),
            APPLIED: key,
            PREVIOUS: json.dumps(previous),
        }
        after = json.loads(self._kubectl(["apply", "-o", "json"], manifest))
        verb = "created" if live is None else "applied"
        return ActionOutcome(
            ok=True,
            changed=True,
            summary=f"{verb} {self.what} (server-side apply as {self.cluster.field_manager})",
            diff=diff_text(live, after, self.what),
            details={"key": key, "resourceVersion": after["metadata"]["resourceVersion"]},
        )

    def rollback(self, key: str) -> ActionOutcome:
        live = self._read()
        if live is None or marker(live) != key:
            return not_applied(self.what)
        previous = json.loads(live["metadata"]["annotations"][PREVIOUS])
        meta = live["metadata"]
        with api_errors(f"rollback of {self.what}"):
            if previous.get("absent"):
                preconditions = {"uid": meta["uid"], "resourceVersion": meta["resourceVersion"]}
                self.resource.delete(
                    name=self.name,
                    namespace=self.namespace,
                    body={"preconditions": preconditions},
                    _request_timeout=self.cluster.timeout,
                )
                return ActionOutcome(
                    ok=True, changed=True, summary=f"deleted {self.what}, which this step created"
                )
            body = copy.deepcopy(previous["object"])
            body["metadata"]["resourceVersion"] = meta["resourceVersion"]
            after = self.resource.replace(
                body=body, namespace=self.namespace, _request_timeout=self.cluster.timeout
            )
        return ActionOutcome(
            ok=True,
            changed=True,
            summary=f"replaced {self.what} with the object it was before this step",
            diff=diff_text(live, dict(after.to_dict()), self.what),
        )
