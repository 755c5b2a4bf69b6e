"""Incident metrics recorded from workflow code, through the SDK's replay-safe metric meter.

`workflow.metric_meter()` records nothing while a worker replays history, so an event counts once
however often its workflow is replayed, and recording adds no command: no `workflow.patched` needed.
The worker's Temporal runtime serves them beside the SDK's own (worker/telemetry.py); the SDK adds
`namespace`, `task_queue` and `workflow_type`. Our labels come from closed sets only (phases,
outcomes, executor kinds), never from alert text.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from temporalio import workflow

PHASE_ENTERED = "remediator_incident_phase_entered"
TIME_TO_APPROVABLE = "remediator_time_to_approvable_seconds"
APPROVALS = "remediator_approvals"
ACTIONS = "remediator_actions"
ROLLBACKS = "remediator_rollbacks"
# name -> (help, kind): what the worker exports; tests check the Grafana dashboard against it.
EXPORTED = {
    PHASE_ENTERED: ("Incident phase changes, by the phase entered", "counter"),
    TIME_TO_APPROVABLE: ("Seconds from an incident's start until it first awaits approval", "histogram"),
    APPROVALS: ("Approval requests, by how they ended", "counter"),
    ACTIONS: ("Remediation actions applied, by executor and result", "counter"),
    ROLLBACKS: ("Rollbacks of applied actions, by executor and result", "counter"),
}


def _count(name: str, labels: dict[str, str]) -> None:
    workflow.metric_meter().create_counter(name, EXPORTED[name][0]).add(1, labels)


def phase_entered(phase: str) -> None:
    _count(PHASE_ENTERED, {"phase": phase})


def approvable_after(elapsed: timedelta) -> None:
    histogram = workflow.metric_meter().create_histogram_float(
        TIME_TO_APPROVABLE, EXPORTED[TIME_TO_APPROVABLE][0], "s"
    )
    histogram.record(max(elapsed.total_seconds(), 0.0))


def approval(outcome: str) -> None:
    """`approved`, `rejected`, `timeout` or `resolved` (the alert healed while waiting)."""
    _count(APPROVALS, {"outcome": outcome})


def action(executor: str, result: Literal["ok", "failed", "refused"]) -> None:
    """`refused`: the blast-radius limiter never granted it a slot, so it did not run."""
    _count(ACTIONS, {"executor": executor, "result": result})


def rollback(executor: str, ok: bool) -> None:
    _count(ROLLBACKS, {"executor": executor, "result": "ok" if ok else "failed"})
