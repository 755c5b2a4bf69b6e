"""An incident's input, configuration and state (the `state` query), and what it carries when it
continues as new."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field

from workflows.alerts import Alert
from workflows.decisions import Approval
from workflows.diagnosis import Diagnosis
from workflows.evidence import Evidence
from workflows.notifications import SlackMessage
from workflows.phases import Phase
from workflows.plans import Plan
from workflows.playbook import PinnedPlaybook
from workflows.policy import Policy


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
