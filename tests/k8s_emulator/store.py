"""Objects in memory with the API server's bookkeeping: resourceVersion, uid, generation, watch events.

Thread-safe: the emulator's event loop serves requests while tests seed and inspect from theirs.
"""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tests.k8s_emulator.defaults import apply_defaults
from tests.k8s_emulator.resources import Resource

Key = tuple[Resource, str, str]  # resource, namespace ("" for cluster-scoped), name
# Resources whose spec changes bump metadata.generation, as for every workload kind.
_GENERATIONAL = {"Deployment", "ReplicaSet", "DaemonSet", "StatefulSet", "PodDisruptionBudget"}
_STATUS_SUBRESOURCE = {"Deployment", "ReplicaSet", "DaemonSet", "StatefulSet", "Pod", "Node"}


class StoreError(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class WatchEvent:
    rv: int
    type: str
    resource: Resource
    obj: dict[str, Any]


def _without_rv(obj: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in obj.get("metadata", {}).items() if k != "resourceVersion"}
    return {**obj, "metadata": meta}


def _what(res: Resource, name: str) -> str:
    group = f".{res.group}" if res.group else ""
    return f'{res.plural}{group} "{name}"'


class Store:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._objects: dict[Key, dict[str, Any]] = {}
        self._rv = 1000
        self.events: list[WatchEvent] = []
        self.listeners: list[Callable[[], None]] = []

    @property
    def resource_version(self) -> int:
        return self._rv

    def _emit(self, kind: str, res: Resource, obj: dict[str, Any]) -> None:
        self.events.append(WatchEvent(int(obj["metadata"]["resourceVersion"]), kind, res, copy.deepcopy(obj)))
        for listener in self.listeners:
            listener()

    def get(self, res: Resource, ns: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._objects.get((res, ns if res.namespaced else "", name))
            return copy.deepcopy(found) if found else None

    def require(self, res: Resource, ns: str, name: str) -> dict[str, Any]:
        found = self.get(res, ns, name)
        if found is None:
            raise StoreError(404, "NotFound", f"{_what(res, name)} not found")
        return found

    def select(self, res: Resource, ns: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [
                copy.deepcopy(obj)
                for (r, o_ns, _), obj in sorted(self._objects.items(), key=lambda kv: kv[0][1:])
                if r == res and (ns is None or o_ns == ns)
            ]

    def list_all(self) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(obj) for obj in self._objects.values()]

    def _stamp(self, res: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        obj["apiVersion"], obj["kind"] = res.api_version, res.kind
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        return obj

    def create(self, res: Resource, ns: str, obj: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        if not meta.get("name"):
            raise StoreError(422, "Invalid", f"{res.kind} is invalid: metadata.name: Required value")
        if res.namespaced:
            meta["namespace"] = ns or meta.get("namespace") or "default"
        else:
            meta.pop("namespace", None)
        with self._lock:
            key = (res, meta.get("namespace", ""), meta["name"])
            if key in self._objects:
                raise StoreError(409, "AlreadyExists", f"{_what(res, meta['name'])} already exists")
            apply_defaults(res.kind, obj)
            meta.update(uid=str(uuid.uuid4()), creationTimestamp=now())
            meta.pop("resourceVersion", None)
            if res.kind in _GENERATIONAL:
                meta["generation"] = 1
            if dry_run:
                obj["apiVersion"], obj["kind"] = res.api_version, res.kind
                return obj
            self._objects[key] = self._stamp(res, obj)
            self._emit("ADDED", res, obj)
            return copy.deepcopy(obj)

    def replace(
        self,
        res: Resource,
        ns: str,
        name: str,
        obj: dict[str, Any],
        dry_run: bool = False,
        status: bool = False,
    ) -> dict[str, Any]:
        """PUT semantics: the given resourceVersion, if any, must be the current one (optimistic lock)."""
        with self._lock:
            old = self.require(res, ns, name)
            new = {**copy.deepcopy(obj), "apiVersion": res.api_version, "kind": res.kind}
            meta = new.setdefault("metadata", {})
            sent_rv = meta.get("resourceVersion")
            if sent_rv and sent_rv != old["metadata"]["resourceVersion"]:
                raise StoreError(
                    409,
                    "Conflict",
                    f"Operation cannot be fulfilled on {_what(res, name)}: the object has been modified; "
                    "please apply your changes to the latest version and try again",
                )
            if meta.get("name", name) != name:
                raise StoreError(
                    400, "BadRequest", f"the name of the object ({meta['name']}) does not match {name}"
                )
            if status:  # the status subresource changes nothing but status
                new = {**old, "status": new.get("status", {})}
            elif res.kind in _STATUS_SUBRESOURCE:
                new["status"] = old.get("status", {})
                if "status" not in old:
                    new.pop("status")
            for field in ("uid", "creationTimestamp", "generation", "deletionTimestamp"):
                if field in old["metadata"]:
                    new["metadata"][field] = old["metadata"][field]
            new["metadata"].update(name=name)
            if res.namespaced:
                new["metadata"]["namespace"] = old["metadata"]["namespace"]
            apply_defaults(res.kind, new)
            if res.kind in _GENERATIONAL and new.get("spec") != old.get("spec"):
                new["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1
            if dry_run:  # nothing is stored, so the object keeps its resourceVersion
                new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
                return new
            if _without_rv(new) == _without_rv(old):
                return old  # a no-op write does not bump resourceVersion, as on a real server
            self._objects[(res, ns if res.namespaced else "", name)] = self._stamp(res, new)
            self._emit("MODIFIED", res, new)
            return copy.deepcopy(new)

    def delete(
        self,
        res: Resource,
        ns: str,
        name: str,
        dry_run: bool = False,
        preconditions: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        with self._lock:
            old = self.require(res, ns, name)
            for field in ("uid", "resourceVersion"):
                wanted = (preconditions or {}).get(field)
                if wanted and wanted != old["metadata"].get(field):
                    raise StoreError(
                        409,
                        "Conflict",
                        f"Precondition failed: {field} in precondition: {wanted}, "
                        f"{field} in object meta: {old['metadata'].get(field)}",
                    )
            if not dry_run:
                del self._objects[(res, ns if res.namespaced else "", name)]
                self._rv += 1
                old["metadata"]["resourceVersion"] = str(self._rv)
                self._emit("DELETED", res, old)
            return old
