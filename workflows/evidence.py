"""What the evidence gatherer reads about an alert: probe, metrics, Kubernetes state and logs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class ProbeResult(BaseModel):
    url: str
    ok: bool
    status: int | None = None
    latency_ms: float | None = None
    error: str = ""


class MetricSample(BaseModel):
    query: str
    kind: Literal["instant", "range"]
    value: float | None = None
    points: list[tuple[float, float]] = []
    error: str = ""


def _as_utc(value: datetime) -> datetime:
    """Kubernetes and Prometheus times are UTC; a naive time is read as UTC so times compare."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]


class KubeModel(BaseModel):
    """Kubernetes-shaped reads accept the API's camelCase names as well as ours."""

    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, validate_by_alias=True)


class KubeEvent(KubeModel):
    type: str = "Normal"
    reason: str
    message: str = ""
    object: str = ""  # kind/name of the involved object, as `kubectl get events` shows it
    count: int = 1
    first_timestamp: UtcDatetime | None = None
    last_timestamp: UtcDatetime | None = None


class ContainerState(KubeModel):
    """A container's lastState.terminated: why and when its previous run ended."""

    reason: str = ""
    exit_code: int | None = None
    started_at: UtcDatetime | None = None
    finished_at: UtcDatetime | None = None


class PodStatus(KubeModel):
    name: str
    phase: str = "Running"
    ready: bool = True
    restarts: int = 0
    node: str = ""
    waiting_reason: str = ""  # state.waiting.reason, e.g. CrashLoopBackOff, ImagePullBackOff
    last_state: ContainerState | None = None


class NodeStatus(KubeModel):
    name: str
    ready: bool = True
    conditions: list[str] = []  # the conditions that are True besides Ready, e.g. DiskPressure


class DeploymentRevision(KubeModel):
    name: str
    revision: int | None = None
    image: str = ""
    changed_at: UtcDatetime | None = None


class LogTemplate(BaseModel):
    """One Drain3 template: many log lines that differ only in their variable parts."""

    template: str
    count: int
    # Up to three real lines (capped): the first, then lines naming other peers, which masks hide.
    examples: list[str] = []
    level: Literal["error", "warning", "info", ""] = ""
    first_line: int
    last_line: int
    first_seen: UtcDatetime | None = None
    last_seen: UtcDatetime | None = None
    new: bool = False  # not seen in the baseline ("last healthy") window


class LogSummary(BaseModel):
    """Logs as templates with counts: bounded in size whatever the size of the raw logs."""

    total_lines: int = 0
    templates: list[LogTemplate] = []
    omitted_templates: int = 0
    omitted_lines: int = 0
    baseline_lines: int = 0

    def anomalies(self) -> list[LogTemplate]:
        return [t for t in self.templates if t.new or t.level == "error"]

    def render(self) -> str:
        """Compact text for people and prompts: one line per template."""
        lines = [f"{t.count}x{' NEW' if t.new else ''} {t.template}".rstrip() for t in self.templates]
        if self.omitted_templates:
            lines.append(f"... {self.omitted_templates} rarer templates ({self.omitted_lines} lines) omitted")
        return "\n".join(lines)


class Evidence(BaseModel):
    probe: ProbeResult | None = None
    metrics: list[MetricSample] = []
    events: list[KubeEvent] = []
    pods: list[PodStatus] = []
    nodes: list[NodeStatus] = []
    deployments: list[DeploymentRevision] = []
    logs: LogSummary | None = None
    notes: list[str] = []
    collected_at: UtcDatetime | None = None

    def summary(self) -> str:
        parts: list[str] = []
        if self.probe:
            state = "healthy" if self.probe.ok else f"unhealthy ({self.probe.error or self.probe.status})"
            parts.append(f"probe {self.probe.url}: {state}")
        for m in self.metrics:
            shown = m.error or (f"{m.value:g}" if m.value is not None else f"{len(m.points)} points")
            parts.append(f"{m.kind} {m.query} = {shown}")
        warnings = [e for e in self.events if e.type == "Warning"]
        if self.events:
            reasons = sorted({e.reason for e in warnings})
            parts.append(f"{len(self.events)} events ({len(warnings)} warnings: {', '.join(reasons) or '-'})")
        for pod in self.pods:
            last = f", last {pod.last_state.reason} ({pod.last_state.exit_code})" if pod.last_state else ""
            parts.append(f"pod {pod.name} {pod.waiting_reason or pod.phase}, {pod.restarts} restarts{last}")
        parts.extend(f"node {n.name} NotReady" for n in self.nodes if not n.ready)
        parts.extend(f"deployment {d.name} revision {d.revision} at {d.changed_at}" for d in self.deployments)
        if self.logs:
            parts.append(
                f"logs: {self.logs.total_lines} lines in {len(self.logs.templates)} templates, "
                f"{len(self.logs.anomalies())} anomalous"
            )
        parts.extend(self.notes)
        return "; ".join(parts) or "no evidence sources configured for this alert"
