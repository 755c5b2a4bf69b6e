"""OpenAPI v3 documents, as much as kubectl reads from them.

kubectl (apply, --validate=strict by default) asks whether the server validates fields itself: it looks
for the PATCH operation of the object's group/version/kind and a `fieldValidation` query parameter.
When found it leaves validation to the server instead of downloading full schemas, so operations
and parameters are all these documents carry.
"""

from __future__ import annotations

from typing import Any

from tests.k8s_emulator.resources import RESOURCES, Resource

_PARAMS = ("dryRun", "fieldManager", "fieldValidation", "force")


def _prefix(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def _operation(res: Resource, action: str) -> dict[str, Any]:
    return {
        "operationId": f"{action}{res.kind}",
        "parameters": [{"name": p, "in": "query", "schema": {"type": "string"}} for p in _PARAMS],
        "responses": {"200": {"description": "OK"}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": res.group, "version": res.version, "kind": res.kind},
    }


def _paths(group: str, version: str) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for res in RESOURCES:
        if (res.group, res.version) != (group, version):
            continue
        scope = "namespaces/{namespace}/" if res.namespaced else ""
        base = f"/{_prefix(group, version)}/{scope}{res.plural}"
        paths[base] = {"get": _operation(res, "list"), "post": _operation(res, "post")}
        paths[f"{base}/{{name}}"] = {
            "get": _operation(res, "get"),
            "put": _operation(res, "put"),
            "patch": _operation(res, "patch"),
            "delete": _operation(res, "delete"),
        }
    return paths


def document(path: str) -> dict[str, Any] | None:
    """/openapi/v3 (the index) or /openapi/v3/<api/v1|apis/group/version>; v2 is not served."""
    group_versions = {(r.group, r.version) for r in RESOURCES}
    if path == "/openapi/v3":
        index = {
            _prefix(g, v): {"serverRelativeURL": f"/openapi/v3/{_prefix(g, v)}?hash=emulator"}
            for g, v in group_versions
        }
        return {"paths": index}
    for group, version in group_versions:
        if path == f"/openapi/v3/{_prefix(group, version)}":
            info = {"title": "Kubernetes (remediator emulator)", "version": "v1.37.0"}
            return {"openapi": "3.0.0", "info": info, "paths": _paths(group, version), "components": {}}
    return None
