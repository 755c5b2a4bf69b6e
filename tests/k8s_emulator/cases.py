"""Executor and read-tool cases that hold on any cluster: the emulator and, opt-in, a real one.

Each case creates what it needs in the target's namespace through the API, then checks preview
(a dry run that changes nothing), snapshot, apply (twice: the second finds the key), and rollback
(twice: the second finds nothing to undo) by reading the objects back.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError

from activities.kubernetes.cluster import APPLIED, PREVIOUS, REVISION, owned_replicasets
from tests.k8s_emulator.harness import KubeTarget, deployment, pod
from workflows.kube_reads import DeploymentsQuery, DescribeQuery, EventsQuery, PodsQuery, RolloutHistoryQuery
from workflows.plans import ActionRequest


def annotations_of(obj: dict[str, Any]) -> dict[str, str]:
    return dict(obj["metadata"].get("annotations") or {})


def diff_lines(diff: str, sign: str) -> list[str]:
    """The added (`+`) or removed (`-`) lines of a unified diff, without indentation."""
    return [
        line[1:].strip()
        for line in diff.splitlines()
        if line.startswith(sign) and not line.startswith(sign * 3)
    ]


def essence(obj: dict[str, Any] | None) -> tuple[Any, ...]:
    """What a write of ours would change; a real cluster's status and revision move on by themselves."""
    ours = (
        {k: v for k, v in annotations_of(obj).items() if not k.startswith("deployment.kubernetes.io/")}
        if obj
        else None
    )
    return (obj or {}).get("spec"), (obj or {}).get("data"), ours


