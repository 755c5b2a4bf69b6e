"""The resources the emulator serves, and the discovery documents kubectl and the client read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    # subresource name -> (group, version, kind) of the object it takes and returns
    subresources: dict[str, tuple[str, str, str]] = field(default_factory=dict, hash=False, compare=False)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        return self.api_version

    def discovery(self) -> list[dict[str, Any]]:
        """APIResource entries: the resource and each subresource with its own kind (Scale, Eviction...)."""
        main = {
            "name": self.plural,
            "singularName": self.kind.lower(),
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": VERBS,
            "shortNames": list(self.short_names),
        }
        subs = [
            {
                "name": f"{self.plural}/{sub}",
                "singularName": "",
                "namespaced": self.namespaced,
                "group": group,
                "version": version,
                "kind": kind,
                "verbs": ["create"] if sub == "eviction" else ["get", "patch", "update"],
            }
            for sub, (group, version, kind) in self.subresources.items()
        ]
        return [main, *subs]


_SCALE = ("autoscaling", "v1", "Scale")
RESOURCES = [
    Resource("", "v1", "namespaces", "Namespace", namespaced=False, short_names=("ns",)),
    Resource(
        "",
        "v1",
        "nodes",
        "Node",
        namespaced=False,
        short_names=("no",),
        subresources={"status": ("", "v1", "Node")},
    ),
    Resource(
        "",
        "v1",
        "pods",
        "Pod",
        short_names=("po",),
        subresources={
            "status": ("", "v1", "Pod"),
            "log": ("", "v1", "Pod"),
            "eviction": ("policy", "v1", "Eviction"),
        },
    ),
    Resource("", "v1", "events", "Event", short_names=("ev",)),
    Resource("", "v1", "configmaps", "ConfigMap", short_names=("cm",)),
    Resource("", "v1", "services", "Service", short_names=("svc",)),
    Resource(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        short_names=("deploy",),
        subresources={"status": ("apps", "v1", "Deployment"), "scale": _SCALE},
    ),
    Resource(
        "apps",
        "v1",
        "replicasets",
        "ReplicaSet",
        short_names=("rs",),
        subresources={"status": ("apps", "v1", "ReplicaSet"), "scale": _SCALE},
    ),
    Resource("apps", "v1", "daemonsets", "DaemonSet", short_names=("ds",)),
    Resource(
        "apps", "v1", "statefulsets", "StatefulSet", short_names=("sts",), subresources={"scale": _SCALE}
    ),
    Resource("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", short_names=("pdb",)),
]
BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES}
BY_KIND = {(r.api_version, r.kind): r for r in RESOURCES}


def groups() -> dict[str, list[str]]:
    """API group name -> versions, without the core group."""
    found: dict[str, list[str]] = {}
    for r in RESOURCES:
        if r.group and r.version not in found.setdefault(r.group, []):
            found[r.group].append(r.version)
    return found


def api_versions() -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}


def api_group(name: str, versions: list[str]) -> dict[str, Any]:
    listed = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": name,
        "versions": listed,
        "preferredVersion": listed[0],
    }


def api_group_list() -> dict[str, Any]:
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [api_group(name, versions) for name, versions in groups().items()],
    }


def api_resource_list(group: str, version: str) -> dict[str, Any] | None:
    served = [r for r in RESOURCES if (r.group, r.version) == (group, version)]
    if not served:
        return None
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": served[0].group_version,
        "resources": [entry for r in served for entry in r.discovery()],
    }
