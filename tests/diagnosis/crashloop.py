"""A pod that crash-loops on a missing setting, on the Kubernetes emulator, and the alert about it.

Used by the evidence tests and by the LLM incident's integration test: what a KubePodCrashLooping
page from kube-state-metrics finds in the cluster.
"""

from __future__ import annotations

from typing import Any

from tests.k8s_emulator.harness import KubeTarget, deployment
from workflows.alerts import Alert, label_fingerprint

POD = "checkout-7d9f8b6c5-x2k4q"
BLOB = '{"level":"debug","payload":"' + "a" * 3000 + '"}'  # one huge line: must never reach anyone raw
CRASHED_RUN = [
    "2026-03-02T10:00:01Z INFO starting checkout v1.43.0 on port 8080",
    BLOB,
    "2026-03-02T10:00:02Z ERROR config: required environment variable PAYMENT_API_URL is not set",
    "2026-03-02T10:00:02Z FATAL exiting with status 1",
]


def crashlooping_alert(**extra: str) -> Alert:
    labels = {
        "alertname": "KubePodCrashLooping",
        "severity": "critical",
        "namespace": "shop",
        "pod": POD,
        "container": "checkout",
        "job": "kube-state-metrics",
        **extra,
    }
    return Alert(fingerprint=label_fingerprint(labels), labels=labels)


def crashlooping_pod(kube: KubeTarget) -> None:
    """A Deployment whose pod crash-loops on a missing setting, and a neighbour's noise in the namespace."""
    kube.create(deployment("checkout", image="registry.example.com/shop/checkout:1.43.0"))
    [replicaset] = kube.admin.call(
        "replicasets", kube.admin.apps.list_namespaced_replica_set, "shop", label_selector="app=checkout"
    )["items"]
    owner = {k: replicaset["metadata"][k] for k in ("name", "uid")}
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": POD,
                "labels": {"app": "checkout"},
                "ownerReferences": [
                    {"apiVersion": "apps/v1", "kind": "ReplicaSet", "controller": True, **owner}
                ],
            },
            "spec": {"nodeName": "node-1", "containers": [{"name": "checkout", "image": "checkout:1.43.0"}]},
        }
    )
    status: dict[str, Any] = {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "False"}],
        "containerStatuses": [
            {
                "name": "checkout",
                "ready": False,
                "restartCount": 6,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {
                    "terminated": {
                        "reason": "Error",
                        "exitCode": 1,
                        "startedAt": "2026-03-02T10:00:01Z",
                        "finishedAt": "2026-03-02T10:00:02Z",
                    }
                },
            }
        ],
    }
    merge = {"_content_type": "application/merge-patch+json"}
    kube.admin.call(
        "pod status", kube.admin.core.patch_namespaced_pod_status, POD, "shop", {"status": status}, **merge
    )
    node = {
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}, {"type": "DiskPressure", "status": "False"}]
        }
    }
    kube.admin.call("node status", kube.admin.core.patch_node_status, "node-1", node, **merge)
    for name, obj, reason, message in (
        ("backoff", f"{POD}", "BackOff", f"Back-off restarting failed container checkout in pod {POD}"),
        ("noise", "payments-5c4d-abcde", "OOMKilling", "Memory cgroup out of memory: Killed process 4242"),
    ):
        kube.create(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": f"{obj}.{name}"},
                "involvedObject": {"kind": "Pod", "name": obj, "namespace": "shop"},
                "reason": reason,
                "message": message,
                "type": "Warning",
                "count": 5,
                "firstTimestamp": "2026-03-02T10:00:03Z",
                "lastTimestamp": "2026-03-02T10:04:00Z",
            }
        )
    assert kube.emulator is not None
    kube.emulator.logs[("shop", POD, "checkout", True)] = CRASHED_RUN
    kube.emulator.logs[("shop", POD, "checkout", False)] = [
        "2026-03-02T10:05:00Z INFO starting checkout v1.43.0"
    ]
