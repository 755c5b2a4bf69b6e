"""The three patch formats of the API server, and server-side apply's merge of applied configuration.

Strategic merge covers what kubectl and our executor send: lists of named things (containers, env,
volumes, ports...) merge by their key, `null` deletes, and the `$patch`/`$retainKeys`/
`$setElementOrder` directives are honoured or dropped the way the API server does.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch

# list field name -> merge key, from the Kubernetes API's patchMergeKey tags
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "volumeMounts": "mountPath",
    "imagePullSecrets": "name",
    "conditions": "type",
    "ownerReferences": "uid",
    "tolerations": "key",
    "hostAliases": "ip",
}


class PatchError(ValueError):
    """The patch cannot apply: the server answers 422 (or 400 for a malformed body)."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _merge_key(field: str, items: list[Any]) -> str | None:
    if field == "ports":  # containerPort for containers, port for services
        return "containerPort" if any(isinstance(i, dict) and "containerPort" in i for i in items) else "port"
    return MERGE_KEYS.get(field)


def _merge_list(field: str, live: list[Any], patch: list[Any]) -> list[Any]:
    key = _merge_key(field, live + patch)
    if key is None or not all(isinstance(i, dict) for i in live + patch):
        return copy.deepcopy([i for i in patch if not (isinstance(i, dict) and "$patch" in i)])
    result = [copy.deepcopy(i) for i in live]
    for item in patch:
        directive = item.get("$patch")
        index = next((n for n, old in enumerate(result) if old.get(key) == item.get(key)), None)
        if directive == "delete":
            if index is not None:
                result.pop(index)
        elif index is None:
            result.append(strategic_merge({}, item))
        else:
            result[index] = strategic_merge(result[index], item)
    return result


def strategic_merge(live: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = dict(live) if isinstance(live, dict) else {}
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key.startswith("$"):
            continue  # $setElementOrder/..., $retainKeys, $deleteFromPrimitiveList/...: order hints
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and isinstance(result.get(key), list):
            result[key] = _merge_list(key, result[key], value)
        elif isinstance(value, list):
            result[key] = _merge_list(key, [], value)
        else:
            merged = strategic_merge(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
    if retain is not None:
        result = {k: v for k, v in result.items() if k in retain}
    return result


def json_patch(live: dict[str, Any], operations: Any) -> dict[str, Any]:
    if not isinstance(operations, list):
        raise PatchError("a JSON patch must be a list of operations")
    try:
        patched: dict[str, Any] = jsonpatch.apply_patch(live, operations)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as err:
        raise PatchError(f"the JSON patch does not apply: {err}") from err
    return patched


def apply(live: dict[str, Any] | None, content_type: str, body: Any) -> dict[str, Any]:
    """The object after a PATCH of the given content type (server-side apply merges strategically)."""
    base = copy.deepcopy(live or {})
    if "json-patch" in content_type:
        return json_patch(base, body)
    if not isinstance(body, dict):
        raise PatchError(f"a {content_type} patch must be a JSON object")
    if "strategic-merge-patch" in content_type or "apply-patch" in content_type:
        return strategic_merge(base, body)
    if "merge-patch" in content_type:
        return merge_patch(base, body)
    raise PatchError(f"unsupported patch content type {content_type!r}")
