"""The phases an incident or an operation target goes through, and which of them end it."""

from __future__ import annotations

from enum import StrEnum


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
