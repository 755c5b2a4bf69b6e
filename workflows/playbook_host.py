"""The contract between the playbook interpreter and the workflow that runs it.

The interpreter sees its runtime only as a `PlaybookHost` (the import-linter contracts in
pyproject.toml keep it so): `IncidentRuntime` (workflows/runtime.py) implements it for incidents
and operations, owning the activities (by name, with the `CallOptions` each step asks for), the
approvals, the timeline and the phases.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal, Protocol

from pydantic import BaseModel

from workflows.actions import ActionSpec, Risk
from workflows.activity_options import CallOptions
from workflows.checks import CheckSpec
from workflows.phases import Phase
from workflows.plans import ActionOutcome
from workflows.policy import Usage

Outcome = Literal["resolved", "escalated", "rejected", "rolled_back", "failed", "cancelled"]

MIN_WAIT = timedelta(seconds=1)  # a policy wait never spins, even on stale counts
SUMMARY_CHARS = 400


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
        """A read (see workflows/checks.py). Raises ActivityError when it fails."""
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


class Cause(BaseModel):
    """What escalated a run, apart from its reason's wording: for a host that words endings itself."""

    kind: Literal["policy", "executor", "wait", "timeout"]
    step: str
    detail: str  # the bare why: the policy's reasons, the executor's refusal, the time it would wait for


class PlaybookResult(BaseModel):
    outcome: Outcome
    reason: str
    cause: Cause | None = None
    dry_run: bool = False
    applied: list[str] = []  # action steps that ran, in order
    outputs: dict[str, Any] = {}  # what `${steps.<id>...}` saw
    path: list[StepRecord] = []
