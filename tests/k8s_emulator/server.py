"""The emulated API server: kmock's scaffold (routing, request log, fault injection, Status errors)
with the behaviour kubectl and the client need, implemented at the HTTP level.

Requests first meet the reactions a test added through kmock's DSL (`emu[...] << 409`); what
none of them answers is served here from the store, like an API server would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp.web
import attrs
import kmock
import yaml

from tests.k8s_emulator import openapi, resources
from tests.k8s_emulator.controllers import DEPLOYMENTS, DeploymentController, evict
from tests.k8s_emulator.patches import PatchError, apply
from tests.k8s_emulator.resources import BY_PATH, Resource
from tests.k8s_emulator.selectors import field_selector, label_selector
from tests.k8s_emulator.store import Store, StoreError, now

APPLIED = "remediator.io/applied"
NAMESPACES = BY_PATH[("", "v1", "namespaces")]
_JSON = "application/json"


@dataclass(frozen=True)
class Mutation:
    """One write that changed the store (dry runs are not mutations)."""

    method: str
    plural: str
    namespace: str
    name: str
    subresource: str
    key: str  # the object's remediator.io/applied annotation after the write


@dataclass(frozen=True)
class Delay:
    method: str
    path: re.Pattern[str]
    seconds: float
    after: bool  # delay the answer after the change is made (a client that gives up sees no answer)


@dataclass(frozen=True)
class Target:
    resource: Resource
    namespace: str
    name: str
    subresource: str


def _fail(status: int, reason: str, message: str) -> kmock.KubernetesError:
    return kmock.KubernetesError(status=status, reason=reason, message=message, details={"causes": []})


def _json(obj: Any, status: int = 200) -> aiohttp.web.Response:
    return aiohttp.web.Response(status=status, text=json.dumps(obj), content_type=_JSON)


def _target(path: str) -> Target | None:
    parts = path.strip("/").split("/")
    if parts[0] == "api" and len(parts) >= 3:
        group, version, rest = "", parts[1], parts[2:]
    elif parts[0] == "apis" and len(parts) >= 4:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    namespace = ""
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    resource = BY_PATH.get((group, version, rest[0]))
    if resource is None:
        raise _fail(404, "NotFound", f"the server could not find the requested resource ({path})")
    return Target(resource, namespace, rest[1] if len(rest) > 1 else "", "/".join(rest[2:]))


@attrs.define(kw_only=True, repr=False)
class ClusterEmulator(kmock.KubernetesScaffold):
    store: Store = attrs.field(factory=Store)
    controller: DeploymentController = attrs.field(init=False)
    logs: dict[tuple[str, str, str, bool], list[str]] = attrs.field(factory=dict)
    mutations: list[Mutation] = attrs.field(factory=list)
    delays: list[Delay] = attrs.field(factory=list)
    loop: asyncio.AbstractEventLoop | None = attrs.field(default=None)
    closing: asyncio.Event = attrs.field(factory=asyncio.Event)

    def __attrs_post_init__(self) -> None:
        # The scaffold's own fallbacks are not registered: everything is served by _serve below.
        self.controller = DeploymentController(self.store, self._schedule)

    def _schedule(self, seconds: float, callback: Any) -> None:
        assert self.loop is not None
        self.loop.call_soon_threadsafe(self.loop.call_later, seconds, callback)

    def effects(self, key: str, plural: str = "") -> list[Mutation]:
        """The writes whose result carries the idempotency key: what "exactly one effect" counts."""
        return [m for m in self.mutations if m.key == key and (not plural or m.plural == plural)]

    def slow(self, method: str, path: str, seconds: float, after: bool = True) -> None:
        self.delays.append(Delay(method.upper(), re.compile(path), seconds, after))

    async def __call__(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        if raw.path.rstrip("/") == "/api/v1/namespaces":  # kmock 0.8's path parser fails on this one URL
            return await self._namespaces(raw)
        return await super().__call__(raw)

    async def _namespaces(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        target = Target(NAMESPACES, "", "", "")
        try:
            if raw.method == "POST":
                created = self.store.create(
                    NAMESPACES, "", await raw.json(), raw.query.get("dryRun") == "All"
                )
                self._after_write("POST", target, created, raw.query.get("dryRun") == "All")
                return _json(created, 201)
            return _json(self._list(target, dict(raw.query)))
        except StoreError as err:
            return await self._render_error(_fail(err.status, err.reason, err.message))

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        try:
            return await super()._handle(request)  # reactions a test injected
        except NotImplementedError:
            return await self._serve(request)

    def __repr__(self) -> str:  # kmock's would list every request served so far
        return f"ClusterEmulator({len(self.store.list_all())} objects, {len(self.mutations)} writes)"

    def close(self) -> None:
        """From the emulator's loop: end delays and watches now, so the server stops at once."""
        self.closing.set()
        for listener in list(self.store.listeners):
            listener()

    async def _delay(self, request: kmock.Request, after: bool) -> None:
        for delay in self.delays:
            if (
                delay.after == after
                and delay.method == request.method.value
                and delay.path.search(request.url.path)
            ):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.closing.wait(), delay.seconds)

    async def _serve(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        await self._delay(request, after=False)
        try:
            response = await self._route(request)
        except StoreError as err:
            raise _fail(err.status, err.reason, err.message) from err
        except PatchError as err:
            raise _fail(422, "Invalid", str(err)) from err
        await self._delay(request, after=True)
        return response

    async def _route(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        path, method = request.url.path.rstrip("/") or "/", request.method.value
        if method == "GET" and (found := self._discovery(path)) is not None:
            return _json(found)
        target = _target(path)
        if target is None:
            raise _fail(404, "NotFound", f"the server could not find the requested resource ({path})")
        params = request.params
        dry_run = params.get("dryRun") == "All"
        if method == "GET" and not target.name:
            if params.get("watch") in ("true", "1"):
                return await self._watch(request, target)
            return _json(self._list(target, params))
        if method == "GET":
            return self._get(target, params)
        if method == "POST" and target.subresource == "eviction":
            options = (request.data or {}).get("deleteOptions") or {}
            evict(
                self.store, target.namespace, target.name, dry_run or "All" in (options.get("dryRun") or [])
            )
            return _json({"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 201}, 201)
        if method == "POST":
            created = self.store.create(target.resource, target.namespace, request.data or {}, dry_run)
            self._after_write(method, target, created, dry_run)
            return _json(created, 201)
        if method == "DELETE":
            options = request.data if isinstance(request.data, dict) else {}
            dry_run = dry_run or "All" in (options.get("dryRun") or [])
            gone = self.store.delete(
                target.resource, target.namespace, target.name, dry_run, options.get("preconditions")
            )
            self._after_write(method, target, gone, dry_run)
            return _json(gone)
        if method in ("PUT", "PATCH"):
            return self._write(request, target, dry_run)
        raise _fail(405, "MethodNotAllowed", f"{method} is not supported on {path}")

    def _discovery(self, path: str) -> dict[str, Any] | None:
        if path == "/api":
            return resources.api_versions()
        if path == "/apis":
            return resources.api_group_list()
        if path == "/version":
            return {
                "major": "1",
                "minor": "37",
                "gitVersion": "v1.37.0-remediator-emulator",
                "platform": "linux/amd64",
            }
        if path.startswith("/openapi/"):
            return openapi.document(path)
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) == 2:
            return resources.api_resource_list("", parts[1])
        if parts[0] == "apis" and len(parts) == 2:
            versions = resources.groups().get(parts[1])
            return resources.api_group(parts[1], versions) if versions else None
        if parts[0] == "apis" and len(parts) == 3:
            return resources.api_resource_list(parts[1], parts[2])
        return None

    def _matching(self, target: Target, params: Mapping[str, str], obj: dict[str, Any]) -> bool:
        return label_selector(params.get("labelSelector", ""))(obj) and field_selector(
            params.get("fieldSelector", "")
        )(obj)

    def _list(self, target: Target, params: Mapping[str, str]) -> dict[str, Any]:
        res = target.resource
        items = [
            obj
            for obj in self.store.select(
                res, target.namespace if res.namespaced and target.namespace else None
            )
            if self._matching(target, params, obj)
        ]
        return {
            "kind": f"{res.kind}List",
            "apiVersion": res.api_version,
            "metadata": {"resourceVersion": str(self.store.resource_version)},
            "items": items,
        }

    def _get(self, target: Target, params: Mapping[str, str]) -> aiohttp.web.StreamResponse:
        obj = self.store.require(target.resource, target.namespace, target.name)
        if target.subresource == "log":
            return aiohttp.web.Response(text=self._log(obj, params), content_type="text/plain")
        if target.subresource == "scale":
            return _json(self._scale(obj))
        return _json(obj)

    def _log(self, pod: dict[str, Any], params: Mapping[str, str]) -> str:
        names = [c["name"] for c in pod["spec"]["containers"]]
        container = params.get("container") or (names[0] if len(names) == 1 else "")
        if container not in names:
            pod_name = pod["metadata"]["name"]
            raise _fail(
                400,
                "BadRequest",
                f"a container name must be specified for pod {pod_name}, choose one of: {names}",
            )
        previous = params.get("previous") == "true"
        lines = self.logs.get((pod["metadata"]["namespace"], pod["metadata"]["name"], container, previous))
        if lines is None and previous:
            raise _fail(
                400,
                "BadRequest",
                f'previous terminated container "{container}" in pod "{pod["metadata"]["name"]}" not found',
            )
        lines = lines or []
        if "tailLines" in params:
            lines = lines[-int(params["tailLines"]) :] if int(params["tailLines"]) else []
        return "".join(f"{line}\n" for line in lines)

    def _scale(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        selector = obj["spec"].get("selector", {}).get("matchLabels", {})
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            },
            "spec": {"replicas": obj["spec"].get("replicas", 1)},
            "status": {
                "replicas": obj.get("status", {}).get("replicas", 0),
                "selector": ",".join(f"{k}={v}" for k, v in selector.items()),
            },
        }

    def _write(self, request: kmock.Request, target: Target, dry_run: bool) -> aiohttp.web.StreamResponse:
        res, ns, name, sub = target.resource, target.namespace, target.name, target.subresource
        content_type = request.headers.get("Content-Type", _JSON)
        body = self._body(request, content_type)
        live = self.store.get(res, ns, name)
        if "apply-patch" in content_type:
            return self._server_side_apply(request, target, live, body, dry_run)
        if live is None:
            raise StoreError(404, "NotFound", f'{res.plural} "{name}" not found')
        if sub == "scale":
            scale = body if request.method.value == "PUT" else apply(self._scale(live), content_type, body)
            rv = scale.get("metadata", {}).get("resourceVersion")
            updated = {**live, "spec": {**live["spec"], "replicas": scale["spec"]["replicas"]}}
            updated["metadata"] = {
                **live["metadata"],
                "resourceVersion": rv or live["metadata"]["resourceVersion"],
            }
            result = self.store.replace(res, ns, name, updated, dry_run)
            self._after_write(request.method.value, target, result, dry_run, live)
            return _json(self._scale(result))
        wanted = body if request.method.value == "PUT" else apply(live, content_type, body)
        if request.method.value == "PATCH" and wanted.get("metadata", {}).get("resourceVersion") is None:
            wanted.setdefault("metadata", {})["resourceVersion"] = live["metadata"]["resourceVersion"]
        result = self.store.replace(res, ns, name, wanted, dry_run, status=sub == "status")
        self._after_write(request.method.value, target, result, dry_run, live)
        return _json(result)

    @staticmethod
    def _body(request: kmock.Request, content_type: str) -> Any:
        try:
            return (
                yaml.safe_load(request.text) if "yaml" in content_type else json.loads(request.text or "null")
            )
        except (ValueError, yaml.YAMLError) as err:
            raise _fail(400, "BadRequest", f"the request body is not valid: {err}") from err

    def _server_side_apply(
        self, request: kmock.Request, target: Target, live: dict[str, Any] | None, body: Any, dry_run: bool
    ) -> aiohttp.web.StreamResponse:
        res, manager = target.resource, request.params.get("fieldManager", "")
        if not manager:
            raise _fail(
                400, "BadRequest", "PATCH, application/apply-patch+yaml requires fieldManager to be set"
            )
        if not isinstance(body, dict) or (body.get("apiVersion"), body.get("kind")) != (
            res.api_version,
            res.kind,
        ):
            raise _fail(400, "BadRequest", f"the applied object must be a {res.api_version} {res.kind}")
        if body.get("metadata", {}).get("name") != target.name:
            raise _fail(400, "BadRequest", f"the name of the applied object does not match {target.name}")
        entry = {
            "manager": manager,
            "operation": "Apply",
            "apiVersion": res.api_version,
            "time": now(),
            "fieldsType": "FieldsV1",
            "fieldsV1": {},
        }
        if live is None:
            body["metadata"]["managedFields"] = [entry]
            created = self.store.create(res, target.namespace, body, dry_run)
            self._after_write("PATCH", target, created, dry_run)
            return _json(created, 201)
        merged = apply(live, "apply-patch", body)
        merged["metadata"]["managedFields"] = live["metadata"].get("managedFields", [])
        if merged != live:  # re-applying the same configuration changes nothing, not even managedFields
            others = [m for m in live["metadata"].get("managedFields", []) if m.get("manager") != manager]
            merged["metadata"]["managedFields"] = [*others, entry]
        result = self.store.replace(res, target.namespace, target.name, merged, dry_run)
        self._after_write("PATCH", target, result, dry_run, live)
        return _json(result)

    def _after_write(
        self,
        method: str,
        target: Target,
        obj: dict[str, Any],
        dry_run: bool,
        before: dict[str, Any] | None = None,
    ) -> None:
        """Record the write and run the controllers, unless it was a dry run or changed nothing."""
        if dry_run or (
            before is not None and before["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]
        ):
            return
        key = (obj["metadata"].get("annotations") or {}).get(APPLIED, "")
        self.mutations.append(
            Mutation(
                method,
                target.resource.plural,
                target.namespace,
                obj["metadata"]["name"],
                target.subresource,
                key,
            )
        )
        if target.resource == DEPLOYMENTS and method != "DELETE" and target.subresource != "status":
            current = self.store.get(DEPLOYMENTS, target.namespace, obj["metadata"]["name"])
            if current is not None:
                self.controller.sync(current)

    async def _watch(self, request: kmock.Request, target: Target) -> aiohttp.web.StreamResponse:
        assert self.loop is not None and request._raw_request is not None
        params, res = request.params, target.resource
        deadline = self.loop.time() + float(params.get("timeoutSeconds", 1800))
        wake = asyncio.Event()
        loop = self.loop

        def listener() -> None:
            loop.call_soon_threadsafe(wake.set)

        response = aiohttp.web.StreamResponse(headers={"Content-Type": _JSON})
        await response.prepare(request._raw_request)
        since = params.get("resourceVersion", "")
        cursor = self.store.resource_version
        pending: list[tuple[str, dict[str, Any]]] = []
        if since in ("", "0"):
            pending = [("ADDED", obj) for obj in self._list(target, params)["items"]]
            if params.get("sendInitialEvents") == "true":  # the watch-list protocol ends them with a bookmark
                mark = {"resourceVersion": str(cursor), "annotations": {"k8s.io/initial-events-end": "true"}}
                pending.append(
                    ("BOOKMARK", {"kind": res.kind, "apiVersion": res.api_version, "metadata": mark})
                )
        else:
            cursor = int(since)
        self.store.listeners.append(listener)
        try:
            while True:
                wake.clear()  # before scanning, so a write that lands meanwhile wakes the next wait
                for event in [e for e in self.store.events if e.rv > cursor]:
                    cursor = event.rv
                    in_ns = not target.namespace or event.obj["metadata"].get("namespace") == target.namespace
                    if event.resource == res and in_ns and self._matching(target, params, event.obj):
                        pending.append((event.type, event.obj))
                for kind, obj in pending:
                    await response.write(json.dumps({"type": kind, "object": obj}).encode() + b"\n")
                pending = []
                remaining = deadline - loop.time()
                if remaining <= 0 or self.closing.is_set():
                    break
                try:
                    await asyncio.wait_for(wake.wait(), timeout=remaining)
                except TimeoutError:
                    break
        except ConnectionResetError:
            return response  # the client went away
        finally:
            self.store.listeners.remove(listener)
        await response.write_eof()
        return response
