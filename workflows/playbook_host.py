"""The contract between the playbook interpreter and the workflow that runs it.

The IncidentWorkflow implements `PlaybookHost`: it owns the activities (by name, with the
`CallOptions` each step asks for), the approval signals and updates, the timeline and the phases.
`execute_check` and `execute_op` are the activity calls a host makes, so that every host calls the
same names with the same inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, Protocol, TypeVar

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy

from workflows.actions import ActionSpec, Risk
from workflows.activity_names import ExecutorOp, executor_op
from workflows.checks import CHECK_OUTPUTS, CheckSpec
from workflows.models import ActionOutcome, ActionRequest, Alert, Phase
from workflows.playbook import StepBase
from workflows.policy import Usage

T = TypeVar("T")
Outcome = Literal["resolved", "escalated", "rejected", "rolled_back", "failed", "cancelled"]

CHECK_TIMEOUT = timedelta(minutes=2)
ACTION_TIMEOUT = timedelta(minutes=30)
ACTION_HEARTBEAT = timedelta(seconds=30)
READ_RETRY = RetryPolicy(maximum_attempts=3, initial_interval=timedelta(seconds=1))
# An apply is retried by Temporal; the executor's idempotency key (incident/step) makes it safe.
APPLY_RETRY = RetryPolicy(maximum_attempts=3, initial_interval=timedelta(seconds=2))
MIN_WAIT = timedelta(seconds=1)  # a policy wait never spins, even on stale counts
SUMMARY_CHARS = 400
# Kubernetes checks once called activities named like their kind (`kubernetes.logs`), which no worker
# registers; runs from before this patch replay with those names.
KUBE_READ_NAMES = "kube-read-activity-names"


@dataclass(frozen=True)
class CallOptions:
    """How to call the activity behind one step: its timeout and retry, as Temporal takes them."""

    start_to_close_timeout: timedelta
    retry_policy: RetryPolicy
    heartbeat_timeout: timedelta | None = None

    async def execute(self, activity: str, arg: Any, result_type: type[T], summary: str | None = None) -> T:
        """`summary`: one line the Temporal Web UI shows for this call (metadata, not a command)."""
        return await workflow.execute_activity(
            activity,
            arg,
            result_type=result_type,
            start_to_close_timeout=self.start_to_close_timeout,
            heartbeat_timeout=self.heartbeat_timeout,
            retry_policy=self.retry_policy,
            summary=summary,
        )


def call_options(
    step: StepBase, timeout: timedelta, retry: RetryPolicy, heartbeat: timedelta | None = None
) -> CallOptions:
    return CallOptions(
        start_to_close_timeout=step.timeout or timeout,
        retry_policy=step.retry.policy() if step.retry else retry,
        heartbeat_timeout=heartbeat,
    )


async def execute_check(
    incident_id: str, alert: Alert, step: str, check: CheckSpec, call: CallOptions
) -> BaseModel:
    """The activity call behind a check, for hosts (see workflows/checks.py)."""
    activity = check.activity
    if check.type.startswith("kubernetes.") and not workflow.patched(KUBE_READ_NAMES):
        activity = check.type  # what runs started before the fix asked for (and no worker registered)
    request = check.request(incident_id, step, alert)
    return await call.execute(
        activity, request, CHECK_OUTPUTS[check.type], summary=f"{step}: {check.type} check"
    )


async def execute_op(
    incident_id: str, step: str, action: ActionSpec, op: ExecutorOp, call: CallOptions
) -> ActionOutcome:
    """`<executor>.<op>` (preview, apply, rollback) for hosts."""
    request = ActionRequest(incident_id=incident_id, step=step, action=action)
    return await call.execute(
        executor_op(action.executor, op), request, ActionOutcome, op_summary(op, step, action)
    )


def op_summary(op: str, step: str, action: ActionSpec) -> str:
    """`apply restart: ansible restart-service`, as the Web UI lists an executor call."""
    return f"{op} {step}: {action.executor} {action.name}"


class ApprovalRequest(BaseModel):
    step: str
    summary: str  # what would run, with its preview
    reason: str  # why a human is asked (the policy's reasons, or the playbook's message)
    approvers_required: int
    eligible: list[str] = []  # who may approve; empty: anyone
    approved_by: list[str] = []  # approvals already given in this run that count towards this one
    timeout: timedelta | None = None  # None: the host's own escalation chain decides
    # The risk class decided on. None (an explicit approval step, which gates whatever follows):
    # only approvers whose credential is not limited to some risk classes may decide.
    risk: Risk | None = None
    target: str = ""  # the object the gated action acts on (workflows.actions.acted_on)


class ApprovalResult(BaseModel):
    outcome: Literal["approved", "rejected", "timeout", "resolved"]
    approvers: list[str] = []  # the distinct people who approved
    reason: str = ""
    # Approvers limited to some risk classes, with those classes: their approval counts again later
    # in the run only for an action of one of them.
    limits: dict[str, list[Risk]] = {}


class PlaybookHost(Protocol):
    """What the interpreter needs from the workflow that runs it (the IncidentWorkflow)."""

    @property
    def incident_id(self) -> str: ...

    def alert_resolved(self) -> bool:
        """True once the source reported the alert resolved: pending actions must not run."""
        ...

    def record(self, event: str, detail: str = "") -> None:
        """Append to the incident timeline."""
        ...

    async def enter(self, phase: Phase, event: str, detail: str = "") -> None:
        """Change phase (Executing, Verifying): search attribute, timeline, notification."""
        ...

    async def run_check(self, step: str, check: CheckSpec, call: CallOptions) -> BaseModel:
        """A read (see `execute_check`). Raises ActivityError when it fails."""
        ...

    async def preview_action(self, step: str, action: ActionSpec, call: CallOptions) -> ActionOutcome:
        """`<executor>.preview`. Raises ActivityError when it fails."""
        ...

    async def run_action(self, step: str, action: ActionSpec, call: CallOptions) -> ActionOutcome:
        """`<executor>.snapshot` then `<executor>.apply`, counted against the blast-radius limits."""
        ...

    async def rollback_action(self, step: str, action: ActionSpec, call: CallOptions) -> ActionOutcome:
        """`<executor>.rollback`: undo `step` from its snapshot."""
        ...

    async def request_approval(self, request: ApprovalRequest) -> ApprovalResult:
        """Wait (durably, with escalation) until enough distinct eligible people approved, or not."""
        ...

    async def notify(self, step: str, message: str, level: int) -> None: ...

    async def usage(self, service: str) -> Usage:
        """Blast-radius counts from the durable limiter."""
        ...


class StepRecord(BaseModel):
    step: str
    kind: str
    status: Literal["ok", "failed", "skipped", "dry-run"]
    detail: str = ""


class PlaybookResult(BaseModel):
    outcome: Outcome
    reason: str
    dry_run: bool = False
    applied: list[str] = []  # action steps that ran, in order
    outputs: dict[str, Any] = {}  # what `${steps.<id>...}` saw
    path: list[StepRecord] = []
