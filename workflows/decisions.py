"""People's decisions on an approval: the signals' and the update's payloads, and what is kept of them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from workflows.actions import Risk

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


@dataclass(frozen=True)
class Trust:
    """What the incident's sender credential vouches for (IncidentInput), never alert text.

    Here, with the data models the sandbox passes through, not in workflows.approvals: a dataclass
    in a sandboxed module is built again for every run (worker/sandbox.py).

    `environment` None keeps the alert's own label: operations, where an operator chose it, and
    incidents started before trusted context existed (their histories replay unchanged).
    """

    environment: str | None = None
    opened_by: str = ""
    services: tuple[str, ...] = ("*",)
