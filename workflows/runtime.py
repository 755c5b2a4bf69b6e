"""The runtime incidents and operations run on: `IncidentRuntime`, over an `IncidentState`.

`IncidentRuntime` implements `PlaybookHost` (workflows/playbook_host.py), the state a `state` query
returns:

- `record` / `enter`: the timeline; a phase change also sets the `IncidentPhase` search attribute and
  sends a notification (a broken webhook is recorded, never fatal);
- `run_check`, `preview_action`, `run_action`, `rollback_action`: activities by name through
  `execute_check` / `execute_op`; every action is kept in `state.plan` with its preview, snapshot,
  result and rollback, so people see what ran;
- `request_approval` and the decisions that feed it: `Approvals` (workflows/approvals.py);
- `usage` and `run_action`: the durable blast-radius limiter (workflows/limiter.py) through the
  `limits.*` activities: an action runs only once the limiter granted it a slot.

How a workflow uses it: build one `IncidentRuntime` per run it drives (from `@workflow.init`), keep
it in `self._runtime` of an `ApprovalHandlers` workflow, set `resolved` when the alert resolves, run
a pinned playbook with `run_playbook()` (workflows/playbook_run.py) and end in `final_phase(result)`,
and call `close()` in a `finally` so its limiter lease is released on every ending, cancellation
included.
"""

from __future__ import annotations

from pydantic import BaseModel
from temporalio import workflow
from temporalio.exceptions import ActivityError
from temporalio.workflow import ActivityCancellationType

from workflows import metrics
from workflows import search_attributes as sa
from workflows.actions import ActionSpec
from workflows.activity_names import (
    LIMITS_ACQUIRE,
    LIMITS_RELEASE,
    LIMITS_USAGE,
    NOTIFY,
    ExecutorOp,
    executor_op,
)
from workflows.activity_options import LIMITS_TIMEOUT, NOTIFY_TIMEOUT, READ_RETRY, CallOptions
from workflows.alerts import Alert
from workflows.approvals import ApprovalDesk, Approvals
from workflows.checks import CHECK_OUTPUTS, CheckSpec
from workflows.decisions import Approval, Trust
from workflows.failures import error_text
from workflows.incident_models import IncidentConfig, IncidentState, TimelineEntry
from workflows.limiter_models import AcquireRequest, AcquireResult, ReleaseRequest, UsageRequest
from workflows.notifications import NotifyReceipt, PhaseChange
from workflows.phases import Phase
from workflows.plans import ActionOutcome, ActionRequest, Plan, PlannedAction
from workflows.playbook_host import MIN_WAIT
from workflows.policy import Policy, Usage
from workflows.ui_details import current_details, duration, line

# Without any notification channel configured (IncidentConfig.notifications) no `notify` is scheduled.
NOTIFY_CONFIGURED_PATCH = "notify-only-when-configured"
PREVIEW_CHARS = 2_500
# Kubernetes checks once called activities named like their kind (`kubernetes.logs`), which no worker
# registers; runs from before this patch replay with those names.
KUBE_READ_NAMES = "kube-read-activity-names"


