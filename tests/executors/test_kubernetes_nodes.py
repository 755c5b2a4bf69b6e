"""Node operations against the emulator: cordon, and drain with real `kubectl drain` (dry run,
evictions, DaemonSet pods left alone, the allow-list over the evicted pods' namespaces, a
disruption budget that holds the drain until its timeout)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError

from tests.k8s_emulator.cases import case_cordon, case_uncordon
from tests.k8s_emulator.harness import RS_OWNER, KubeTarget, emulated, evictions, pod, requests

pytestmark = pytest.mark.kubernetes


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[KubeTarget]:
    with emulated(tmp_path) as target:
        yield target


def test_cordon(kube: KubeTarget) -> None:
    case_cordon(kube, "node-1")


def test_uncordon(kube: KubeTarget) -> None:
    case_uncordon(kube, "node-1")


def pods_on_node(kube: KubeTarget) -> list[str]:
    listing = kube.admin.call(
        "pods", kube.admin.core.list_pod_for_all_namespaces, field_selector="spec.nodeName=node-1"
    )
    return sorted(f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in listing["items"])


def seed_node(kube: KubeTarget) -> None:
    daemonset = kube.create(
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": "agent"},
            "spec": {
                "selector": {"matchLabels": {"app": "agent"}},
                "template": {
                    "metadata": {"labels": {"app": "agent"}},
                    "spec": {"containers": [{"name": "a", "image": "a"}]},
                },
            },
        },
        namespace="kube-system",
    )
    owner = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "name": "agent",
        "uid": daemonset["metadata"]["uid"],
        "controller": True,
    }
    kube.create(pod("agent-x", node="node-1", ownerReferences=[owner]), namespace="kube-system")
    for name in ("web-1", "web-2"):
        kube.create(pod(name, node="node-1", labels={"app": "web"}, ownerReferences=[RS_OWNER]))
    kube.create(pod("elsewhere", node="node-2", ownerReferences=[RS_OWNER]))


def test_drain(kube: KubeTarget) -> None:
    seed_node(kube)
    request = kube.request("drain", {"node": "node-1", "timeout_seconds": 30})
    assert request.action.risk == "destructive"
    preview = kube.run(kube.executor.preview, request)
    assert preview.summary == "would cordon node node-1 and evict shop/web-1, shop/web-2"
    assert (
        "evicting pod shop/web-1 (server dry run)" in preview.diff
        and "+  unschedulable: true" in preview.diff
    )
    assert pods_on_node(kube) == ["kube-system/agent-x", "shop/web-1", "shop/web-2"] and evictions(kube) == []
    snapshot = kube.run(kube.executor.snapshot, request)
    assert (
        snapshot["pods"] == ["shop/web-1", "shop/web-2"]
        and snapshot["object"]["metadata"]["name"] == "node-1"
    )
    applied = kube.run(kube.executor.apply, request)
    assert applied.summary == "drained node node-1: 2 of 2 pods evicted now"
    assert pods_on_node(kube) == ["kube-system/agent-x"], "DaemonSet pods stay"
    node = kube.get("v1", "Node", "node-1")
    assert node is not None and node["spec"]["unschedulable"] is True
    assert node["metadata"]["annotations"]["remediator.io/applied"] == kube.key(request)
    again = kube.run(kube.executor.apply, request, attempt=2)
    assert "resumed" in again.summary and sorted(evictions(kube)) == ["web-1", "web-2"], (
        "nothing evicted twice"
    )
    rolled = kube.run(kube.executor.rollback, request)
    assert "evicted pods are not brought back" in rolled.summary
    node = kube.get("v1", "Node", "node-1")
    assert node is not None and "unschedulable" not in node["spec"]
    assert kube.get("v1", "Pod", "elsewhere") is not None


def test_drain_refuses_pods_of_a_namespace_outside_the_allow_list(kube: KubeTarget) -> None:
    seed_node(kube)
    kube.create(pod("ledger", node="node-1", ownerReferences=[RS_OWNER]), namespace="payments")
    request = kube.request("drain", {"node": "node-1"})
    for activity in (kube.executor.preview, kube.executor.apply):
        with pytest.raises(ApplicationError, match="namespace 'payments' is not in") as err:
            kube.run(activity, request)
        assert err.value.type == "NamespaceNotAllowed" and err.value.non_retryable
    assert requests(kube, "PATCH", "/nodes/") == [] and evictions(kube) == []


def test_drain_held_up_by_a_disruption_budget_times_out_and_heartbeats(kube: KubeTarget) -> None:
    seed_node(kube)
    pdb = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "web"},
        "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}},
    }
    kube.create(pdb)
    request = kube.request("drain", {"node": "node-1", "timeout_seconds": 3})
    with pytest.raises(ApplicationError, match="drain of node node-1: kubectl gave up waiting") as err:
        kube.run(kube.executor.apply, request)
    assert err.value.type == "KubernetesTimeout" and not err.value.non_retryable
    assert pods_on_node(kube) == ["kube-system/agent-x", "shop/web-1", "shop/web-2"]
    assert [h for h in kube.heartbeats if h == ("drain of node node-1",)], "heartbeats while kubectl waited"


@pytest.mark.parametrize("operation", ["cordon", "uncordon"])
def test_cordon_and_uncordon_refuse_a_node_running_pods_outside_the_allow_list(
    kube: KubeTarget, operation: str
) -> None:
    seed_node(kube)  # shop pods and a kube-system DaemonSet pod: the node is shop's to act on
    kube.create(pod("ledger", node="node-1", ownerReferences=[RS_OWNER]), namespace="payments")
    request = kube.request(operation, {"node": "node-1"})
    for activity in (kube.executor.preview, kube.executor.snapshot, kube.executor.apply):
        with pytest.raises(ApplicationError, match="namespace 'payments' is not in") as err:
            kube.run(activity, request)
        assert err.value.type == "NamespaceNotAllowed" and err.value.non_retryable
    assert requests(kube, "PATCH", "/nodes/") == []


def test_a_cordon_is_undone_even_after_a_foreign_pod_arrived(kube: KubeTarget) -> None:
    seed_node(kube)
    request = kube.request("cordon", {"node": "node-1"})
    kube.run(kube.executor.snapshot, request)
    assert kube.run(kube.executor.apply, request).ok
    kube.create(pod("ledger", node="node-1", ownerReferences=[RS_OWNER]), namespace="payments")
    rolled = kube.run(kube.executor.rollback, request)
    assert rolled.ok and rolled.changed, rolled.summary
    node = kube.get("v1", "Node", "node-1")
    assert node is not None and "unschedulable" not in node["spec"]


def test_with_no_namespace_allowed_no_node_is(kube: KubeTarget) -> None:
    kube.overrides["kube_namespaces"] = []
    for operation in ("cordon", "uncordon", "drain"):
        with pytest.raises(ApplicationError, match="allows no namespace, so no node") as err:
            kube.run(kube.executor.preview, kube.request(operation, {"node": "node-2"}))
        assert err.value.type == "NamespaceNotAllowed"
    assert requests(kube, "GET", "/pods") == []
