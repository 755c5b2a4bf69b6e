"""API server defaulting for the fields clients omit, so stored templates compare like a real cluster's.

Without it a template sent back by `kubectl rollout undo` (which Go serialises with `resources: {}`)
would hash differently from the stored one and the controller would start a new revision.
"""

from __future__ import annotations

from typing import Any

_CONTAINER = {
    "resources": {},
    "terminationMessagePath": "/dev/termination-log",
    "terminationMessagePolicy": "File",
}
_POD_SPEC = {
    "restartPolicy": "Always",
    "dnsPolicy": "ClusterFirst",
    "schedulerName": "default-scheduler",
    "securityContext": {},
    "terminationGracePeriodSeconds": 30,
}
_WORKLOADS = {"Deployment", "ReplicaSet", "DaemonSet", "StatefulSet"}


def _pod_spec(spec: dict[str, Any]) -> None:
    for key, value in _POD_SPEC.items():
        spec.setdefault(key, value)
    for container in spec.get("containers", []) + spec.get("initContainers", []):
        for key, value in _CONTAINER.items():
            container.setdefault(key, value)
        image = container.get("image", "")
        latest = ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")
        container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")


def _omit_empty(meta: dict[str, Any]) -> None:
    """Go's `omitempty`: an emptied label or annotation map is not there any more."""
    for key in ("labels", "annotations"):
        if key in meta and not meta[key]:
            del meta[key]


def apply_defaults(kind: str, obj: dict[str, Any]) -> None:
    _omit_empty(obj.get("metadata") or {})
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    if kind == "Pod":
        _pod_spec(spec)
    elif kind in _WORKLOADS and isinstance(spec.get("template"), dict):
        meta = spec["template"].setdefault("metadata", {})
        if meta.get("creationTimestamp") is None:
            meta.pop("creationTimestamp", None)
        _omit_empty(meta)
        _pod_spec(spec["template"].setdefault("spec", {}))
    if kind == "Deployment":
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        rolling = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
        spec.setdefault("strategy", rolling)
