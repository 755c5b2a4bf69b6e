"""Inputs and results of the Kubernetes read tools (activities `kube_<tool>`), compact for diagnosis.

Results reuse the evidence models (PodStatus, KubeEvent, DeploymentRevision) so what a tool
returns can go straight into `Evidence`. Every query names its namespace: the worker refuses one
outside REMEDIATOR_KUBE_NAMESPACES before it calls the API.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from workflows.actions import KubeName
from workflows.evidence import DeploymentRevision, KubeEvent, PodStatus, UtcDatetime

Namespace = Annotated[
    str, Field(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", description="where to read")
]


class PodsQuery(BaseModel):
    namespace: Namespace
    label_selector: str = Field(default="", max_length=1000, description="e.g. app=web,tier!=cache")
    limit: int = Field(default=50, ge=1, le=500)


class PodList(BaseModel):
    namespace: str
    pods: list[PodStatus] = []
    total: int = Field(default=0, description="pods matching, of which the first `limit` are listed")


class DeploymentsQuery(BaseModel):
    namespace: Namespace
    label_selector: str = Field(default="", max_length=1000)


class DeploymentHealth(BaseModel):
    name: str
    replicas: int = 0
    ready: int = 0
    updated: int = 0
    available: int = 0
    revision: int | None = None
    paused: bool = False
    images: list[str] = []
    problems: list[str] = Field(default=[], description="conditions that are not as they should be")


class DeploymentList(BaseModel):
    namespace: str
    deployments: list[DeploymentHealth] = []


class EventsQuery(BaseModel):
    namespace: Namespace
    kind: str = Field(default="", max_length=63, description="only events about this kind, e.g. Pod")
    name: str = Field(default="", max_length=253, description="only events about the object of this name")
    warnings_only: bool = False
    limit: int = Field(default=50, ge=1, le=500)


class EventList(BaseModel):
    namespace: str
    events: list[KubeEvent] = Field(default=[], description="newest first")
    total: int = 0


class LogsQuery(BaseModel):
    namespace: Namespace
    pod: KubeName
    container: str = Field(default="", max_length=63, description="needed when the pod has several")
    tail_lines: int = Field(default=200, ge=1, le=5000)
    previous: bool = Field(default=False, description="the container's previous (crashed) run")


class PodLogs(BaseModel):
    pod: str
    container: str
    previous: bool
    lines: list[str] = []
    clipped_lines: int = Field(default=0, description="lines cut to the length limit")


class DescribeQuery(BaseModel):
    namespace: str = Field(default="", description="empty for a Node")
    kind: Literal["Pod", "Deployment", "ReplicaSet", "Node"]
    name: KubeName

    @model_validator(mode="after")
    def _namespace_for_namespaced_kinds(self) -> DescribeQuery:
        if (self.kind == "Node") == bool(self.namespace):
            raise ValueError("a Node has no namespace; a Pod, Deployment or ReplicaSet needs one")
        return self


class Description(BaseModel):
    """What `kubectl describe` shows that a diagnosis needs, as data."""

    kind: str
    name: str
    namespace: str = ""
    created: UtcDatetime | None = None
    labels: dict[str, str] = {}
    facts: dict[str, str] = Field(default={}, description="e.g. replicas, image per container, node, phase")
    conditions: list[str] = Field(default=[], description="Type=Status (Reason): message")
    events: list[KubeEvent] = []


class RolloutHistoryQuery(BaseModel):
    namespace: Namespace
    deployment: KubeName


class RolloutHistory(BaseModel):
    deployment: str
    current_revision: int | None = None
    revisions: list[DeploymentRevision] = Field(default=[], description="oldest first")