def eventually(check: Callable[[], bool], what: str, seconds: float = 20.0) -> None:
    """For real clusters, where controllers take a moment; the emulator's are synchronous."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def roundtrip(t: KubeTarget, request: ActionRequest, read: Callable[[], dict[str, Any] | None]) -> None:
    """snapshot, then apply twice (one effect) and rollback twice (one restore): the key guards both."""
    before = read()
    snapshot = t.run(t.executor.snapshot, request)
    if before is None:
        assert snapshot == {"absent": True}
    else:
        assert snapshot["resourceVersion"] == before["metadata"]["resourceVersion"]
        assert essence(snapshot["object"]) == essence(before)
    applied = t.run(t.executor.apply, request)
    assert applied.ok and applied.changed, applied.summary
    after = read()
    assert after is not None and annotations_of(after)[APPLIED] == t.key(request)
    again = t.run(t.executor.apply, request, attempt=2)
    assert "already applied" in again.summary
    assert essence(read()) == essence(after), "a retried apply must not write again"
    rolled = t.run(t.executor.rollback, request)
    assert rolled.ok and rolled.changed, rolled.summary
    restored = read()
    if restored is not None:
        assert APPLIED not in annotations_of(restored) and PREVIOUS not in annotations_of(restored)
    assert "nothing to roll back" in t.run(t.executor.rollback, request, attempt=2).summary


def case_scale(t: KubeTarget) -> None:
    t.create(deployment("web", replicas=1))
    request = t.request("scale", {"deployment": "web", "replicas": 3})
    preview = t.run(t.executor.preview, request)
    assert diff_lines(preview.diff, "-") == ["replicas: 1"] and diff_lines(preview.diff, "+") == [
        "replicas: 3"
    ]
    assert t.deployment("web")["spec"]["replicas"] == 1, "the preview was a dry run"
    snapshot = t.run(t.executor.snapshot, request)
    assert snapshot["object"]["spec"]["replicas"] == 1
    assert snapshot["resourceVersion"] == t.deployment("web")["metadata"]["resourceVersion"]
    t.run(t.executor.apply, request)
    assert t.deployment("web")["spec"]["replicas"] == 3
    assert json.loads(annotations_of(t.deployment("web"))[PREVIOUS]) == {"replicas": 1}
    t.run(t.executor.rollback, request)
    assert t.deployment("web")["spec"]["replicas"] == 1
    # the same request again, as the next attempt of a fresh workflow run would send it
    t.run_id += "-again"
    roundtrip(t, request, lambda: t.deployment("web"))


def case_restart(t: KubeTarget) -> None:
    t.create(deployment("api"))
    request = t.request("rollout_restart", {"deployment": "api"})
    preview = t.run(t.executor.preview, request)
    assert [line.split(":")[0] for line in diff_lines(preview.diff, "+")] == [
        "annotations",
        "kubectl.kubernetes.io/restartedAt",
    ]
    template = lambda: t.deployment("api")["spec"]["template"]  # noqa: E731
    before = template()
    t.run(t.executor.apply, request)
    assert "kubectl.kubernetes.io/restartedAt" in (template()["metadata"].get("annotations") or {})
    t.run(t.executor.rollback, request)
    assert template() == before
    t.run_id += "-again"
    roundtrip(t, request, lambda: t.deployment("api"))


def case_set_resources(t: KubeTarget) -> None:
    t.create(deployment("worker"))
    request = t.request(
        "set_resources", {"deployment": "worker", "container": "worker", "limits": {"memory": "64Mi"}}
    )
    resources = lambda: t.deployment("worker")["spec"]["template"]["spec"]["containers"][0]["resources"]  # noqa: E731
    before = resources()
    preview = t.run(t.executor.preview, request)
    assert diff_lines(preview.diff, "+") == ["limits:", "memory: 64Mi"], preview.diff
    t.run(t.executor.apply, request)
    assert resources() == {**before, "limits": {"memory": "64Mi"}}, "requests stay, limits are added"
    t.run(t.executor.rollback, request)
    assert resources() == before
    t.run_id += "-again"
    roundtrip(t, request, lambda: t.deployment("worker"))
    wrong = t.request("set_resources", {"deployment": "worker", "container": "nope", "limits": {"cpu": "1"}})
    with pytest.raises(ApplicationError, match="has no container 'nope'") as refused:
        t.run(t.executor.preview, wrong)
    assert refused.value.non_retryable


def case_undo(t: KubeTarget) -> None:
    t.create(deployment("shop", image="registry.k8s.io/pause:3.9"))
    t.admin.call(
        "new image",
        t.admin.apps.patch_namespaced_deployment,
        "shop",
        t.namespace,
        {
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": "shop", "image": "registry.k8s.io/pause:3.10"}]}
                }
            }
        },
        _content_type="application/strategic-merge-patch+json",
    )
    eventually(lambda: len(owned_replicasets(t.admin, t.namespace, "shop")[1]) == 2, "revision 2")
    image = lambda: t.deployment("shop")["spec"]["template"]["spec"]["containers"][0]["image"]  # noqa: E731
    request = t.request("rollout_undo", {"deployment": "shop"})
    preview = t.run(t.executor.preview, request)
    assert diff_lines(preview.diff, "-") == ["- image: registry.k8s.io/pause:3.10"], preview.diff
    assert diff_lines(preview.diff, "+") == ["- image: registry.k8s.io/pause:3.9"]
    assert image() == "registry.k8s.io/pause:3.10", "the preview was a dry run"
    history = t.run(t.reads.rollout_history, RolloutHistoryQuery(namespace=t.namespace, deployment="shop"))
    assert [r.revision for r in history.revisions] == [1, 2] and history.current_revision == 2
    roundtrip(t, request, lambda: t.deployment("shop"))
    assert image() == "registry.k8s.io/pause:3.10", (
        "the rollback went forward to the revision before the undo"
    )
    t.run_id += "-again"
    t.run(t.executor.apply, request)
    assert image() == "registry.k8s.io/pause:3.9"
    eventually(lambda: annotations_of(t.deployment("shop")).get(REVISION) == "5", "revision 5")


def case_apply_manifest(t: KubeTarget) -> None:
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "flags"},
        "data": {"mode": "safe"},
    }
    request = t.request("apply", {"manifest": manifest})
    config_map = lambda: t.get("v1", "ConfigMap", "flags")  # noqa: E731
    preview = t.run(t.executor.preview, request)
    assert "mode: safe" in diff_lines(preview.diff, "+") and config_map() is None, preview.diff
    assert t.run(t.executor.snapshot, request) == {"absent": True}
    roundtrip(t, request, config_map)
    assert config_map() is None, "the rollback deleted what the apply created"
    t.create({**manifest, "data": {"mode": "fast"}})
    t.run_id += "-again"
    preview = t.run(t.executor.preview, request)
    assert "mode: fast" in diff_lines(preview.diff, "-") and "mode: safe" in diff_lines(preview.diff, "+"), (
        preview.diff
    )
    t.run(t.executor.apply, request)
    assert config_map()["data"] == {"mode": "safe"}  # type: ignore[index]
    t.run(t.executor.rollback, request)
    restored = config_map()
    assert restored is not None and restored["data"] == {"mode": "fast"}
    assert APPLIED not in annotations_of(restored)


def case_delete_pod(t: KubeTarget) -> None:
    t.create(pod("lonely"))
    request = t.request("delete_pod", {"pod": "lonely"})
    assert request.action.risk == "destructive"
    preview = t.run(t.executor.preview, request)
    assert "nothing recreates it" in preview.summary and "name: lonely" in diff_lines(preview.diff, "-"), (
        preview.diff
    )
    uid = t.get("v1", "Pod", "lonely")["metadata"]["uid"]  # type: ignore[index]
    assert t.run(t.executor.snapshot, request)["object"]["metadata"]["uid"] == uid
    applied = t.run(t.executor.apply, request)
    assert applied.details["uid"] == uid
    gone = t.get("v1", "Pod", "lonely")
    assert gone is None or gone["metadata"].get("deletionTimestamp"), "deleted or terminating"
    eventually(lambda: t.get("v1", "Pod", "lonely") is None, "the pod to go", seconds=60)
    assert "deleted by an earlier attempt" in t.run(t.executor.apply, request, attempt=2).summary
    with pytest.raises(ApplicationError, match="not found") as missing:
        t.run(t.executor.apply, request)
    assert missing.value.type == "KubernetesNotFound" and missing.value.non_retryable
    assert "cannot be restored" in t.run(t.executor.rollback, request).summary


def case_uncordon(t: KubeTarget, node: str) -> None:
    """Uncordon a cordoned node; the rollback cordons it again."""
    read = lambda: t.get("v1", "Node", node)  # noqa: E731
    t.admin.call(
        "cordon",
        t.admin.core.patch_node,
        node,
        {"spec": {"unschedulable": True}},
        _content_type="application/merge-patch+json",
    )
    request = t.request("uncordon", {"node": node})
    preview = t.run(t.executor.preview, request)
    assert "unschedulable: true" in diff_lines(preview.diff, "-"), preview.diff
    t.run(t.executor.apply, request)
    assert not read()["spec"].get("unschedulable")  # type: ignore[index]
    t.run(t.executor.rollback, request)
    assert read()["spec"]["unschedulable"] is True  # type: ignore[index]
    t.admin.call(
        "uncordon",
        t.admin.core.patch_node,
        node,
        {"spec": {"unschedulable": None}},
        _content_type="application/merge-patch+json",
    )


def case_cordon(t: KubeTarget, node: str) -> None:
    unschedulable = lambda: bool(t.get("v1", "Node", node)["spec"].get("unschedulable"))  # type: ignore[index]  # noqa: E731
    request = t.request("cordon", {"node": node})
    preview = t.run(t.executor.preview, request)
    assert "unschedulable: true" in diff_lines(preview.diff, "+") and not unschedulable(), preview.diff
    roundtrip(t, request, lambda: t.get("v1", "Node", node))
    assert not unschedulable()


def case_reads(t: KubeTarget) -> None:
    t.create(deployment("front", replicas=2))
    t.create(pod("front-x", labels={"app": "debug"}))  # not one of the Deployment's pods on a real cluster
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "front-x.oom"},
        "involvedObject": {"kind": "Pod", "name": "front-x", "namespace": t.namespace},
        "reason": "BackOff",
        "message": "Back-off restarting failed container",
        "type": "Warning",
        "count": 3,
        "firstTimestamp": "2026-01-01T00:00:00Z",
        "lastTimestamp": "2026-01-01T00:05:00Z",
    }
    t.create(event)
    pods = t.run(t.reads.pods, PodsQuery(namespace=t.namespace, label_selector="app=debug"))
    assert [p.name for p in pods.pods] == ["front-x"] and pods.total == 1
    deployments = t.run(
        t.reads.deployments, DeploymentsQuery(namespace=t.namespace, label_selector="app=front")
    )
    [front] = deployments.deployments
    assert front.name == "front" and front.replicas == 2 and front.images == ["registry.k8s.io/pause:3.9"]
    events = t.run(
        t.reads.events, EventsQuery(namespace=t.namespace, kind="Pod", name="front-x", warnings_only=True)
    )
    assert [(e.reason, e.object, e.count) for e in events.events] == [("BackOff", "Pod/front-x", 3)]
    described = t.run(t.reads.describe, DescribeQuery(namespace=t.namespace, kind="Pod", name="front-x"))
    assert described.facts["container main"] == "registry.k8s.io/pause:3.9"
    assert [e.reason for e in described.events] == ["BackOff"]
    history = t.run(t.reads.rollout_history, RolloutHistoryQuery(namespace=t.namespace, deployment="front"))
    assert [r.revision for r in history.revisions] == [1] and history.revisions[0].image.endswith("pause:3.9")


def case_namespace_refused(t: KubeTarget) -> None:
    request = t.request("scale", {"deployment": "web", "replicas": 1}).model_copy()
    request.action = request.action.model_copy(update={"namespace": "kube-system"})
    for activity in (t.executor.preview, t.executor.snapshot, t.executor.apply, t.executor.rollback):
        with pytest.raises(
            ApplicationError, match="namespace 'kube-system' is not in REMEDIATOR_KUBE_NAMESPACES"
        ) as err:
            t.run(activity, request)
        assert err.value.type == "NamespaceNotAllowed" and err.value.non_retryable
    with pytest.raises(ApplicationError, match="'kube-system'"):
        t.run(t.reads.pods, PodsQuery(namespace="kube-system"))


CASES: dict[str, Callable[[KubeTarget], None]] = {
    "scale": case_scale,
    "restart": case_restart,
    "set_resources": case_set_resources,
    "undo": case_undo,
    "apply_manifest": case_apply_manifest,
    "delete_pod": case_delete_pod,
    "reads": case_reads,
    "namespace_refused": case_namespace_refused,
}
