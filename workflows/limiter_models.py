"""The data of the RemediationLimiter workflow (workflows/limiter.py): its requests, answers and state.

Incidents build these in their activities' inputs and the limiter's handlers take them, so they are
models passed through the sandbox, not re-imported with the limiter's logic for every run.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from workflows.actions import Risk
from workflows.policy import Limits, Usage

LIMITER_ID = "remediator-limiter"
# Every update and signal adds a few events; well under Temporal's history limits.
MAX_HANDLED = 500


class AcquireRequest(BaseModel):
    incident_id: str = Field(min_length=1)
    step: str = Field(min_length=1)
    service: str
    risk: Risk
    limits: Limits  # the incident's pinned policy's: the same rules its verdicts were given with
    compensation: bool = False  # undoing is counted but never refused: a half-done fix is worse

    @property
    def key(self) -> str:
        return f"{self.incident_id}/{self.step}"


class AcquireResult(BaseModel):
    granted: bool
    usage: Usage  # the counts before this action, as the decision saw them
    reason: str = ""
    retry_at: datetime | None = None  # refused: when a slot may be free


class ReleaseRequest(BaseModel):
    incident_id: str = Field(min_length=1)


class UsageRequest(BaseModel):
    service: str
    incident_id: str = ""  # its own lease is not "another" remediation
    # The asker's time: a query's workflow.now() is the limiter's last task, which may be long past.
    at: datetime | None = None


class Lease(BaseModel):
    incident_id: str
    service: str
    acquired_at: datetime
    expires_at: datetime


class Stamp(BaseModel):
    key: str  # incident/step
    service: str
    at: datetime


class LimiterState(BaseModel):
    """What survives continue-as-new; also the `leases` query, for people."""

    leases: list[Lease] = []
    stamps: list[Stamp] = []
    continue_after: int = Field(default=MAX_HANDLED, ge=1)  # updates and signals per run
