"""What an operation is made of: its input, each target's result and the `state` query.

An operation runs one pinned playbook over several targets without an alert. Each target becomes a
synthetic alert, so that the interpreter, the templates and the policy work exactly as for incidents:

    labels = {**params, "alertname": <playbook name>, "target": <target>, "environment": <environment>}

A playbook reads the target through a param declared with `label: target`, and every `--param k=v`
overrides the param `k` (as an alert label would), subject to its `pattern` and `override: false`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from workflows.alerts import Alert, label_fingerprint
from workflows.incident_models import IncidentConfig, PlaybookRef, TimelineEntry
from workflows.phases import Phase
from workflows.playbook import ParamError, PinnedPlaybook, Playbook, resolve_params
from workflows.playbook_host import StepRecord
from workflows.policy import Policy

OPERATION_WORKFLOW = "OperationWorkflow"
TARGET_WORKFLOW = "OperationTargetWorkflow"
OPERATION_PREFIX = "operation-"
# The labels an operation sets itself; params cannot take these names.
RESERVED_LABELS = ("alertname", "target", "environment")

TargetStatus = Literal[
    "pending", "running", "resolved", "escalated", "rejected", "rolled_back", "failed", "cancelled", "skipped"
]
# Outcomes that count against the batch (max_failures) and that a retry of the target may cure.
FAILED: frozenset[str] = frozenset({"failed", "rolled_back"})
Target = str  # validated by OperationInput: no blanks, no commas, so it also reads well in an id
_TARGET_PATTERN = r"^[A-Za-z0-9_.:@\[\]/-]{1,200}$"


class OperationOptions(BaseModel):
    """How to run a playbook over targets: what a person or a schedule asks for."""

    targets: list[Target] = Field(min_length=1, max_length=500)
    params: dict[str, str] = {}
    environment: str = Field(default="", max_length=100)
    dry_run: bool = False
    concurrency: int = Field(default=1, ge=1, le=50, description="targets in flight at once")
    attempts: int = Field(default=1, ge=1, le=10, description="runs of the playbook per target")
    retry_interval: timedelta = Field(default=timedelta(seconds=10), gt=timedelta(0))
    max_failures: int | None = Field(
        default=None, ge=0, description="start no more targets once more than this many failed"
    )
    started_by: str = Field(default="", max_length=200)

    @field_validator("targets")
    @classmethod
    def _distinct(cls, targets: list[str]) -> list[str]:
        for target in targets:
            if not re.fullmatch(_TARGET_PATTERN, target):
                raise ValueError(f"target {target!r}: letters, digits and _.:@[]/- only, at most 200")
        repeated = sorted({t for t in targets if targets.count(t) > 1})
        if repeated:
            raise ValueError(f"target(s) named more than once: {', '.join(repeated)}")
        return targets


class OperationInput(OperationOptions):
    """Pinned by whoever starts the operation: the API, or a schedule when it is created."""

    pinned: PinnedPlaybook
    policy: Policy = Policy()
    config: IncidentConfig = IncidentConfig()  # the approval escalation timers of each target

    def target_alert(self, target: str) -> Alert:
        return target_alert(self.pinned.name, target, self.params, self.environment)


def target_alert(playbook: str, target: str, params: Mapping[str, str], environment: str) -> Alert:
    labels = {**params, "alertname": playbook, "target": target}
    if environment:
        labels["environment"] = environment
    return Alert(fingerprint=label_fingerprint(labels), labels=labels, source="manual")


def param_problems(
    playbook: Playbook, params: Mapping[str, str], targets: list[str], environment: str
) -> list[str]:
    """Why these params cannot run this playbook on these targets, in the words of an operator."""
    problems: list[str] = []
    declared = {spec.label or name: (name, spec) for name, spec in playbook.params.items()}
    for key in params:
        if key in RESERVED_LABELS:
            problems.append(f"param {key!r} is set by the operation itself (use the target or environment)")
        elif key not in declared:
            known = ", ".join(sorted(n for n in playbook.params if n != "target")) or "none"
            problems.append(f"{playbook.name} has no param {key!r} (its params: {known})")
        elif not declared[key][1].override:
            problems.append(f"param {declared[key][0]!r} of {playbook.name} is fixed (override: false)")
    if problems:
        return problems
    for target in targets:
        alert = target_alert(playbook.name, target, params, environment)
        try:
            resolve_params(playbook, alert.labels, alert.annotations)
        except ParamError as err:
            problems.append(f"target {target!r}: {err}")
    return problems


class TargetInput(BaseModel):
    operation_id: str
    target: str
    pinned: PinnedPlaybook
    policy: Policy
    config: IncidentConfig
    alert: Alert
    dry_run: bool = False


class TargetResult(BaseModel):
    target: str
    status: TargetStatus = "pending"
    phase: Phase | None = None  # where its run ended, as an incident's would
    workflow_id: str = ""  # the child workflow running this target: its history, its approvals
    attempts: int = 0
    reason: str = ""
    applied: list[str] = []
    path: list[StepRecord] = []
    started_at: datetime | None = None
    finished_at: datetime | None = None


class OperationState(BaseModel):
    """The `state` query of an OperationWorkflow, and its result."""

    operation_id: str
    playbook: PlaybookRef
    phase: Phase
    dry_run: bool = False
    environment: str = ""
    concurrency: int = 1
    attempts: int = 1
    started_by: str = ""
    targets: list[TargetResult]
    # The share (0-100) of targets whose run ended resolved: for OpsHealthCheck, the fleet's health.
    health_score: int | None = None
    summary: str = ""
    timeline: list[TimelineEntry] = []
