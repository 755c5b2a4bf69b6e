"""deploy/kubernetes, rendered by the real kubectl's kustomize and validated against the Kubernetes
1.37 schemas shipped in the kubernetes-validate package (strict: unknown fields fail); then the least
privilege and the shutdown arithmetic the README promises."""

from __future__ import annotations

import subprocess
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from activities.config import Settings
from api.routes_health import router as health_router
from tests.conftest import binary
from tests.deploy.support import DEPLOY, image_pinned, unknown_settings

KUSTOMIZE_DIR = DEPLOY / "kubernetes"
KUBERNETES_VERSION = "1.37.0"
Object = dict[str, Any]

READ_ONLY = {
    ("", "pods"): {"get", "list", "watch"},
    ("", "pods/log"): {"get", "list", "watch"},
    ("", "events"): {"get", "list", "watch"},
    ("", "nodes"): {"get", "list", "watch"},
    ("apps", "deployments"): {"get", "list", "watch"},
    ("apps", "replicasets"): {"get", "list", "watch"},
}
# cordon/uncordon patch the node; `kubectl drain --ignore-daemonsets` reads the DaemonSets it skips.
NODES = {("", "nodes"): {"patch"}, ("apps", "daemonsets"): {"get"}}
ACT = {
    ("apps", "deployments"): {"patch"},
    ("apps", "deployments/scale"): {"patch"},
    ("apps", "replicasets"): {"patch"},  # rollout undo marks the ReplicaSet it returns to
    ("", "pods"): {"delete"},
    ("", "pods/eviction"): {"create"},
}


def render(directory: Path) -> list[Object]:
    result = subprocess.run(
        [binary("kubectl"), "kustomize", str(directory)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return [o for o in yaml.safe_load_all(result.stdout) if o]


@pytest.fixture(scope="module")
def objects() -> list[Object]:
    return render(KUSTOMIZE_DIR)


def find(objects: list[Object], kind: str, name: str = "") -> list[Object]:
    return [o for o in objects if o["kind"] == kind and (not name or o["metadata"]["name"] == name)]


def one(objects: list[Object], kind: str, name: str) -> Object:
    [found] = find(objects, kind, name)
    return found


def rules(role: Object) -> dict[tuple[str, str], set[str]]:
    granted: dict[tuple[str, str], set[str]] = defaultdict(set)
    for rule in role["rules"]:
        assert not rule.get("resourceNames") and not rule.get("nonResourceURLs"), rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted[(group, resource)] |= set(rule["verbs"])
    return dict(granted)


def configured_settings(objects: list[Object], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings exactly as a pod gets them: the ConfigMap's and the Secret's values as environment."""
    for name, value in one(objects, "ConfigMap", "remediator-config")["data"].items():
        monkeypatch.setenv(name, value)
    return Settings()


def test_every_object_validates_against_the_kubernetes_schema(objects: list[Object]) -> None:
    kinds = {o["kind"] for o in objects}
    assert {
        "Deployment",
        "Service",
        "ConfigMap",
        "Secret",
        "HorizontalPodAutoscaler",
        "ClusterRole",
        "Role",
    } <= kinds
    for obj in objects:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_the_validation_is_strict(objects: list[Object]) -> None:
    worker = one(objects, "Deployment", "remediator-worker")
    broken = {**worker, "spec": {**worker["spec"], "terminationGracePeriod": 10}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_settings_come_from_the_configmap_and_secret(
    objects: list[Object], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = one(objects, "ConfigMap", "remediator-config")["data"]
    secrets = {k for s in find(objects, "Secret") for k in s.get("stringData", {})}
    codec = {"REMEDIATOR_CODEC_KEYS", "REMEDIATOR_CODEC_ACTIVE_KEY"}  # the codec server's own settings
    assert not unknown_settings([*config, *secrets]) - codec
    configured_settings(objects, monkeypatch)  # every value parses
    assert Path(config["REMEDIATOR_API_KEYS_FILE"]).name == "api-keys.json"
    for deployment in find(objects, "Deployment"):
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        refs = {r.get("configMapRef", r.get("secretRef", {}))["name"] for r in container["envFrom"]}
        assert refs == {"remediator-config", "remediator-secrets"}
        assert image_pinned(container["image"]), container["image"]


def test_pods_are_locked_down_and_sized(objects: list[Object]) -> None:
    for deployment in find(objects, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]
            assert {"cpu", "memory"} <= set(container["resources"]["requests"])
            assert {"cpu", "memory"} <= set(container["resources"]["limits"])


def test_api_probes_are_its_health_routes(objects: list[Object]) -> None:
    routes = {route.path for route in health_router.routes}  # type: ignore[attr-defined]
    [api] = one(objects, "Deployment", "remediator-api")["spec"]["template"]["spec"]["containers"]
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz" in routes
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz" in routes
    mounted = {m["mountPath"] for m in api["volumeMounts"]}
    assert "/etc/remediator/api-keys" in mounted
    service = one(objects, "Service", "remediator-api")
    labels = one(objects, "Deployment", "remediator-api")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()


def test_worker_grace_period_outlasts_its_graceful_shutdown(
    objects: list[Object], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = configured_settings(objects, monkeypatch)
    assert settings.worker_shutdown_grace > timedelta(0)
    pod = one(objects, "Deployment", "remediator-worker")["spec"]["template"]["spec"]
    grace = timedelta(seconds=pod["terminationGracePeriodSeconds"])
    # after the grace the worker cancels its activities, and a cancelled Terraform apply may still
    # take terraform_stop_grace to write its state
    assert grace > settings.worker_shutdown_grace + settings.terraform_stop_grace


def test_workers_share_the_terraform_work_dir_and_scale(
    objects: list[Object], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = configured_settings(objects, monkeypatch)
    pod = one(objects, "Deployment", "remediator-worker")["spec"]["template"]["spec"]
    [worker] = pod["containers"]
    [mount] = [m for m in worker["volumeMounts"] if m["mountPath"] == str(settings.terraform_work_path)]
    [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    claim = one(objects, "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    hpa = one(objects, "HorizontalPodAutoscaler", "remediator-worker")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "remediator-worker",
    }
    assert hpa["spec"]["minReplicas"] >= 2


def test_rbac_is_exactly_the_least_privilege_list(
    objects: list[Object], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert rules(one(objects, "ClusterRole", "remediator-read")) == READ_ONLY
    assert rules(one(objects, "ClusterRole", "remediator-nodes")) == NODES
    acts = find(objects, "Role")
    assert acts and all(rules(role) == ACT for role in acts)
    # One Role per namespace the worker may act in, and no other.
    allowed = configured_settings(objects, monkeypatch).kube_namespaces
    assert sorted(role["metadata"]["namespace"] for role in acts) == sorted(allowed)
    for role in [*acts, *find(objects, "ClusterRole")]:
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], rule
            assert not {"secrets", "pods/exec", "pods/attach", "configmaps"} & set(rule["resources"]), rule
            assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"]), rule


def test_only_the_worker_holds_a_kubernetes_identity(objects: list[Object]) -> None:
    bindings = find(objects, "ClusterRoleBinding") + find(objects, "RoleBinding")
    assert len(bindings) == len(find(objects, "ClusterRole")) + len(find(objects, "Role"))
    for binding in bindings:
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "remediator-worker", "namespace": "remediator"}
        ]
        assert binding["roleRef"]["kind"] == binding["kind"].removesuffix("Binding")
    for name in ("remediator-api", "remediator-codec-server"):
        pod = one(objects, "Deployment", name)["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False
        assert pod["serviceAccountName"] != "remediator-worker"
