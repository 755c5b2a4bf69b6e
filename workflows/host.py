"""The playbook host that durable runners share: the IncidentWorkflow, and operations over targets.

`Host` implements `PlaybookHost` (workflows/playbook_host.py) over an `IncidentState`, the record a
`state` query returns:

- `record` / `enter`: the timeline; a phase change also sets the `IncidentPhase` search attribute and
  sends a notification (a broken webhook is recorded, never fatal);
- `run_check`, `preview_action`, `run_action`, `rollback_action`: activities by name through
  `execute_check` / `execute_op`; every action is kept in `state.plan` with its preview, snapshot,
  result and rollback, so people see what ran;
- `request_approval`: the durable escalation chain (reminder, escalation and give-up timers from
  `IncidentConfig`, or the request's own timeout), counting only distinct, eligible approvers
  (`ApprovalDesk`), fed by the workflow's `approve` / `reject` / `decide` handlers;
- `usage` and `run_action`: the durable blast-radius limiter (workflows/limiter.py) through the
  `limits.*` activities: an action runs only once the limiter granted it a slot.

How a workflow uses it: build one `Host` per run it drives (from `@workflow.init`), forward
`approve` / `reject` to `decide()` and the `decide` update's validator to `refusal()`, set
`resolved` when the alert resolves, run a pinned playbook with `run_playbook()` and end in
`final_phase(result)`, and call `close()` in a `finally` so its limiter lease is released on every
ending, cancellation included.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from fnmatch import fnmatchcase

from pydantic import BaseModel
from temporalio import workflow
from temporalio.exceptions import ActivityError
from temporalio.workflow import ActivityCancellationType

from workflows import metrics
from workflows import search_attributes as sa
from workflows.actions import ActionSpec, Risk
from workflows.activity_names import LIMITS_ACQUIRE, LIMITS_RELEASE, LIMITS_USAGE, NOTIFY, executor_op
from workflows.checks import CheckSpec
from workflows.failures import error_text
from workflows.interpreter import PlaybookInterpreter
from workflows.limiter import AcquireRequest, AcquireResult, ReleaseRequest, UsageRequest
from workflows.models import (
    ActionOutcome,
    ActionRequest,
    Approval,
    Decision,
    DecisionRequest,
    Diagnosis,
    IncidentConfig,
    IncidentState,
    NotifyReceipt,
    Phase,
    PhaseChange,
    Plan,
    PlannedAction,
    PlaybookRef,
    TimelineEntry,
)
from workflows.playbook import PinnedPlaybook, RollbackStep
from workflows.playbook_host import (
    MIN_WAIT,
    READ_RETRY,
    ApprovalRequest,
    ApprovalResult,
    CallOptions,
    Outcome,
    PlaybookResult,
    execute_check,
    execute_op,
    op_summary,
)
from workflows.policy import Policy, Usage
from workflows.ui_details import current_details, duration, line

PHASES: dict[Outcome, Phase] = {
    "resolved": Phase.RESOLVED,
    "escalated": Phase.ESCALATED,
    "rejected": Phase.REJECTED,
    "rolled_back": Phase.ROLLED_BACK,
    "failed": Phase.FAILED,
    "cancelled": Phase.CANCELLED,
}
DRY_RUN_ENDING = "dry-run: nothing was executed"
NOTIFY_TIMEOUT = timedelta(seconds=30)
# Without any notification channel configured (IncidentConfig.notifications) no `notify` is scheduled.
NOTIFY_CONFIGURED_PATCH = "notify-only-when-configured"
PREVIEW_CHARS = 2_500
LIMITS_TIMEOUT = timedelta(seconds=30)
_CARRY_ON = (Phase.EXECUTING, Phase.VERIFYING)


def final_phase(result: PlaybookResult) -> tuple[Phase, str, str]:
    """The phase a playbook run ends in, with the timeline's event and detail.

    A dry (shadow) run whose playbook would have acted ends `Escalated`, not `Resolved`: nothing was
    executed, so the alert is still a human's to handle, and `IncidentPhase="Resolved"` keeps counting
    only real fixes. A dry run that found nothing to do (a `stop` with outcome resolved) is resolved.
    """
    would_act = any(r.kind == "action" and r.status == "dry-run" for r in result.path)
    if result.dry_run and result.outcome == "resolved" and would_act:
        return Phase.ESCALATED, DRY_RUN_ENDING, f"{result.reason}; a human must act"
    return PHASES[result.outcome], f"playbook {result.outcome.replace('_', ' ')}", result.reason


def without_auto_approval(policy: Policy) -> Policy:
    """The same policy with no auto-approval anywhere: a human decides every action."""
    environments = {
        name: env.model_copy(update={"auto_approve": []}) for name, env in policy.environments.items()
    }
    return policy.model_copy(update={"environments": environments})


class ApprovalDesk:
    """The approval being asked, and which decisions count towards it.

    Every decision is kept (the state's `approvals`); towards the open request count only those made
    while it is open, one per person, by people it names as eligible (empty: anyone).
    """

    def __init__(self, approvals: list[Approval]) -> None:
        self.approvals = approvals
        self.asking: ApprovalRequest | None = None
        self._first = len(approvals)

    def open(self, request: ApprovalRequest, first: int | None = None) -> None:
        """`first`: where its decisions start, when an earlier run asked it (continue-as-new)."""
        self.asking, self._first = request, len(self.approvals) if first is None else first

    def close(self) -> None:
        self.asking = None

    @property
    def first(self) -> int:
        """Where the decisions on the open (or last) request start in `approvals`."""
        return self._first

    @property
    def decisions(self) -> list[Approval]:
        return self.approvals[self._first :] if self.asking else []

    def refusal(self, approver: str) -> str:
        """Why a decision by `approver` would not count now; empty when it counts."""
        if self.asking is None:
            return "nothing is waiting for approval"
        if any(a.approver == approver for a in self.decisions):
            return f"{approver} has already decided on this"
        eligible = self.asking.eligible
        if eligible and approver not in eligible:
            return f"{approver} may not decide on this (eligible: {', '.join(eligible)})"
        return ""

    def add(self, decision: Decision, approved: bool, at: datetime) -> None:
        risks = decision.risks if isinstance(decision, DecisionRequest) else []
        self.approvals.append(
            Approval(
                approver=decision.approver,
                reason=decision.reason,
                via=decision.via,
                approved=approved,
                at=at,
                risks=risks,
            )
        )

    def limits(self) -> dict[str, list[Risk]]:
        return {a.approver: a.risks for a in self.decisions if a.approved and a.risks}

    def approvers(self) -> list[str]:
        return sorted({a.approver for a in self.decisions if a.approved})

    def rejection(self) -> Approval | None:
        return next((a for a in self.decisions if not a.approved), None)

    def satisfied(self) -> bool:
        asking = self.asking
        return asking is not None and (
            len(set(self.approvers()) | set(asking.approved_by)) >= asking.approvers_required
        )


class Host:
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
        self._compensations: set[str] = set()  # rollback steps: counted by the limiter, never refused
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

    # --- approvals ------------------------------------------------------------------------------

    def refusal(self, decision: Decision, approved: bool) -> str:
        """Why `decision` would be refused now (for the update's validator); empty if not."""
        asking, approver = self.desk.asking, decision.approver
        if asking is None:
            return f"incident is {self.state.phase}, not AwaitingApproval"
        if approved and approver == self.trust.opened_by:
            return f"{approver} opened this incident and so may not approve it"
        if refused := self.desk.refusal(approver):
            return refused
        if isinstance(decision, DecisionRequest):
            return _outside_limits(decision, asking, self.environment)
        return ""

    @property
    def environment(self) -> str:
        """The environment whose policy applies: the trusted one, else (see `Trust`) the alert's label."""
        trusted = self.trust.environment
        return trusted if trusted is not None else self.state.alert.environment

    def decide(self, decision: Decision, approved: bool) -> None:
        """An `approve` or `reject`: counted, or recorded as ignored with the reason."""
        verb = "approval" if approved else "rejection"
        why = self.refusal(decision, approved)
        if why:
            self.record(f"ignored {verb}", f"{decision.approver} (via {decision.via}): {why}")
            return
        self.desk.add(decision, approved, workflow.now())
        self.record(f"{verb} by {decision.approver}", f"via {decision.via}: {decision.reason or 'no reason'}")
        self.show()

    async def request_approval(self, request: ApprovalRequest) -> ApprovalResult:
        carry_on = self.state.phase if self.state.phase in _CARRY_ON else None
        asked_at = self.resumed(request)
        self.desk.open(request, self.resumed_first if asked_at else None)
        first = all(e.phase != Phase.AWAITING_APPROVAL for e in self.state.timeline)
        try:
            if asked_at is None:  # an approval asked before the run continued as new is not asked again
                await self.enter(Phase.AWAITING_APPROVAL, "awaiting approval", _asking(request))
            else:
                self.show()  # the continued run's Web UI details say what it still waits for
            if first:
                metrics.approvable_after(workflow.now() - workflow.info().start_time)
            decided = await self._escalate(request.timeout, asked_at)
            rejection = self.desk.rejection()
            if not decided:
                metrics.approval("timeout")
                return ApprovalResult(outcome="timeout")
            if rejection is not None:
                metrics.approval("rejected")
                return ApprovalResult(outcome="rejected", reason=rejection.reason)
            # A resolve wins over an approval that lands at the same moment: no fix for a healed alert.
            if self.resolved:
                metrics.approval("resolved")
                return ApprovalResult(outcome="resolved")
            approvers, limits = self.desk.approvers(), self.desk.limits()
        finally:
            self.desk.close()
        metrics.approval("approved")
        if carry_on is not None:
            await self.enter(carry_on, "approved; carrying on", ", ".join(approvers))
        return ApprovalResult(outcome="approved", approvers=approvers, limits=limits)

    async def _escalate(self, timeout: timedelta | None, asked_at: datetime | None = None) -> bool:
        """Wait through the escalation chain; False once its last deadline passed undecided.

        The chain is a series of durable timers, not a sweep that may be switched off. `asked_at`: the
        approval was asked by an earlier run (continue-as-new); the chain runs on from then, and the
        reminders that run already sent are not sent again.
        """
        config = self.config
        chain = [(config.notify_after, 1), (config.escalate_after, 2), (config.give_up_after, 0)]
        if timeout is not None:
            chain = [(after, level) for after, level in chain[:2] if after < timeout] + [(timeout, 0)]
        start = asked_at or workflow.now()
        for after, level in chain:
            if asked_at is not None and level and start + after <= workflow.now():
                continue
            remaining = max(start + after - workflow.now(), timedelta(0))
            next_step = ("approval deadline", "approval reminder", "escalation")[level]
            try:
                await workflow.wait_condition(
                    self._decided, timeout=remaining, timeout_summary=f"{next_step} in {duration(remaining)}"
                )
                self.continue_if_due()
                return True
            except TimeoutError:
                if level == 0:
                    return False
                what = "approval still pending" if level == 1 else "escalated to the next level"
                self.record(what, f"no decision after {after}")
                await self.announce(what, level)
        return False

    def _decided(self) -> bool:
        return self.resolved or self.desk.rejection() is not None or self.desk.satisfied()

    # Continue-as-new (workflows/continuation.py overrides these): a plain host never continues.
    resumed_first = 0  # with `resumed`: where the resumed approval's decisions start

    def resumed(self, request: ApprovalRequest) -> datetime | None:
        """When an earlier run of this incident asked `request` (it continued as new since); None if not."""
        return None

    def continue_if_due(self) -> None:
        """Raise to continue as new after the approval wait woke up; a plain host never does."""

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
            compensation=step in self._compensations,
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

    # --- playbooks ------------------------------------------------------------------------------

    async def run_playbook(
        self, pinned: PinnedPlaybook, diagnosis: Diagnosis | None = None, requires_human: str = ""
    ) -> PlaybookResult:
        """Interpret `pinned` on this host. `requires_human` (a reason) switches auto-approval off."""
        self.state.playbook = PlaybookRef(name=pinned.name, sha256=pinned.sha256, source=pinned.source)
        description = pinned.playbook.description
        self.state.plan = Plan(
            summary=f"playbook {pinned.name}" + (f": {description}" if description else "")
        )
        self._compensations = {s.id for _, s in pinned.playbook.walk() if isinstance(s, RollbackStep)}
        policy = self.policy
        if requires_human:
            self.record("auto-approval withheld", requires_human)
            policy = without_auto_approval(policy)
        interpreter = PlaybookInterpreter(
            self, pinned, policy, self.state.alert, diagnosis, self.environment, self.trust.services
        )
        result = await interpreter.run()
        path = (r.step if r.status == "ok" else f"{r.step} ({r.status})" for r in result.path)
        self.record("playbook path", " -> ".join(path))
        return result


@dataclass(frozen=True)
class Trust:
    """What the incident's sender credential vouches for (IncidentInput), never alert text.

    `environment` None keeps the alert's own label: operations, where an operator chose it, and
    incidents started before trusted context existed (their histories replay unchanged).
    """

    environment: str | None = None
    opened_by: str = ""
    services: tuple[str, ...] = ("*",)


def _outside_limits(decision: DecisionRequest, asking: ApprovalRequest, environment: str) -> str:
    """Why the approver's own limits (from its credential) keep it from deciding this; empty if not."""
    who = decision.approver
    if decision.risks and asking.risk not in decision.risks:
        what = f"{asking.risk} actions" if asking.risk else "an approval step that gates any action"
        return f"{who} may decide only {', '.join(decision.risks)} actions, not {what}"
    if (
        decision.environments
        and "*" not in decision.environments
        and environment not in decision.environments
    ):
        return f"{who} may decide only in {', '.join(decision.environments)}, not {environment or '(none)'}"
    if decision.services and not any(fnmatchcase(asking.target, g) for g in decision.services):
        return f"{who} may decide only on {', '.join(decision.services)}, not {asking.target or '(none)'}"
    return ""


def _asking(request: ApprovalRequest) -> str:
    who = f" of {', '.join(request.eligible)}" if request.eligible else ""
    need = f"needs {request.approvers_required} distinct approver(s){who}"
    return "; ".join(part for part in (request.summary, request.reason, need) if part)


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
