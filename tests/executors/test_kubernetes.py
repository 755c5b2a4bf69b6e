"""The Kubernetes executor against the emulator: the shared cases, then what only an emulator shows
(every request, injected API errors, slow answers, concurrent writes), long operations, and the
validation of KubernetesAction. Node operations and read tools have modules of their own."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import kmock
import pytest
from pydantic import ValidationError
from temporalio.exceptions import ApplicationError, CancelledError

from tests.chaos.harness import process_tree
from tests.k8s_emulator.cases import CASES
from tests.k8s_emulator.controllers import DEPLOYMENTS
from tests.k8s_emulator.harness import KubeTarget, deployment, emulated, pod, requests
from workflows.actions import KubernetesAction
from workflows.plans import ActionRequest

pytestmark = pytest.mark.kubernetes


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[KubeTarget]:
    with emulated(tmp_path) as target:
        yield target


@pytest.mark.parametrize("case", sorted(CASES))
def test_case(kube: KubeTarget, case: str) -> None:
    CASES[case](kube)


# --- what only the emulator can show: every request, injected faults, slow answers ------------------


def scale(kube: KubeTarget, replicas: int = 3, **fields: Any) -> ActionRequest:
    return kube.request("scale", {"deployment": "web", "replicas": replicas}, **fields)


def test_previews_are_server_side_dry_runs(kube: KubeTarget) -> None:
    kube.create(deployment("web"))
    kube.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "flags"}, "data": {"a": "1"}})
    manifest = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "flags"}, "data": {"a": "2"}}
    assert kube.emulator is not None
    writes = len(kube.emulator.mutations)
    for request in (scale(kube), kube.request("apply", {"manifest": manifest})):
        kube.run(kube.executor.preview, request)
    patches = requests(kube, "PATCH")
    assert {r.headers["Content-Type"].split(";")[0] for r in patches} == {
        "application/strategic-merge-patch+json",
        "application/apply-patch+yaml",
    }
    assert all(r.params.get("dryRun") == "All" for r in patches)
    assert len(kube.emulator.mutations) == writes, "a preview writes nothing"


def two_revisions(kube: KubeTarget, name: str = "web") -> None:
    kube.create(deployment(name, image="registry.k8s.io/pause:3.9"))
    image = {
        "spec": {
            "template": {"spec": {"containers": [{"name": name, "image": "registry.k8s.io/pause:3.10"}]}}
        }
    }
    kube.admin.call(
        "new image",
        kube.admin.apps.patch_namespaced_deployment,
        name,
        kube.namespace,
        image,
        _content_type="application/strategic-merge-patch+json",
    )


def test_undo_preview_is_kubectls_server_dry_run(kube: KubeTarget) -> None:
    two_revisions(kube)
    preview = kube.run(kube.executor.preview, kube.request("rollout_undo", {"deployment": "web"}))
    assert "would roll deployment shop/web back from revision 2 to 1" in preview.summary
    assert "(server dry run)" in preview.summary, "kubectl said what it would do"
    [image_change, dry_run] = requests(kube, "PATCH", "/deployments/web")
    assert (
        dry_run.params["dryRun"] == "All" and dry_run.headers["Content-Type"] == "application/json-patch+json"
    )
    assert "dryRun" not in image_change.params
    assert kube.deployment("web")["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"


UNDO = {"deployment": "web"}
MANIFEST = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "flags"}, "data": {"a": "2"}}


@pytest.mark.parametrize(
    ("operation", "args", "plural"),
    [
        ("scale", {"deployment": "web", "replicas": 4}, "deployments"),
        ("rollout_restart", {"deployment": "web"}, "deployments"),
        ("set_resources", {"deployment": "web", "container": "web", "limits": {"cpu": "1"}}, "deployments"),
        ("rollout_undo", UNDO, "deployments"),
        ("apply", {"manifest": MANIFEST}, "configmaps"),
    ],
)
def test_a_retried_apply_has_one_effect(
    kube: KubeTarget, operation: str, args: dict[str, Any], plural: str
) -> None:
    two_revisions(kube)
    request = kube.request(operation, args)
    outcomes = [kube.run(kube.executor.apply, request, attempt=n) for n in (1, 2, 3)]
    assert kube.emulator is not None
    effects = kube.emulator.effects(kube.key(request), plural)
    assert [e.method for e in effects] == ["PATCH"], effects
    assert outcomes[0].changed and all(
        "already applied by an earlier attempt" in o.summary for o in outcomes[1:]
    )


ERRORS = [
    (403, "Forbidden", "KubernetesForbidden", False),
    (404, "NotFound", "KubernetesNotFound", False),
    (409, "Conflict", "KubernetesConflict", True),
    (422, "Invalid", "KubernetesInvalid", False),
    (429, "TooManyRequests", "KubernetesThrottled", True),
    (500, "InternalError", "KubernetesServerError", True),
]


@pytest.mark.parametrize(("status", "reason", "kind", "retryable"), ERRORS)
def test_api_errors_through_the_client(
    kube: KubeTarget, status: int, reason: str, kind: str, retryable: bool
) -> None:
    kube.create(deployment("web"))
    assert kube.emulator is not None
    kube.emulator["patch /apis/apps/v1/namespaces/shop/deployments/web"] << kmock.KubernetesError(
        status=status, reason=reason, message=f"injected {reason}", details={}
    )
    with pytest.raises(ApplicationError) as err:
        kube.run(kube.executor.apply, scale(kube))
    assert err.value.type == kind and err.value.non_retryable is not retryable
    assert err.value.message == f"deployment shop/web: injected {reason} (HTTP {status} {reason})"
    assert kube.deployment("web")["spec"]["replicas"] == 1


@pytest.mark.parametrize(("status", "reason", "kind", "retryable"), ERRORS)
def test_api_errors_through_kubectl(
    kube: KubeTarget, status: int, reason: str, kind: str, retryable: bool
) -> None:
    two_revisions(kube)
    assert kube.emulator is not None
    kube.emulator["patch /apis/apps/v1/namespaces/shop/deployments/web"] << kmock.KubernetesError(
        status=status, reason=reason, message=f"injected {reason}", details={}
    )
    with pytest.raises(ApplicationError) as err:
        kube.run(kube.executor.apply, kube.request("rollout_undo", UNDO))
    assert err.value.type == kind and err.value.non_retryable is not retryable, err.value
    assert f"injected {reason}" in err.value.message and err.value.message.startswith(
        "rollout undo of deployment shop/web"
    )
    assert kube.deployment("web")["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"


def test_a_concurrent_write_is_a_retryable_conflict_then_one_effect(kube: KubeTarget) -> None:
    """Someone writes between our read and our patch: the resourceVersion precondition catches it."""
    kube.create(deployment("web"))
    assert kube.emulator is not None
    store = kube.emulator.store

    def meanwhile() -> None:  # a kmock sink: runs when our PATCH arrives, which then goes on as usual
        live = store.require(DEPLOYMENTS, "shop", "web")
        live["metadata"]["labels"]["team"] = "someone-else"
        store.replace(DEPLOYMENTS, "shop", "web", live)

    kube.emulator["patch /apis/apps/v1/namespaces/shop/deployments/web"] >> meanwhile
    request = scale(kube)
    with pytest.raises(ApplicationError, match="the object has been modified") as err:
        kube.run(kube.executor.apply, request)
    assert err.value.type == "KubernetesConflict" and not err.value.non_retryable
    assert kube.deployment("web")["spec"]["replicas"] == 1
    kube.run(kube.executor.apply, request, attempt=2)  # Temporal's retry
    live = kube.deployment("web")
    assert live["spec"]["replicas"] == 3 and live["metadata"]["labels"]["team"] == "someone-else"
    assert len(kube.emulator.effects(kube.key(request))) == 1


def test_a_hung_api_server_is_a_retryable_timeout(kube: KubeTarget) -> None:
    kube.overrides["kube_request_timeout_seconds"] = 1.0
    two_revisions(kube)
    assert kube.emulator is not None
    kube.emulator.slow("GET", r"/deployments/web$", 10, after=False)
    started = time.monotonic()
    with pytest.raises(ApplicationError, match="deployment shop/web: the API server did not answer") as err:
        kube.run(kube.executor.apply, scale(kube))
    assert err.value.type == "KubernetesUnavailable" and not err.value.non_retryable
    kube.emulator.slow("PATCH", r"/configmaps/flags$", 10, after=False)
    with pytest.raises(
        ApplicationError, match="diff of ConfigMap shop/flags: the API server did not answer"
    ) as err:
        kube.run(
            kube.executor.preview, kube.request("apply", {"manifest": MANIFEST})
        )  # kubectl's --request-timeout
    assert err.value.type == "KubernetesUnavailable" and not err.value.non_retryable, err.value
    assert time.monotonic() - started < 8, "each call gave up after its 1 s timeout"


def test_rollout_wait_heartbeats_until_the_rollout_completes(kube: KubeTarget) -> None:
    kube.create(deployment("web"))
    assert kube.emulator is not None
    kube.emulator.controller.rollout_seconds = 2.5
    started = time.monotonic()
    applied = kube.run(kube.executor.apply, scale(kube, wait_seconds=30))
    assert time.monotonic() - started >= 2.5
    assert applied.summary.endswith('deployment "web" successfully rolled out'), applied.summary
    assert ("waiting for the rollout of deployment shop/web",) in kube.heartbeats
    status = kube.deployment("web")["status"]
    assert status["updatedReplicas"] == status["availableReplicas"] == 3


def test_cancelling_stops_kubectl(kube: KubeTarget) -> None:
    kube.create(deployment("web"))
    assert kube.emulator is not None
    kube.emulator.controller.rollout_seconds = 120
    env = kube.environment()
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(env.run, kube.executor.apply, scale(kube, wait_seconds=300))
        deadline = time.monotonic() + 20
        while not any("rollout status" in c for c in process_tree(os.getpid()).values()):
            assert time.monotonic() < deadline, "kubectl rollout status never started"
            time.sleep(0.1)
        env.cancel()
        with pytest.raises(CancelledError):
            running.result(timeout=10)
    assert not [c for c in process_tree(os.getpid()).values() if "kubectl" in c]
    assert kube.deployment("web")["spec"]["replicas"] == 3, "the change itself was made before the wait"


def test_apply_refuses_what_the_allow_list_cannot_bound(kube: KubeTarget) -> None:
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "new"}}
    with pytest.raises(ApplicationError, match="v1/Namespace is cluster-scoped") as err:
        kube.run(kube.executor.preview, kube.request("apply", {"manifest": namespace}))
    assert err.value.type == "ClusterScoped" and err.value.non_retryable
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    with pytest.raises(ApplicationError, match=r"the cluster does not serve example\.com/v1/Widget"):
        kube.run(kube.executor.preview, kube.request("apply", {"manifest": unknown}))
    elsewhere = {**MANIFEST, "metadata": {"name": "flags", "namespace": "kube-system"}}
    action = KubernetesAction(name="elsewhere", operation="apply", args={"manifest": elsewhere})
    with pytest.raises(ApplicationError, match="namespace 'kube-system' is not in"):
        kube.run(
            kube.executor.apply, ActionRequest(incident_id="incident-k8s-test", step="fix", action=action)
        )
    assert requests(kube, "PATCH") == []


def test_a_retry_never_deletes_the_replacement_pod(kube: KubeTarget) -> None:
    """A StatefulSet brings the pod back under the same name; the retry must leave the new one alone."""
    first_scheduled = datetime.now(UTC) - timedelta(seconds=5)
    kube.create(pod("db-0"))
    request = kube.request("delete_pod", {"pod": "db-0"})
    kube.run(kube.executor.apply, request, scheduled=first_scheduled)
    replacement = kube.create(pod("db-0"))
    retried = kube.run(kube.executor.apply, request, attempt=2, scheduled=first_scheduled)
    assert "this one is its replacement" in retried.summary
    survivor = kube.get("v1", "Pod", "db-0")
    assert survivor is not None and survivor["metadata"]["uid"] == replacement["metadata"]["uid"]
    assert [r.method.value for r in requests(kube, "DELETE", "/pods/db-0")] == ["DELETE"]


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        (
            {"operation": "drain", "namespace": "shop", "args": {"node": "n"}},
            "acts on a node, which has no namespace",
        ),
        (
            {"operation": "delete_pod", "namespace": "shop", "risk": "change", "args": {"pod": "p"}},
            "below 'destructive'",
        ),
        ({"operation": "scale", "args": {"deployment": "web", "replicas": 2}}, "scale needs a namespace"),
        (
            {
                "operation": "set_resources",
                "namespace": "shop",
                "args": {"deployment": "w", "container": "c"},
            },
            "needs requests or limits",
        ),
        (
            {
                "operation": "set_resources",
                "namespace": "shop",
                "args": {"deployment": "w", "container": "c", "limits": {"cpu": "lots"}},
            },
            "args of set_resources",
        ),
        (
            {"operation": "scale", "namespace": "shop", "args": {"deployment": "Web!", "replicas": 1}},
            "should match",
        ),
        ({"operation": "apply", "namespace": "shop", "args": {"manifest": {"kind": "List"}}}, "one object"),
        (
            {
                "operation": "apply",
                "namespace": "shop",
                "args": {"manifest": {**MANIFEST, "metadata": {"name": "x", "namespace": "other"}}},
            },
            "is not the action's",
        ),
    ],
)
def test_bad_actions_are_refused_with_a_reason(fields: dict[str, Any], error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        KubernetesAction(name="bad", **fields)


def test_risk_defaults_to_the_operations_floor() -> None:
    risks = {
        op: KubernetesAction(name="x", operation=op, namespace=ns, args=args).risk  # type: ignore[arg-type]
        for op, ns, args in [
            ("scale", "shop", {"deployment": "web", "replicas": 2}),
            ("rollout_restart", "shop", {"deployment": "web"}),
            ("cordon", "", {"node": "n"}),
            ("drain", "", {"node": "n"}),
            ("delete_pod", "shop", {"pod": "p"}),
        ]
    }
    assert risks == {
        "scale": "change",
        "rollout_restart": "change",
        "cordon": "change",
        "drain": "destructive",
        "delete_pod": "destructive",
    }
    to_zero = KubernetesAction(
        name="x", operation="scale", namespace="shop", args={"deployment": "w", "replicas": 0}
    )
    assert to_zero.risk == "destructive"


def test_a_missing_kubeconfig_fails_for_good(tmp_path: Path) -> None:
    target = KubeTarget(tmp_path / "missing-kubeconfig", "shop", tmp_path / "state")
    with pytest.raises(ApplicationError, match="cannot load the Kubernetes configuration from") as err:
        target.run(target.executor.preview, scale(target))
    assert err.value.type == "KubeConfig" and err.value.non_retryable


def test_a_refused_namespace_costs_no_call(kube: KubeTarget) -> None:
    assert kube.emulator is not None
    served = len(list(kube.emulator))
    elsewhere = {**MANIFEST, "metadata": {"name": "flags", "namespace": "kube-system"}}
    actions = [
        KubernetesAction(
            name="x", operation="scale", namespace="default", args={"deployment": "w", "replicas": 1}
        ),
        KubernetesAction(name="x", operation="apply", args={"manifest": elsewhere}),
    ]
    for action in actions:
        request = ActionRequest(incident_id="incident-k8s-test", step="fix", action=action)
        for activity in (
            kube.executor.preview,
            kube.executor.snapshot,
            kube.executor.apply,
            kube.executor.rollback,
        ):
            with pytest.raises(ApplicationError, match="is not in REMEDIATOR_KUBE_NAMESPACES"):
                kube.run(activity, request)
    assert len(list(kube.emulator)) == served
