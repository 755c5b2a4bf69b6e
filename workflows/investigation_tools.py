"""What the investigating model may read: read-only tools, each one activity that already exists.

A tool names the arguments the model fills in (always with its reason, shown to people) and builds
the activity input from them and the alert, so that the model never chooses what the alert already
fixes (which URL to probe, which memory to search).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from workflows.activity_names import (
    KUBE_DEPLOYMENTS,
    KUBE_DESCRIBE,
    KUBE_EVENTS,
    KUBE_LOG_TEMPLATES,
    KUBE_PODS,
    KUBE_ROLLOUT_HISTORY,
    MEMORY_SEARCH,
    METRICS_QUERY,
    PROBE_HTTP,
)
from workflows.alerts import Alert
from workflows.evidence import LogSummary, MetricSample, ProbeResult
from workflows.investigation_models import MemoryQuery, MemoryResult, ProbeRequest, PromQuery, ToolSchema
from workflows.kube_reads import (
    DeploymentList,
    DeploymentsQuery,
    DescribeQuery,
    Description,
    EventList,
    EventsQuery,
    LogsQuery,
    PodList,
    PodsQuery,
    RolloutHistory,
    RolloutHistoryQuery,
)


class ToolArgs(BaseModel):
    reason: str = Field(description="why you need this, in one sentence; shown to the on-call engineer")


class PromArgs(ToolArgs):
    query: str = Field(description="PromQL")
    range_minutes: int = Field(default=0, ge=0, le=1440, description="0 for an instant query")


class SearchArgs(ToolArgs):
    text: str = Field(description="what to look for: symptoms, error messages, service names")


class PodsArgs(ToolArgs, PodsQuery):
    pass


class DeploymentsArgs(ToolArgs, DeploymentsQuery):
    pass


class EventsArgs(ToolArgs, EventsQuery):
    pass


class LogsArgs(ToolArgs, LogsQuery):
    pass


class DescribeArgs(ToolArgs, DescribeQuery):
    pass


class RolloutArgs(ToolArgs, RolloutHistoryQuery):
    pass


def _as(query: type[BaseModel]) -> Callable[[ToolArgs, Alert], BaseModel]:
    """The activity input is the model's arguments without the reason."""
    return lambda args, alert: query.model_validate(args.model_dump(exclude={"reason"}))


def _probe_url(alert: Alert) -> str:
    return alert.lookup("probe_url") or alert.lookup("health_url")


@dataclass(frozen=True)
class Tool:
    """A read-only tool: the arguments the model fills in and the activity that answers."""

    name: str
    description: str
    args: type[ToolArgs]
    activity: str
    # Builds the activity input from the model's arguments and the alert, so that the model never
    # chooses what the alert already fixes (which URL to probe, which memory to search).
    build: Callable[[Any, Alert], BaseModel]
    result_type: type[BaseModel]
    needs: Callable[[Alert], bool] = lambda alert: True

    def schema(self) -> ToolSchema:
        return ToolSchema(
            name=self.name, description=self.description, parameters=self.args.model_json_schema()
        )


TOOLS: dict[str, Tool] = {
    tool.name: tool
    for tool in [
        Tool(
            "prometheus_query",
            "Run a PromQL query (instant, or a range over the last minutes) against the metrics server.",
            PromArgs,
            METRICS_QUERY,
            lambda a, alert: PromQuery(query=a.query, range_minutes=a.range_minutes),
            MetricSample,
        ),
        Tool(
            "http_probe",
            "Probe the alert's own health URL again now: status code and latency.",
            ToolArgs,
            PROBE_HTTP,
            lambda a, alert: ProbeRequest(url=_probe_url(alert)),
            ProbeResult,
            needs=lambda alert: bool(_probe_url(alert)),
        ),
        Tool(
            "similar_incidents",
            "Search past incidents: their alert, diagnosis, actions and outcome.",
            SearchArgs,
            MEMORY_SEARCH,
            lambda a, alert: MemoryQuery(text=a.text, kind="incident"),
            MemoryResult,
        ),
        Tool(
            "search_runbooks",
            "Search the team's Markdown runbooks.",
            SearchArgs,
            MEMORY_SEARCH,
            lambda a, alert: MemoryQuery(text=a.text, kind="runbook"),
            MemoryResult,
        ),
        Tool(
            "kube_pods",
            "Pods of a namespace: phase, readiness, restarts, waiting reason, last termination (reason, exit code).",
            PodsArgs,
            KUBE_PODS,
            _as(PodsQuery),
            PodList,
        ),
        Tool(
            "kube_deployments",
            "Deployments of a namespace: replicas ready and available, revision, images, failing conditions.",
            DeploymentsArgs,
            KUBE_DEPLOYMENTS,
            _as(DeploymentsQuery),
            DeploymentList,
        ),
        Tool(
            "kube_events",
            "Events of a namespace, newest first.",
            EventsArgs,
            KUBE_EVENTS,
            _as(EventsQuery),
            EventList,
        ),
        Tool(
            "kube_describe",
            "One Pod, Deployment, ReplicaSet or Node as `kubectl describe` shows it: facts, conditions, events.",
            DescribeArgs,
            KUBE_DESCRIBE,
            _as(DescribeQuery),
            Description,
        ),
        Tool(
            "kube_rollout_history",
            "A Deployment's revisions with their images and times: what changed, and when.",
            RolloutArgs,
            KUBE_ROLLOUT_HISTORY,
            _as(RolloutHistoryQuery),
            RolloutHistory,
        ),
        # Logs reach the model only as Drain3 templates with counts, never as raw lines.
        Tool(
            "kube_log_templates",
            "A container's recent log (or its previous, crashed run) as templates with counts and new ones flagged.",
            LogsArgs,
            KUBE_LOG_TEMPLATES,
            _as(LogsQuery),
            LogSummary,
        ),
    ]
}
