"""Kubernetes evidence for an alert: its workload's pods, events, rollouts, nodes and log templates.

Everything is read through the read tools (activities/kubernetes/reads.py), the same code and cluster
connection the LLM investigation uses, and logs only ever as Drain3 templates. Each read fails on its
own: a refused namespace or an unreachable API server becomes a note, and the rest still arrives.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from pydantic import BaseModel

from activities.kubernetes.reads import KubernetesReads
from workflows.alerts import Alert
from workflows.evidence import Evidence, NodeStatus, PodStatus
from workflows.kube_reads import (
    DeploymentsQuery,
    DescribeQuery,
    Description,
    EventsQuery,
    LogsQuery,
    PodsQuery,
    RolloutHistoryQuery,
)

T = TypeVar("T")
Q = TypeVar("Q", bound=BaseModel)

LOG_LINES = 1000  # templates keep the size bounded; more lines only sharpen the counts
MAX_EVENTS = 200
MAX_NODES = 3
_OWNER = re.compile(r"ReplicaSet/([a-z0-9.-]+)-[a-z0-9]+\b")  # <deployment>-<pod-template-hash>


@dataclass
class Workload:
    """What the alert's kube-state-metrics labels name: a namespace plus a pod or a Deployment."""

    namespace: str
    pod: str = ""
    deployment: str = ""
    container: str = ""
    node: str = ""

    @classmethod
    def of(cls, alert: Alert) -> Workload | None:
        labels = alert.labels
        found = cls(
            namespace=labels.get("namespace", ""),
            pod=labels.get("pod", ""),
            deployment=labels.get("deployment", ""),
            container=labels.get("container", ""),
            node=labels.get("node", ""),
        )
        return found if found.namespace and (found.pod or found.deployment) else None

    def owns(self, name: str) -> bool:
        """Whether an object of this name belongs to the workload (its pods, ReplicaSets, itself)."""
        if name == self.pod:
            return True
        return bool(self.deployment) and (name == self.deployment or name.startswith(f"{self.deployment}-"))


def node_status(name: str, conditions: list[str]) -> NodeStatus | None:
    """From `Type=Status (Reason): message` lines: ready, and the other conditions that are True.

    None when the node reports no Ready condition at all: unknown is not the same as NotReady.
    """
    states = dict(c.split(" ", 1)[0].split("=", 1) for c in conditions if "=" in c.split(" ", 1)[0])
    if "Ready" not in states:
        return None
    true = [kind for kind, status in states.items() if status == "True" and kind != "Ready"]
    return NodeStatus(name=name, ready=states["Ready"] == "True", conditions=true)


@dataclass
class KubeEvidence:
    """Gathers into one Evidence; every read runs on a thread, as the synchronous client needs."""

    reads: KubernetesReads
    evidence: Evidence

    async def _read(self, what: str, read: Callable[[Q], T], query: Q, note: bool = True) -> T | None:
        # run_in_executor, unlike asyncio.to_thread, does not carry the activity context into the
        # thread, so the client does not heartbeat from there (async activities heartbeat on the loop).
        try:
            return await asyncio.get_running_loop().run_in_executor(None, read, query)
        except Exception as err:  # evidence is best effort: a failed read is a note, never a failed gather
            if note:
                self.evidence.notes.append(f"kubernetes {what}: {getattr(err, 'message', None) or err}")
            return None

    async def _describe_pod(self, w: Workload) -> Description | None:
        if not w.pod:
            return None
        return await self._read(
            "pod", self.reads.describe, DescribeQuery(namespace=w.namespace, kind="Pod", name=w.pod)
        )

    async def gather(self, w: Workload) -> None:
        ns, reads = w.namespace, self.reads
        pods, events, described, deployments = await asyncio.gather(
            self._read("pods", reads.pods, PodsQuery(namespace=ns, limit=500)),
            self._read("events", reads.events, EventsQuery(namespace=ns, limit=MAX_EVENTS)),
            self._describe_pod(w),
            self._read("deployments", reads.deployments, DeploymentsQuery(namespace=ns)),
        )
        if (
            described
            and not w.deployment
            and (owner := _OWNER.search(described.facts.get("controlled by", "")))
        ):
            w.deployment = owner.group(1)
        mine = [p for p in pods.pods if w.owns(p.name)] if pods else []
        self.evidence.pods = mine
        if events:
            self.evidence.events = [e for e in events.events if w.owns(e.object.split("/")[-1])]
        for found in deployments.deployments if deployments else []:
            if found.name == w.deployment and found.problems:
                self.evidence.notes.append(f"deployment {found.name}: " + "; ".join(found.problems))
        nodes = list(
            dict.fromkeys([w.node] * bool(w.node) + [p.node for p in mine if p.node and not p.ready])
        )
        await asyncio.gather(
            self._rollouts(w), self._logs(w, mine), *(self._node(n) for n in nodes[:MAX_NODES])
        )

    async def _rollouts(self, w: Workload) -> None:
        if not w.deployment:
            return
        query = RolloutHistoryQuery(namespace=w.namespace, deployment=w.deployment)
        if history := await self._read("rollout history", self.reads.rollout_history, query):
            self.evidence.deployments = history.revisions

    async def _logs(self, w: Workload, pods: list[PodStatus]) -> None:
        """The worst pod's log; after a crash, its previous run, which holds the reason it died."""
        worst = next((p for p in pods if p.name == w.pod), pods[0] if pods else None)
        if worst is None:
            return
        query = LogsQuery(namespace=w.namespace, pod=worst.name, container=w.container, tail_lines=LOG_LINES)
        what = f"logs of {worst.name}"
        if worst.restarts:
            previous = query.model_copy(update={"previous": True})
            # A pod that restarted without a previous log (deleted, rotated) falls back to the current one.
            if summary := await self._read(what, self.reads.log_templates, previous, note=False):
                self.evidence.logs = summary
                return
        self.evidence.logs = await self._read(what, self.reads.log_templates, query)

    async def _node(self, name: str) -> None:
        described = await self._read(
            f"node {name}", self.reads.describe, DescribeQuery(kind="Node", name=name)
        )
        if described is None:
            return
        if status := node_status(name, described.conditions):
            self.evidence.nodes.append(status)
        self.evidence.events += described.events