class IncidentRuntime(Approvals):
    """`PlaybookHost` over an `IncidentState`; see the module docstring for how a workflow uses it."""

    def __init__(
        self, state: IncidentState, config: IncidentConfig, policy: Policy, trust: Trust | None = None
    ) -> None:
        self.state = state
        self.config = config
        self.policy = policy
        self.trust = trust or Trust()
        self.desk = ApprovalDesk(state.approvals)
        self.resolved = state.alert.status == "resolved"
        self._service = state.alert.service  # the one the policy was last asked about
        self.compensations: set[str] = set()  # rollback steps: counted by the limiter, never refused
        self._attempted: set[str] = set()  # actions whose apply started (and so may need undoing)
        self._leased = False

    # --- timeline and phases --------------------------------------------------------------------

    @property
    def incident_id(self) -> str:
        return self.state.incident_id

    def alert_resolved(self) -> bool:
        return self.resolved

    def record(self, event: str, detail: str = "") -> None:
        self.state.timeline.append(
            TimelineEntry(at=workflow.now(), phase=self.state.phase, event=event, detail=detail)
        )

    async def enter(self, phase: Phase, event: str, detail: str = "") -> None:
        self.state.phase = phase
        self.record(event, detail)
        workflow.upsert_search_attributes([sa.INCIDENT_PHASE.value_set(phase.value)])
        metrics.phase_entered(phase.value)
        self.show()
        await self.announce(event, 0)

    def show(self) -> None:
        """The Web UI's current details: phase, what is awaited, who decided (adds no history)."""
        workflow.set_current_details(current_details(self.state, self.desk.asking))

    async def notify(self, step: str, message: str, level: int) -> None:
        # One decision for every channel (webhook, Slack, email), made where the incident started:
        # with none configured no activity is scheduled. Runs begun before it still schedule theirs.
        if not self.config.notifications and workflow.patched(NOTIFY_CONFIGURED_PATCH):
            return
        # A notification is not worth cancelling mid-flight: abandoning it sends no cancel request
        # that could race its completion when the incident itself is cancelled.
        result = await workflow.execute_activity(
            NOTIFY,
            self._phase_change(message, level),
            start_to_close_timeout=NOTIFY_TIMEOUT,
            retry_policy=READ_RETRY,
            cancellation_type=ActivityCancellationType.ABANDON,
            summary=line(f"notify: {message}"),
        )
        # Untyped on purpose: runs recorded before the receipt existed returned a plain string.
        if isinstance(result, dict):
            receipt = NotifyReceipt.model_validate(result)
            self.state.slack_message = receipt.slack_message or self.state.slack_message
            for failure in receipt.failed:
                self.record("notification failed", failure)

    def _phase_change(self, message: str, level: int) -> PhaseChange:
        """What every channel is told: the phase, and enough of the incident to decide on it."""
        state, asking = self.state, self.desk.asking
        last = state.timeline[-1] if state.timeline else None
        diagnosis = state.diagnosis
        return PhaseChange(
            incident_id=self.incident_id,
            phase=state.phase,
            alert_name=state.alert.name,
            service=state.alert.service,
            severity=state.alert.severity,
            message=message,
            level=level,
            detail=last.detail if last is not None and last.event == message else "",
            environment=self.environment,
            diagnosis=(
                f"{diagnosis.category} ({diagnosis.confidence:.2f}): {diagnosis.explanation}"
                if diagnosis
                else ""
            ),
            preview=_plan_lines(state.plan),
            risk=asking.risk if asking else None,
            approvers_required=asking.approvers_required if asking else 0,
            decisions=[_decision_text(a) for a in state.approvals],
            slack_message=state.slack_message,
        )

    async def announce(self, message: str, level: int) -> None:
        """`notify`, where a broken webhook must not stop a remediation: the timeline keeps the failure."""
        try:
            await self.notify("", message, level)
        except ActivityError as err:
            self.record("notification failed", error_text(err))

    # --- reads and actions ----------------------------------------------------------------------

    async def run_check(self, step: str, check: CheckSpec, call: CallOptions) -> BaseModel:
        return await execute_check(self.incident_id, self.state.alert, step, check, call)

    async def preview_action(self, step: str, action: ActionSpec, call: CallOptions) -> ActionOutcome:
        planned = self.planned(step, action)
        planned.preview = await execute_op(self.incident_id, step, action, "preview", call)
        return planned.preview

    async def run_action(self, step: str, action: ActionSpec, call: CallOptions) -> ActionOutcome:
        """Snapshot and apply once the limiter granted a slot; a refusal is a failed outcome."""
        planned = self.planned(step, action)
        try:
            refused = await self._acquire(step, action)
            if refused:
                planned.result = ActionOutcome(ok=False, summary=refused)
                metrics.action(action.executor, "refused")
                return planned.result
            self._attempted.add(step)
            request = ActionRequest(incident_id=self.incident_id, step=step, action=action)
            snapshot = executor_op(action.executor, "snapshot")
            planned.snapshot = await call.execute(
                snapshot, request, dict, op_summary("snapshot", step, action)
            )
            planned.result = await execute_op(self.incident_id, step, action, "apply", call)
        except ActivityError as err:
            planned.result = ActionOutcome(ok=False, summary=error_text(err))
            metrics.action(action.executor, "failed")
            raise
        metrics.action(action.executor, "ok" if planned.result.ok else "failed")
        return planned.result

    async def rollback_action(self, step: str, action: ActionSpec, call: CallOptions) -> ActionOutcome:
        planned = self.planned(step, action)
        if step not in self._attempted:
            planned.rollback = ActionOutcome(ok=True, summary="nothing to undo: it never started")
            return planned.rollback
        try:
            planned.rollback = await execute_op(self.incident_id, step, action, "rollback", call)
        except ActivityError as err:
            planned.rollback = ActionOutcome(ok=False, summary=f"rollback failed: {error_text(err)}")
            metrics.rollback(action.executor, False)
            raise
        metrics.rollback(action.executor, planned.rollback.ok)
        return planned.rollback

    def planned(self, step: str, action: ActionSpec) -> PlannedAction:
        """The plan's entry for `step`, added on first use: the plan shows what a playbook did."""
        if self.state.plan is None:
            self.state.plan = Plan(summary="")
        found = next((p for p in self.state.plan.actions if p.step == step), None)
        if found is None:
            found = PlannedAction(step=step, action=action)
            self.state.plan.actions.append(found)
        return found

    @property
    def environment(self) -> str:
        """The environment whose policy applies: the trusted one, else (see `Trust`) the alert's label."""
        trusted = self.trust.environment
        return trusted if trusted is not None else self.state.alert.environment

    # --- blast-radius limits --------------------------------------------------------------------

    @property
    def limited(self) -> bool:
        limits = self.policy.limits
        return limits.actions_per_service_per_hour is not None or limits.concurrent_remediations is not None

    async def usage(self, service: str) -> Usage:
        self._service = service
        if not self.limited:
            return Usage()
        try:
            return await workflow.execute_activity(
                LIMITS_USAGE,
                UsageRequest(service=service, incident_id=self.incident_id, at=workflow.now()),
                result_type=Usage,
                start_to_close_timeout=LIMITS_TIMEOUT,
                retry_policy=READ_RETRY,
                summary=line(f"blast-radius counts for {service}"),
            )
        except ActivityError as err:
            # The verdict is advisory; `acquire` still enforces the limits before anything runs.
            self.record("blast-radius counts unavailable", error_text(err))
            return Usage()

    async def _acquire(self, step: str, action: ActionSpec) -> str:
        """Wait (durably) for the limiter to grant `step` a slot; the reason if it never will."""
        if not self.limited or action.risk == "read":
            return ""
        request = AcquireRequest(
            incident_id=self.incident_id,
            step=step,
            service=self._service,
            risk=action.risk,
            limits=self.policy.limits,
            compensation=step in self.compensations,
        )
        first = workflow.now()
        while True:
            result = await workflow.execute_activity(
                LIMITS_ACQUIRE,
                request,
                result_type=AcquireResult,
                start_to_close_timeout=LIMITS_TIMEOUT,
                retry_policy=READ_RETRY,
                summary=f"blast-radius slot for {step}",
            )
            if result.granted:
                self._leased = True
                self.record(f"blast-radius slot for {step}", _usage_text(result.usage))
                return ""
            self.record(f"blast-radius limit before {step}", result.reason)
            # Lost a race for the last slot after the policy's own check: wait as the policy would.
            if result.retry_at is None or result.retry_at - first > self.policy.max_wait:
                return f"blast-radius limit: {result.reason}"
            pause = max(result.retry_at - workflow.now(), MIN_WAIT)
            await workflow.sleep(pause, summary=f"blast-radius slot for {step}: retry in {duration(pause)}")

    async def close(self) -> None:
        """Give the limiter lease back. Call it in a `finally`: every ending, cancellation included."""
        if not self._leased:
            return
        self._leased = False
        try:
            await workflow.execute_activity(
                LIMITS_RELEASE,
                ReleaseRequest(incident_id=self.incident_id),
                start_to_close_timeout=LIMITS_TIMEOUT,
                retry_policy=READ_RETRY,
                summary="release the blast-radius lease",
            )
        except ActivityError as err:
            self.record("blast-radius lease not released; it expires on its own", error_text(err))
            return
        self.record("blast-radius lease released")


