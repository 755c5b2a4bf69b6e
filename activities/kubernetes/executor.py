"""Kubernetes executor: `kubernetes.preview|snapshot|apply|rollback` for a KubernetesAction.

preview  a server-side dry run (`dryRun=All`, `kubectl diff --server-side`, `--dry-run=server`),
         shown as a unified diff of the object before and after
snapshot the object before the change, with its resourceVersion
apply    the change, marked with the idempotency key so a retried apply does nothing twice
rollback what the change's own record says to restore (kubernetes_changes, kubernetes_kubectl)

The key is the request's idempotency key plus the workflow run id: an incident id comes back when
the same alert fires again later, and that later incident's change must not look applied already.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Protocol

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.errors import PermanentError
from activities.kubernetes.changes import (
    Resources,
    Restart,
    Scale,
    Schedulable,
    node_workloads,
    snapshot_of,
)
from activities.kubernetes.cluster import KubeCluster, diff_text
from activities.kubernetes.kubectl import Drain, Manifest, Undo
from workflows.actions import (
    ApplyArgs,
    DrainArgs,
    KubernetesAction,
    NodeArgs,
    PodArgs,
    ResourcesArgs,
    RestartArgs,
    ScaleArgs,
    UndoArgs,
)
from workflows.activity_names import (
    KUBERNETES_APPLY,
    KUBERNETES_PREVIEW,
    KUBERNETES_ROLLBACK,
    KUBERNETES_SNAPSHOT,
)
from workflows.error_types import ErrorType
from workflows.plans import ActionOutcome, ActionRequest

# creationTimestamp has whole seconds and comes from another clock than Temporal's scheduled time.
# A pod that old when the step was first scheduled is the replacement: the pod to delete had been
# failing long enough for an alert, a diagnosis and an approval.
CLOCK_SLACK = timedelta(seconds=5)


class Operation(Protocol):
    what: str

    def preview(self) -> ActionOutcome: ...

    def snapshot(self) -> dict[str, Any]: ...

    def apply(self, key: str) -> ActionOutcome: ...

    def rollback(self, key: str) -> ActionOutcome: ...


class DeletePod:
    """Delete one pod (its controller, if any, starts a new one); nothing to restore afterwards.

    The delete carries the uid of the pod just read as a precondition. A retry that finds the name
    taken by a pod created after this activity was first scheduled knows that pod is the replacement
    (a StatefulSet's keeps the name): the delete already happened, and the new pod is left alone.
    """

    def __init__(self, cluster: KubeCluster, namespace: str, args: PodArgs) -> None:
        self.cluster, self.namespace, self.name = cluster, namespace, args.pod
        self.what = f"pod {namespace}/{args.pod}"

    def _read(self) -> dict[str, Any]:
        return dict(
            self.cluster.call(self.what, self.cluster.core.read_namespaced_pod, self.name, self.namespace)
        )

    def _delete(self, pod: dict[str, Any], dry_run: bool) -> None:
        self.cluster.call(
            self.what,
            self.cluster.core.delete_namespaced_pod,
            self.name,
            self.namespace,
            body={"preconditions": {"uid": pod["metadata"]["uid"]}},
            dry_run="All" if dry_run else None,
        )

    def _shown(self, pod: dict[str, Any]) -> dict[str, Any]:
        """What a reviewer needs to see go: where it runs, what owns it, what it runs."""
        spec = pod.get("spec") or {}
        containers = [{"name": c["name"], "image": c.get("image", "")} for c in spec.get("containers") or []]
        meta = {
            k: pod["metadata"][k] for k in ("name", "namespace", "ownerReferences") if k in pod["metadata"]
        }
        node = {"nodeName": spec["nodeName"]} if spec.get("nodeName") else {}
        return {"metadata": meta, "spec": {**node, "containers": containers}}

    def preview(self) -> ActionOutcome:
        pod = self._read()
        self._delete(pod, dry_run=True)
        owners = pod["metadata"].get("ownerReferences") or []
        fate = f"{owners[0]['kind']}/{owners[0]['name']} replaces it" if owners else "nothing recreates it"
        return ActionOutcome(
            ok=True,
            changed=True,
            summary=f"would delete {self.what} ({fate})",
            diff=diff_text(self._shown(pod), None, self.what),
        )

    def snapshot(self) -> dict[str, Any]:
        return snapshot_of(self._read())

    def apply(self, key: str) -> ActionOutcome:
        info = activity.info()
        try:
            pod = self._read()
        except ApplicationError as err:
            if info.attempt > 1 and err.type == ErrorType.KUBERNETES_NOT_FOUND:
                return ActionOutcome(
                    ok=True, changed=True, summary=f"{self.what} is gone (deleted by an earlier attempt)"
                )
            raise
        created = datetime.fromisoformat(pod["metadata"]["creationTimestamp"])
        if info.attempt > 1 and created >= info.scheduled_time - CLOCK_SLACK:
            summary = f"{self.what} was already deleted by an earlier attempt; this one is its replacement"
            return ActionOutcome(ok=True, changed=True, summary=summary)
        self._delete(pod, dry_run=False)
        return ActionOutcome(
            ok=True,
            changed=True,
            summary=f"deleted {self.what} (uid {pod['metadata']['uid']})",
            diff=diff_text(self._shown(pod), None, self.what),
            details={"key": key, "uid": pod["metadata"]["uid"]},
        )

    def rollback(self, key: str) -> ActionOutcome:
        return ActionOutcome(
            ok=True,
            summary=f"{self.what}: a deleted pod cannot be restored; its controller, if any, replaced it",
        )


def operation(cluster: KubeCluster, action: KubernetesAction, undo: bool = False) -> Operation:
    """The operation object for an action, after the namespace allow-list has accepted it.

    A node action is accepted while every pod on the node is in an allowed namespace
    (`node_workloads`); undoing our own cordon is not held to that, so a compensation always runs.
    """
    if action.namespace:
        cluster.allow(action.namespace)
    args = action.args
    match action.operation, args:
        case "scale", ScaleArgs():
            return Scale(cluster, action, args)
        case "rollout_restart", RestartArgs():
            return Restart(cluster, action, args.deployment)
        case "rollout_undo", UndoArgs():
            return Undo(cluster, action, args)
        case "set_resources", ResourcesArgs():
            return Resources(cluster, action, args)
        case "delete_pod", PodArgs():
            return DeletePod(cluster, action.namespace, args)
        case "cordon" | "uncordon", NodeArgs():
            if not undo:
                node_workloads(cluster, args.node)
            return Schedulable(cluster, args, unschedulable=action.operation == "cordon")
        case "drain", DrainArgs():
            return Drain(cluster, args)
        case "apply", ApplyArgs():
            return Manifest(cluster, action, args)
    raise PermanentError(
        f"{action.operation} does not take {type(args).__name__}", type=ErrorType.BAD_ARGUMENTS
    )


class KubernetesExecutor:
    def __init__(self, cluster: KubeCluster) -> None:
        self._cluster = cluster

    def _operation(self, request: ActionRequest, undo: bool = False) -> Operation:
        if not isinstance(request.action, KubernetesAction):
            raise PermanentError(
                f"not a Kubernetes action: {request.action.executor}", type=ErrorType.BAD_ACTION
            )
        return operation(self._cluster, request.action, undo)

    @staticmethod
    def _key(request: ActionRequest) -> str:
        return f"{request.idempotency_key}@{activity.info().workflow_run_id}"

    @activity.defn(name=KUBERNETES_PREVIEW, no_thread_cancel_exception=True)
    def preview(self, request: ActionRequest) -> ActionOutcome:
        return self._operation(request).preview()

    @activity.defn(name=KUBERNETES_SNAPSHOT, no_thread_cancel_exception=True)
    def snapshot(self, request: ActionRequest) -> dict[str, Any]:
        return self._operation(request).snapshot()

    @activity.defn(name=KUBERNETES_APPLY, no_thread_cancel_exception=True)
    def apply(self, request: ActionRequest) -> ActionOutcome:
        return self._operation(request).apply(self._key(request))

    @activity.defn(name=KUBERNETES_ROLLBACK, no_thread_cancel_exception=True)
    def rollback(self, request: ActionRequest) -> ActionOutcome:
        return self._operation(request, undo=True).rollback(self._key(request))
