"""Data that crosses process boundaries: API -> Temporal -> worker -> activities.

Everything here is pydantic so the pydantic data converter writes readable JSON into history,
which is what people see in the Temporal Web UI.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from workflows.actions import ActionSpec, Risk
from workflows.playbook import PinnedPlaybook
from workflows.policy import Policy


class Phase(StrEnum):
    RECEIVED = "Received"
    GATHERING = "Gathering"
    DIAGNOSING = "Diagnosing"
    AWAITING_APPROVAL = "AwaitingApproval"
    EXECUTING = "Executing"
    VERIFYING = "Verifying"
    RESOLVED = "Resolved"
    ROLLED_BACK = "RolledBack"
    ESCALATED = "Escalated"
    REJECTED = "Rejected"
    CANCELLED = "Cancelled"
    FAILED = "Failed"


TERMINAL_PHASES = frozenset(
    {Phase.RESOLVED, Phase.ROLLED_BACK, Phase.ESCALATED, Phase.REJECTED, Phase.CANCELLED, Phase.FAILED}
)


def label_fingerprint(labels: dict[str, str]) -> str:
    """First 16 hex characters of sha256 over the sorted labels (the guide's contract)."""
    canonical = json.dumps(sorted(labels.items()), separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


_FNV_OFFSET, _FNV_PRIME, _U64 = 14695981039346656037, 1099511628211, (1 << 64) - 1


def prometheus_fingerprint(labels: dict[str, str]) -> str:
    """The fingerprint Alertmanager and Grafana send: FNV-1a 64 over sorted names and values, each
    followed by the 0xff separator (prometheus/common model.LabelSet.Fingerprint), as 16 hex digits."""
    value = _FNV_OFFSET
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode() + b"\xff":
                value = ((value ^ byte) * _FNV_PRIME) & _U64
    return f"{value:016x}"


def fingerprint_matches(fingerprint: str, labels: dict[str, str]) -> bool:
    """A sender's fingerprint is only a name for its labels: one alert cannot borrow another's."""
    return fingerprint in (prometheus_fingerprint(labels), label_fingerprint(labels))


class Alert(BaseModel):
    """One alert, normalised from whichever source sent it."""

    model_config = ConfigDict(frozen=True)

    fingerprint: str
    status: Literal["firing", "resolved"] = "firing"
    labels: dict[str, str]
    annotations: dict[str, str] = {}
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    generator_url: str = ""
    source: Literal["alertmanager", "grafana", "generic", "manual"] = "generic"
    # Set on a slim notification (`notice`): the labels' sha256, standing in for labels and annotations.
    digest: str = ""
    # How many identical notifications this one stands for: the API coalesces re-fires that arrive
    # within REMEDIATOR_ALERT_COALESCE_WINDOW into one signal, and the incident counts them all.
    repeats: int = Field(default=1, ge=1)

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "unknown")

    @property
    def service(self) -> str:
        # `job` comes last: on kube-state-metrics alerts it names the exporter, not the workload.
        for key in ("service", "app", "deployment", "container", "job"):
            if value := self.labels.get(key):
                return value
        return ""

    @property
    def severity(self) -> str:
        return self.labels.get("severity", "")

    @property
    def environment(self) -> str:
        return self.labels.get("environment") or self.labels.get("env", "")

    @property
    def workflow_id(self) -> str:
        return f"incident-{self.fingerprint}"

    def lookup(self, key: str) -> str:
        """A value from the labels, else the annotations, else empty."""
        return self.labels.get(key) or self.annotations.get(key, "")

    def labels_digest(self) -> str:
        return hashlib.sha256(
            json.dumps(sorted(self.labels.items()), separators=(",", ":")).encode()
        ).hexdigest()

    def notice(self) -> Alert:
        """What a signal to an incident carries: status, timestamps and the labels' digest.

        The incident has the alert's text from its start; a re-fire repeating it (annotations of any
        size, every few minutes for days) would only grow the history towards Temporal's limits.
        """
        slim = {"labels": {}, "annotations": {}, "generator_url": "", "digest": self.labels_digest()}
        return self.model_copy(update=slim)


Via = Literal["api", "temporal", "slack", "board"]


class Decision(BaseModel):
    """Payload of the `approve` and `reject` signals: {"approver": "...", "reason": "..."}.

    Signals come from the Temporal CLI, a trusted operator's path: the workflow marks them
    `via: temporal` whatever the payload says. The API decides through the `decide` update instead,
    with the approver taken from the caller's credential.
    """

    approver: str = Field(min_length=1, max_length=200)
    reason: str = Field(default="", max_length=2000)
    via: Via = "temporal"


class DecisionRequest(Decision):
    """Payload of the `decide` update, which gives the API and CLI a synchronous answer.

    The limits are the authenticated approver's (from its key or OIDC groups); empty means any.
    """

    approve: bool
    risks: list[Risk] = []
    environments: list[str] = []
    services: list[str] = []  # globs


class Approval(Decision):
    approved: bool
    at: datetime
    risks: list[Risk] = []  # the risk classes this approver may decide; empty: any


# --- evidence and diagnosis -------------------------------------------------------------------


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


class DiagnoseRequest(BaseModel):
    alert: Alert
    evidence: Evidence


DiagnosisCategory = Literal[
    "oom",
    "memory_leak",
    "crashloop_config",
    "bad_deploy",
    "cpu_saturation",
    "disk_full",
    "dependency_down",
    "traffic_spike",
    "node_failure",
    "cert_expiry",
    "network",
    "unknown",
]
DIAGNOSIS_CATEGORIES: tuple[str, ...] = get_args(DiagnosisCategory)


class EvidenceRef(BaseModel):
    """What a diagnosis relied on: where in the evidence, and the value found there."""

    ref: str  # e.g. "pods[checkout-7d9f-x].lastState"
    quote: str = ""  # e.g. "reason=OOMKilled exitCode=137"


class ProposedAction(BaseModel):
    """A catalogue action the diagnoser suggests; the plan, not the diagnoser, decides what runs."""

    name: str
    args: dict[str, str | int | float | bool] = {}
    reason: str = ""


class Diagnosis(BaseModel):
    category: DiagnosisCategory
    confidence: float = Field(ge=0.0, le=1.0)
    explanation: str
    source: Literal["heuristic", "llm"] = "heuristic"
    summary: str = ""
    evidence: list[EvidenceRef] = []
    proposed_actions: list[ProposedAction] = []
    risks: list[str] = []
    next_checks: list[str] = []


# --- executor actions ---------------------------------------------------------------------------


class ActionRequest(BaseModel):
    """Input of every executor activity. The key makes a retried apply recognisable."""

    incident_id: str
    step: str
    action: ActionSpec

    @property
    def idempotency_key(self) -> str:
        return f"{self.incident_id}/{self.step}"


class HostResult(BaseModel):
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0


class ActionOutcome(BaseModel):
    """What an executor did: structured, so the Web UI shows it readably."""

    ok: bool
    summary: str
    changed: bool = False
    hosts: dict[str, HostResult] = {}
    diff: str = ""
    details: dict[str, Any] = {}


class PlannedAction(BaseModel):
    step: str
    action: ActionSpec
    preview: ActionOutcome | None = None
    snapshot: dict[str, Any] = {}
    result: ActionOutcome | None = None
    rollback: ActionOutcome | None = None


class Plan(BaseModel):
    summary: str
    actions: list[PlannedAction] = []
    required_approvers: int = 1


# --- verification -------------------------------------------------------------------------------


class VerifyRequest(BaseModel):
    """Healthy when the probe answers 2xx and, if given, the PromQL query returns a truthy value."""

    alert: Alert
    probe_url: str = ""
    healthy_query: str = ""


# --- workflow input and state ------------------------------------------------------------------


class IncidentConfig(BaseModel):
    """Timing knobs chosen by whoever starts the incident (the API reads them from settings)."""

    notify_after: timedelta = timedelta(minutes=15)
    escalate_after: timedelta = timedelta(hours=1)
    give_up_after: timedelta = timedelta(hours=4)
    verify_timeout: timedelta = timedelta(minutes=5)
    auto_approve: bool = False
    prometheus: bool = False  # whether verification can fall back to asking Prometheus
    # While it waits for approval the incident continues as new (approvals, timeline and counts kept;
    # workflows/continuation.py) once its run's history is this long or this large, or Temporal
    # suggests it: well before Temporal's hard limits (51,200 events, 50 MB).
    continue_after_events: int = Field(default=8_000, ge=1)
    continue_after_bytes: int = Field(default=8_000_000, ge=1)
    # Whether any notification channel (webhook, Slack, email) is configured: the one decision that
    # schedules `notify` activities at all. True when absent, as incidents started before it behaved.
    notifications: bool = True
    # Whether the workers have a model (REMEDIATOR_LLM_MODEL): without one no `llm.policy` activity
    # asks them, and the heuristic diagnosis stands. True when absent, as incidents started before it.
    llm: bool = True


class IncidentInput(BaseModel):
    alert: Alert
    config: IncidentConfig = IncidentConfig()
    # Pinned by whoever starts the incident (the API, from REMEDIATOR_PLAYBOOK_DIR and
    # REMEDIATOR_POLICY_FILE), so editing a YAML file never changes a running incident. No playbook:
    # diagnosis plus a plan proposed for approval.
    playbook: PinnedPlaybook | None = None
    policy: Policy = Policy()
    # Trusted context from the sender's credential, never from alert text: the environment whose
    # policy applies (empty: the policy's default), who opened the incident (who may then never
    # approve it), and the service globs the sender may speak for (what actions may touch).
    environment: str = ""
    opened_by: str = ""
    sender_services: list[str] = ["*"]
    # Set only by the incident itself when it continues as new (workflows/continuation.py).
    continued: Continuation | None = None
    # The OpenTelemetry trace of the request that opened the incident (32 hex digits; empty when
    # tracing is off): its workflow and activity spans belong to that trace too.
    trace_id: str = Field(default="", pattern=r"^([0-9a-f]{32})?$")


class TimelineEntry(BaseModel):
    at: datetime
    phase: Phase
    event: str
    detail: str = ""


class PlaybookRef(BaseModel):
    """Which pinned playbook an incident runs: its name, file hash and where it was loaded from."""

    name: str
    sha256: str
    source: str = ""


class SlackMessage(BaseModel):
    """Where a Slack message lives: `chat.update` and thread replies name it by channel and ts."""

    channel: str
    ts: str


class IncidentState(BaseModel):
    """The `state` query: everything a person needs to understand the incident."""

    incident_id: str
    phase: Phase
    alert: Alert
    environment: str = ""  # the trusted environment the policy judged by (see IncidentInput)
    trace_id: str = ""  # the OpenTelemetry trace that opened it (see IncidentInput)
    opened_by: str = ""
    playbook: PlaybookRef | None = None
    evidence_summary: str = ""
    evidence: Evidence | None = None
    diagnosis: Diagnosis | None = None
    plan: Plan | None = None
    approvals: list[Approval] = []
    alert_updates: int = 0
    resolved_at: datetime | None = None
    timeline: list[TimelineEntry] = []
    slack_message: SlackMessage | None = None  # the Slack message that asked for approval, updated later


class JournalEntry(BaseModel):
    """One call the incident made through its host, with the answer: the run that continues it replays
    the answer instead of calling again (workflows/continuation.py)."""

    kind: Literal["check", "preview", "apply", "rollback", "usage", "approval"]
    step: str
    output: dict[str, Any] = {}
    snapshot: dict[str, Any] = {}  # apply: what the executor's snapshot returned
    attempted: bool = False  # apply: the limiter granted it and it started (so a rollback undoes it)
    error: str = ""  # the call failed: its message, Temporal error type and retryability
    error_type: str = ""
    non_retryable: bool = False


class Continuation(BaseModel):
    """What an incident carries into the run it continues as new, waiting for an approval."""

    state: IncidentState
    journal: list[JournalEntry] = []
    requires_human: str = ""
    approval_step: str = ""  # the approval being waited for
    approval_first: int = 0  # where its decisions start in `state.approvals`
    asked_at: datetime | None = None  # when it was first asked: the escalation chain runs from there
    phase_before: Phase | None = None  # the phase it interrupted, entered again once it is approved
    leased: bool = False  # holds a blast-radius lease, released only when the incident ends
    runs: int = 1


IncidentInput.model_rebuild()


class PhaseChange(BaseModel):
    """Body of the notification webhook sent on every phase change, and what Slack and email show."""

    incident_id: str
    phase: Phase
    alert_name: str
    service: str
    severity: str
    message: str
    level: int = 0
    detail: str = ""  # the timeline entry's detail
    environment: str = ""  # the trusted one the policy judged by
    diagnosis: str = ""  # "category (confidence): explanation"
    preview: str = ""  # what is asked and what the previews say it would do
    risk: Risk | None = None  # of the approval asked (None: none asked, or an explicit approval step)
    approvers_required: int = 0  # distinct approvers the open approval needs; 0: none open
    decisions: list[str] = []  # "approved by alice via slack: reason", in order
    slack_message: SlackMessage | None = None  # the incident's Slack message so far, if any


class NotifyReceipt(BaseModel):
    """What the `notify` activity did: the channels it sent to, and the Slack message it posted."""

    sent: list[str] = []
    failed: list[str] = []  # "<channel>: <why>", for failures no retry would mend
    slack_message: SlackMessage | None = None
