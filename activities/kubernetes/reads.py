"""Kubernetes read tools for diagnosis: pods, deployments, events, logs, describe, rollout history.

Each is a synchronous activity on the official client that returns a compact typed model (the
shapes of workflows/kube_reads.py), never the raw objects: a pod list is a few lines per pod, not
the kilobytes of its spec. They are registered as `kube_<tool>`, the names the investigation offers
the model (workflows/investigation_tools.py); `kube_log_templates` hands logs on only as Drain3 templates.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from temporalio import activity

from activities.kubernetes.cluster import REVISION, KubeCluster, owned_replicasets
from activities.logs import summarize
from workflows.activity_names import (
    KUBE_DEPLOYMENTS,
    KUBE_DESCRIBE,
    KUBE_EVENTS,
    KUBE_LOG_TEMPLATES,
    KUBE_LOGS,
    KUBE_PODS,
    KUBE_ROLLOUT_HISTORY,
)
from workflows.evidence import ContainerState, DeploymentRevision, KubeEvent, LogSummary, PodStatus
from workflows.kube_reads import (
    DeploymentHealth,
    DeploymentList,
    DeploymentsQuery,
    DescribeQuery,
    Description,
    EventList,
    EventsQuery,
    LogsQuery,
    PodList,
    PodLogs,
    PodsQuery,
    RolloutHistory,
    RolloutHistoryQuery,
)

MAX_LINE_CHARS = 1000  # a log line longer than this is clipped: one JSON blob must not fill the context
_EPOCH = "0001-01-01T00:00:00Z"


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = obj.get("metadata") or {}
    return meta


def pod_status(pod: dict[str, Any]) -> PodStatus:
    status = pod.get("status") or {}
    containers = status.get("containerStatuses") or []
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
    )
    waiting = next(
        (c["state"]["waiting"].get("reason", "") for c in containers if "waiting" in c.get("state", {})), ""
    )
    crashed: dict[str, Any] = max(containers, key=lambda c: c.get("restartCount", 0), default={})
    last = (crashed.get("lastState") or {}).get("terminated")
    return PodStatus(
        name=_meta(pod)["name"],
        phase="Terminating" if _meta(pod).get("deletionTimestamp") else status.get("phase", "Unknown"),
        ready=ready,
        restarts=sum(c.get("restartCount", 0) for c in containers),
        node=(pod.get("spec") or {}).get("nodeName", ""),
        waiting_reason=waiting,
        last_state=ContainerState.model_validate(last) if last else None,
    )


def _problems(deployment: dict[str, Any]) -> list[str]:
    status = deployment.get("status") or {}
    problems = [
        f"{c['type']}={c['status']} ({c.get('reason', '')}): {c.get('message', '')}".rstrip(": ")
        for c in status.get("conditions") or []
        if (c["type"] in ("Available", "Progressing")) != (c["status"] == "True")
    ]
    if status.get("observedGeneration", 0) < _meta(deployment).get("generation", 0):
        problems.append("the controller has not yet seen the latest spec")
    return problems


def deployment_health(deployment: dict[str, Any]) -> DeploymentHealth:
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    revision = (_meta(deployment).get("annotations") or {}).get(REVISION)
    return DeploymentHealth(
        name=_meta(deployment)["name"],
        replicas=spec.get("replicas", 1),
        ready=status.get("readyReplicas", 0),
        updated=status.get("updatedReplicas", 0),
        available=status.get("availableReplicas", 0),
        revision=int(revision) if revision else None,
        paused=bool(spec.get("paused")),
        images=[c["image"] for c in spec["template"]["spec"]["containers"]],
        problems=_problems(deployment),
    )


def kube_event(event: dict[str, Any]) -> KubeEvent:
    involved = event.get("involvedObject") or {}
    first = event.get("firstTimestamp") or event.get("eventTime") or _meta(event).get("creationTimestamp")
    return KubeEvent(
        type=event.get("type", "Normal"),
        reason=event.get("reason", ""),
        message=event.get("message", ""),
        object=f"{involved.get('kind', '')}/{involved.get('name', '')}",
        count=event.get("count") or 1,
        first_timestamp=first,
        last_timestamp=event.get("lastTimestamp") or first,
    )


def _newest_first(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def when(event: dict[str, Any]) -> str:
        return (
            event.get("lastTimestamp")
            or event.get("eventTime")
            or _meta(event).get("creationTimestamp")
            or _EPOCH
        )

    return sorted(events, key=when, reverse=True)


def _conditions(obj: dict[str, Any]) -> list[str]:
    return [
        f"{c['type']}={c['status']}"
        + (f" ({c['reason']})" if c.get("reason") else "")
        + (f": {c['message']}" if c.get("message") else "")
        for c in (obj.get("status") or {}).get("conditions") or []
    ]


def _container_facts(spec: dict[str, Any]) -> dict[str, str]:
    facts = {}
    for c in spec.get("containers") or []:
        resources = c.get("resources") or {}
        limits = ", ".join(f"{k}={v}" for k, v in (resources.get("limits") or {}).items())
        requests = ", ".join(f"{k}={v}" for k, v in (resources.get("requests") or {}).items())
        facts[f"container {c['name']}"] = "; ".join(
            part
            for part in (
                c.get("image", ""),
                f"requests {requests}" * bool(requests),
                f"limits {limits}" * bool(limits),
            )
            if part
        )
    return facts


def _facts(kind: str, obj: dict[str, Any]) -> dict[str, str]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    owners = ", ".join(f"{o['kind']}/{o['name']}" for o in _meta(obj).get("ownerReferences") or [])
    facts = {"controlled by": owners} if owners else {}
    if kind == "Pod":
        pod = pod_status(obj)
        facts |= {
            "phase": pod.phase,
            "node": pod.node,
            "ready": str(pod.ready),
            "restarts": str(pod.restarts),
        }
        facts |= {"waiting": pod.waiting_reason} if pod.waiting_reason else {}
        if pod.last_state:
            facts["last terminated"] = f"{pod.last_state.reason} (exit {pod.last_state.exit_code})"
        return facts | _container_facts(spec)
    if kind == "Node":
        taints = ", ".join(f"{t['key']}:{t['effect']}" for t in spec.get("taints") or [])
        allocatable = ", ".join(f"{k}={v}" for k, v in (status.get("allocatable") or {}).items())
        return facts | {
            "unschedulable": str(bool(spec.get("unschedulable"))),
            "taints": taints or "none",
            "allocatable": allocatable,
            "kubelet": (status.get("nodeInfo") or {}).get("kubeletVersion", ""),
        }
    replicas = (
        f"{spec.get('replicas', 1)} desired, {status.get('readyReplicas', 0)} ready, "
        f"{status.get('availableReplicas', 0)} available"
    )
    revision = (_meta(obj).get("annotations") or {}).get(REVISION, "")
    facts |= {"replicas": replicas, "revision": revision}
    if kind == "Deployment":
        facts["strategy"] = (spec.get("strategy") or {}).get("type", "")
        facts["paused"] = str(bool(spec.get("paused")))
    return facts | _container_facts((spec.get("template") or {}).get("spec") or {})


class KubernetesReads:
    def __init__(self, cluster: KubeCluster) -> None:
        self._cluster = cluster

    def _events(self, namespace: str, kind: str, name: str, warnings_only: bool) -> list[dict[str, Any]]:
        selector = ",".join(
            term
            for term in (
                f"involvedObject.kind={kind}" if kind else "",
                f"involvedObject.name={name}" if name else "",
                "type=Warning" if warnings_only else "",
            )
            if term
        )
        cluster = self._cluster
        if namespace:
            listing = cluster.call(
                f"events in {namespace}",
                cluster.core.list_namespaced_event,
                namespace,
                field_selector=selector or None,
            )
        else:  # a node's events are not in a namespace of our choosing
            listing = cluster.call(
                "events", cluster.core.list_event_for_all_namespaces, field_selector=selector
            )
        return _newest_first(listing.get("items") or [])

    def _listed(
        self, what: str, list_namespaced: Callable[..., Any], query: PodsQuery | DeploymentsQuery
    ) -> list[dict[str, Any]]:
        """The objects a namespaced list call returns for the query's namespace and label selector."""
        self._cluster.allow(query.namespace)
        listing = self._cluster.call(
            f"{what} in {query.namespace}",
            list_namespaced,
            query.namespace,
            label_selector=query.label_selector or None,
        )
        return listing.get("items") or []

    @activity.defn(name=KUBE_PODS)
    def pods(self, query: PodsQuery) -> PodList:
        """Pods with their health, the unhealthy first (not ready, then most restarts)."""
        listing = self._listed("pods", self._cluster.core.list_namespaced_pod, query)
        pods = sorted((pod_status(p) for p in listing), key=lambda p: (p.ready, -p.restarts))
        return PodList(namespace=query.namespace, pods=pods[: query.limit], total=len(pods))

    @activity.defn(name=KUBE_DEPLOYMENTS)
    def deployments(self, query: DeploymentsQuery) -> DeploymentList:
        listing = self._listed("deployments", self._cluster.apps.list_namespaced_deployment, query)
        found = [deployment_health(d) for d in listing]
        return DeploymentList(namespace=query.namespace, deployments=found)

    @activity.defn(name=KUBE_EVENTS)
    def events(self, query: EventsQuery) -> EventList:
        self._cluster.allow(query.namespace)
        found = self._events(query.namespace, query.kind, query.name, query.warnings_only)
        return EventList(
            namespace=query.namespace, events=[kube_event(e) for e in found[: query.limit]], total=len(found)
        )

    def _log_lines(self, query: LogsQuery) -> list[str]:
        self._cluster.allow(query.namespace)
        text = self._cluster.call(
            f"logs of pod {query.namespace}/{query.pod}",
            self._cluster.core.read_namespaced_pod_log,
            query.pod,
            query.namespace,
            container=query.container or None,
            tail_lines=query.tail_lines,
            previous=query.previous,
        )
        return str(text or "").splitlines()[-query.tail_lines :]

    @activity.defn(name=KUBE_LOGS)
    def logs(self, query: LogsQuery) -> PodLogs:
        """The last lines of one container's log, or of its previous run (`previous`, after a crash)."""
        lines = self._log_lines(query)
        return PodLogs(
            pod=query.pod,
            container=query.container,
            previous=query.previous,
            lines=[line[:MAX_LINE_CHARS] for line in lines],
            clipped_lines=sum(len(line) > MAX_LINE_CHARS for line in lines),
        )

    @activity.defn(name=KUBE_LOG_TEMPLATES)
    def log_templates(self, query: LogsQuery) -> LogSummary:
        """The same lines as Drain3 templates with counts: bounded, whatever the size of the log."""
        return summarize("\n".join(self._log_lines(query)))

    @activity.defn(name=KUBE_DESCRIBE)
    def describe(self, query: DescribeQuery) -> Description:
        """One object's facts, conditions and events: what `kubectl describe` shows, as data."""
        cluster, ns, name = self._cluster, query.namespace, query.name
        what = f"{query.kind} {ns + '/' if ns else ''}{name}"
        if query.kind == "Node":
            obj = cluster.call(what, cluster.core.read_node, name)
        else:
            cluster.allow(ns)
            read = {
                "Pod": cluster.core.read_namespaced_pod,
                "Deployment": cluster.apps.read_namespaced_deployment,
                "ReplicaSet": cluster.apps.read_namespaced_replica_set,
            }[query.kind]
            obj = cluster.call(what, read, name, ns)
        events = self._events(ns, query.kind, name, warnings_only=False)
        created = _meta(obj).get("creationTimestamp")
        return Description(
            kind=query.kind,
            name=name,
            namespace=ns,
            created=datetime.fromisoformat(created) if created else None,
            labels=_meta(obj).get("labels") or {},
            facts=_facts(query.kind, obj),
            conditions=_conditions(obj),
            events=[kube_event(e) for e in events[:20]],
        )

    @activity.defn(name=KUBE_ROLLOUT_HISTORY)
    def rollout_history(self, query: RolloutHistoryQuery) -> RolloutHistory:
        """The Deployment's revisions from its ReplicaSets, as `kubectl rollout history` reads them."""
        self._cluster.allow(query.namespace)
        deployment, owned = owned_replicasets(self._cluster, query.namespace, query.deployment)
        revisions = sorted(
            (
                DeploymentRevision(
                    name=_meta(rs)["name"],
                    revision=int((_meta(rs).get("annotations") or {}).get(REVISION, 0)),
                    image=", ".join(c["image"] for c in rs["spec"]["template"]["spec"]["containers"]),
                    changed_at=_meta(rs).get("creationTimestamp"),
                )
                for rs in owned
            ),
            key=lambda r: r.revision or 0,
        )
        current = (_meta(deployment).get("annotations") or {}).get(REVISION)
        return RolloutHistory(
            deployment=query.deployment,
            current_revision=int(current) if current else None,
            revisions=revisions,
        )
