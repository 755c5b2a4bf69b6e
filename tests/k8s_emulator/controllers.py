"""The bits of kube-controller-manager our executor depends on.

The deployment controller keeps one ReplicaSet per pod template (named by the template's hash,
annotated with `deployment.kubernetes.io/revision`), which is what `kubectl rollout undo` and
`rollout history` read, and it reports rollout progress in the status, which `rollout status` waits on.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from typing import Any

from tests.k8s_emulator.resources import BY_PATH
from tests.k8s_emulator.selectors import match_labels
from tests.k8s_emulator.store import Store, StoreError

DEPLOYMENTS = BY_PATH[("apps", "v1", "deployments")]
REPLICASETS = BY_PATH[("apps", "v1", "replicasets")]
PODS = BY_PATH[("", "v1", "pods")]
PDBS = BY_PATH[("policy", "v1", "poddisruptionbudgets")]

REVISION = "deployment.kubernetes.io/revision"
HASH_LABEL = "pod-template-hash"
# Annotations the controller does not copy from a Deployment to its ReplicaSets (as upstream).
_NOT_COPIED = {
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
}
Schedule = Callable[[float, Callable[[], None]], None]


def template_hash(template: dict[str, Any]) -> str:
    labels = {k: v for k, v in (template.get("metadata", {}).get("labels") or {}).items() if k != HASH_LABEL}
    canonical = {**template, "metadata": {**template.get("metadata", {}), "labels": labels}}
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()[:10]


def _revision(obj: dict[str, Any]) -> int:
    return int((obj["metadata"].get("annotations") or {}).get(REVISION, "0"))


class DeploymentController:
    def __init__(self, store: Store, schedule: Schedule) -> None:
        self.store = store
        self.schedule = schedule
        self.rollout_seconds = 0.0  # how long a rollout takes before the status reports it complete

    def owned(self, deployment: dict[str, Any]) -> list[dict[str, Any]]:
        uid = deployment["metadata"]["uid"]
        return [
            rs
            for rs in self.store.select(REPLICASETS, deployment["metadata"]["namespace"])
            if any(
                ref.get("uid") == uid and ref.get("controller")
                for ref in rs["metadata"].get("ownerReferences", [])
            )
        ]

    def sync(self, deployment: dict[str, Any]) -> None:
        if deployment.get("spec", {}).get("paused"):
            return
        ns, name = deployment["metadata"]["namespace"], deployment["metadata"]["name"]
        template = deployment["spec"]["template"]
        digest = template_hash(template)
        owned = self.owned(deployment)
        top = max((_revision(rs) for rs in owned), default=0)
        current = next(
            (rs for rs in owned if rs["spec"]["template"]["metadata"]["labels"].get(HASH_LABEL) == digest),
            None,
        )
        annotations = {
            k: v for k, v in (deployment["metadata"].get("annotations") or {}).items() if k not in _NOT_COPIED
        }
        replicas = deployment["spec"].get("replicas", 1)
        if current is None:
            current = self._new_replicaset(deployment, digest, top + 1, annotations)
        else:
            rev = _revision(current) if _revision(current) == top else top + 1
            meta = current["metadata"]
            meta["annotations"] = {**(meta.get("annotations") or {}), **annotations, REVISION: str(rev)}
            current["spec"]["replicas"] = replicas
            current = self.store.replace(REPLICASETS, ns, meta["name"], current)
        for rs in owned:
            if rs["metadata"]["name"] != current["metadata"]["name"] and rs["spec"].get("replicas"):
                rs["spec"]["replicas"] = 0
                self.store.replace(REPLICASETS, ns, rs["metadata"]["name"], rs)
        deployment["metadata"].setdefault("annotations", {})[REVISION] = current["metadata"]["annotations"][
            REVISION
        ]
        deployment = self.store.replace(DEPLOYMENTS, ns, name, deployment)
        self._report(deployment, done=self.rollout_seconds <= 0)
        if self.rollout_seconds > 0:
            generation = deployment["metadata"]["generation"]
            self.schedule(self.rollout_seconds, lambda: self._finish(ns, name, generation))

    def _new_replicaset(
        self, deployment: dict[str, Any], digest: str, revision: int, annotations: dict[str, str]
    ) -> dict[str, Any]:
        meta = deployment["metadata"]
        template = copy.deepcopy(deployment["spec"]["template"])
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = digest
        selector = copy.deepcopy(deployment["spec"]["selector"])
        selector.setdefault("matchLabels", {})[HASH_LABEL] = digest
        rs = {
            "metadata": {
                "name": f"{meta['name']}-{digest}",
                "labels": dict(template["metadata"]["labels"]),
                "annotations": {**annotations, REVISION: str(revision)},
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": {
                "replicas": deployment["spec"].get("replicas", 1),
                "selector": selector,
                "template": template,
            },
        }
        return self.store.create(REPLICASETS, meta["namespace"], rs)

    def _report(self, deployment: dict[str, Any], done: bool) -> None:
        replicas = deployment["spec"].get("replicas", 1)
        old = deployment.get("status", {}).get("availableReplicas", 0)
        status = {
            "observedGeneration": deployment["metadata"]["generation"],
            "replicas": replicas,
            "updatedReplicas": replicas if done else 0,
            "readyReplicas": replicas if done else old,
            "availableReplicas": replicas if done else old,
            "conditions": [
                {
                    "type": "Available",
                    "status": "True" if done or old else "False",
                    "reason": "MinimumReplicasAvailable",
                },
                {
                    "type": "Progressing",
                    "status": "True",
                    "reason": "NewReplicaSetAvailable" if done else "ReplicaSetUpdated",
                },
            ],
        }
        if done:
            status["unavailableReplicas"] = 0
        deployment = {**deployment, "status": status}
        meta = deployment["metadata"]
        self.store.replace(DEPLOYMENTS, meta["namespace"], meta["name"], deployment, status=True)

    def _finish(self, ns: str, name: str, generation: int) -> None:
        deployment = self.store.get(DEPLOYMENTS, ns, name)
        if deployment and deployment["metadata"]["generation"] == generation:
            self._report(deployment, done=True)


def evict(store: Store, ns: str, name: str, dry_run: bool) -> None:
    """The eviction subresource: refused (429) when a PodDisruptionBudget would be violated."""
    pod = store.require(PODS, ns, name)
    labels = pod["metadata"].get("labels") or {}
    for pdb in store.select(PDBS, ns):
        if not match_labels(pdb["spec"].get("selector") or {}, labels):
            continue
        healthy = [
            p
            for p in store.select(PODS, ns)
            if match_labels(pdb["spec"]["selector"], p["metadata"].get("labels") or {})
        ]
        if len(healthy) - 1 < int(pdb["spec"].get("minAvailable", 0)):
            raise StoreError(
                429,
                "TooManyRequests",
                "Cannot evict pod as it would violate the pod's disruption budget.",
            )
    store.delete(PODS, ns, name, dry_run=dry_run)