async def execute_check(
    incident_id: str, alert: Alert, step: str, check: CheckSpec, call: CallOptions
) -> BaseModel:
    """The activity call behind a check (see workflows/checks.py)."""
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
    """`<executor>.<op>` (preview, apply, rollback)."""
    request = ActionRequest(incident_id=incident_id, step=step, action=action)
    return await call.execute(
        executor_op(action.executor, op), request, ActionOutcome, op_summary(op, step, action)
    )


def op_summary(op: str, step: str, action: ActionSpec) -> str:
    """`apply restart: ansible restart-service`, as the Web UI lists an executor call."""
    return f"{op} {step}: {action.executor} {action.name}"


def _plan_lines(plan: Plan | None) -> str:
    if plan is None:
        return ""
    lines = [plan.summary] if plan.summary else []
    for p in plan.actions:
        preview = f": {p.preview.summary}" if p.preview else ""
        lines.append(f"{p.step}: {p.action.name} ({p.action.risk}){preview}")
    text = "\n".join(lines)
    # Every notification carries it into history: bounded, as Slack's own limits are.
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def _decision_text(approval: Approval) -> str:
    verb = "approved" if approval.approved else "rejected"
    reason = f": {approval.reason}" if approval.reason else ""
    return f"{verb} by {approval.approver} via {approval.via}{reason}"


def _usage_text(usage: Usage) -> str:
    return (
        f"{usage.service_actions_last_hour} action(s) on this service in the last hour, "
        f"{usage.concurrent_remediations} other remediation(s) running"
    )
