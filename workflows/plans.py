"""What an incident does: each action's request to an executor and its outcome, the plan that keeps them,
and the verification that follows."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from workflows.actions import ActionSpec
from workflows.alerts import Alert


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


class VerifyRequest(BaseModel):
    """Healthy when the probe answers 2xx and, if given, the PromQL query returns a truthy value."""

    alert: Alert
    probe_url: str = ""
    healthy_query: str = ""
