"""DiskJanitor: your own workflow on Remediator's worker, without editing Remediator.

When the disk under `path` is shorter of free space than `min_free_percent`, it previews a cleanup of
old rotated logs through Remediator's Ansible executor, asks a person to approve it with Remediator's
approval machinery, applies it and measures again. It shows the three things a plugin uses:

- its own activity (`disk_janitor.free_percent`, listed in ACTIVITIES);
- Remediator's activities by name, here through `IncidentRuntime` (workflows/runtime.py):
  `ansible.preview`, `ansible.snapshot`, `ansible.apply`, and `notify` on every phase change;
- Remediator's approvals: `IncidentRuntime.request_approval` waits durably for the `approve` /
  `reject` signals (or the `decide` update) that `ApprovalHandlers` (workflows/approvals.py) adds,
  with the reminder and escalation timers, and records who decided in the timeline that the `state`
  query returns.

Register it on the worker (this folder's parent on the worker's PYTHONPATH):

    REMEDIATOR_WORKFLOW_MODULES=disk_janitor.workflow remediator worker

then start it, and approve it as any incident:

    temporal workflow start --type DiskJanitor --task-queue remediator --workflow-id janitor-web-1 \
        --input '{"path": "/", "min_free_percent": 15, "cleanup_dirs": ["/var/log/app"]}'
    temporal workflow signal --workflow-id janitor-web-1 --name approve --input '{"approver": "alice"}'
"""

from __future__ import annotations

import shutil
from datetime import timedelta

from pydantic import BaseModel, Field
from temporalio import activity, workflow
from temporalio.exceptions import ActivityError

from workflows.actions import AnsibleAction
from workflows.activity_options import (
    ACTION_HEARTBEAT,
    ACTION_TIMEOUT,
    APPLY_RETRY,
    READ_RETRY,
    CallOptions,
)
from workflows.alerts import Alert, label_fingerprint
from workflows.approvals import ApprovalHandlers
from workflows.failures import error_text
from workflows.incident_models import IncidentConfig, IncidentState
from workflows.phases import Phase
from workflows.plans import ActionOutcome
from workflows.playbook_host import ApprovalRequest
from workflows.policy import Policy
from workflows.runtime import IncidentRuntime


class JanitorRequest(BaseModel):
    path: str = "/"  # the file system to measure, on the worker's host
    min_free_percent: float = Field(default=15.0, ge=0, le=100)
    cleanup_dirs: list[str] = ["/var/log"]
    retain_days: int = Field(default=7, ge=1)
    host: str = ""  # the inventory host to clean; empty: the inventory's only host
    environment: str = "prod"


class FreeSpaceRequest(BaseModel):
    path: str


class JanitorReport(BaseModel):
    outcome: str
    free_before: float
    free_after: float | None = None
    approved_by: list[str] = []


@activity.defn(name="disk_janitor.free_percent")
def free_percent(request: FreeSpaceRequest) -> float:
    """Free space under `path`, in percent. A plain function: the worker runs it on its thread pool."""
    usage = shutil.disk_usage(request.path)
    return round(100 * usage.free / usage.total, 2)


PREVIEW = CallOptions(ACTION_TIMEOUT, READ_RETRY, ACTION_HEARTBEAT)
APPLY = CallOptions(ACTION_TIMEOUT, APPLY_RETRY, ACTION_HEARTBEAT)


@workflow.defn(name="DiskJanitor")
class DiskJanitor(ApprovalHandlers):
    _runtime: IncidentRuntime

    @workflow.init
    def __init__(self, request: JanitorRequest) -> None:
        labels = {"alertname": "DiskJanitor", "service": "disk-janitor", "environment": request.environment}
        alert = Alert(fingerprint=label_fingerprint(labels), labels=labels, source="manual")
        state = IncidentState(incident_id=workflow.info().workflow_id, phase=Phase.RECEIVED, alert=alert)
        self._runtime = IncidentRuntime(state, IncidentConfig(), Policy())

    @workflow.run
    async def run(self, request: JanitorRequest) -> JanitorReport:
        try:
            return await self._clean(request)
        finally:
            await self._runtime.close()

    async def _measure(self, path: str) -> float:
        free = await workflow.execute_activity(
            free_percent, FreeSpaceRequest(path=path), start_to_close_timeout=timedelta(seconds=30)
        )
        self._runtime.record("free space", f"{free}% free under {path}")
        return free

    async def _clean(self, request: JanitorRequest) -> JanitorReport:
        runtime = self._runtime
        await runtime.enter(
            Phase.RECEIVED, "disk janitor started", f"{request.path} needs {request.min_free_percent}%"
        )
        before = await self._measure(request.path)
        if before >= request.min_free_percent:
            await runtime.enter(Phase.RESOLVED, "enough free space")
            return JanitorReport(outcome="enough space", free_before=before)
        cleanup = AnsibleAction(
            name="disk-cleanup",
            playbook="disk_cleanup.yml",
            extravars={
                "cleanup_dirs": request.cleanup_dirs,
                "retain_days": request.retain_days,
                "rotate_logs": False,
            },
            limit=request.host,
        )
        preview = await runtime.preview_action("cleanup", cleanup, PREVIEW)
        approval = await runtime.request_approval(
            ApprovalRequest(
                step="cleanup",
                summary=f"delete rotated logs older than {request.retain_days} days: {preview.summary}",
                reason=f"{before}% free under {request.path}, below {request.min_free_percent}%",
                approvers_required=1,
            )
        )
        if approval.outcome != "approved":
            phase = Phase.REJECTED if approval.outcome == "rejected" else Phase.ESCALATED
            await runtime.enter(phase, f"cleanup {approval.outcome}", approval.reason)
            return JanitorReport(outcome=approval.outcome, free_before=before)
        await runtime.enter(Phase.EXECUTING, "cleaning up")
        try:
            outcome = await runtime.run_action("cleanup", cleanup, APPLY)
        except ActivityError as err:  # the executor failed for good (Temporal retried it already)
            outcome = ActionOutcome(ok=False, summary=error_text(err))
        after = await self._measure(request.path)
        await runtime.enter(Phase.RESOLVED if outcome.ok else Phase.FAILED, "cleanup done", outcome.summary)
        return JanitorReport(
            outcome="cleaned" if outcome.ok else "failed",
            free_before=before,
            free_after=after,
            approved_by=approval.approvers,
        )


WORKFLOWS = [DiskJanitor]
ACTIVITIES = [free_percent]
