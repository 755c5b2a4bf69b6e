"""IncidentWorkflow: one durable workflow per alert fingerprint.

Received -> Gathering -> Diagnosing -> AwaitingApproval -> Executing -> Verifying -> Resolved,
with the side exits RolledBack, Escalated, Rejected, Cancelled and Failed.
Deterministic code only: every side effect is an activity called by name.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Literal, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from workflows import search_attributes as sa
    from workflows.catalogue import plan_for
    from workflows.failures import error_text
    from workflows.investigation import investigate
    from workflows.models import (
        ActionOutcome,
        ActionRequest,
        Alert,
        Approval,
        Decision,
        DecisionRequest,
        DiagnoseRequest,
        Diagnosis,
        Evidence,
        IncidentInput,
        IncidentState,
        Phase,
        PhaseChange,
        PlannedAction,
        TimelineEntry,
        VerifyRequest,
    )

READ_RETRY = RetryPolicy(maximum_attempts=3, initial_interval=timedelta(seconds=1))
# An apply is retried by Temporal; the executor's idempotency key makes the retry safe.
APPLY_RETRY = RetryPolicy(maximum_attempts=3, initial_interval=timedelta(seconds=2))
VERIFY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2), backoff_coefficient=1.5, maximum_interval=timedelta(seconds=15)
)
EXECUTOR_TIMEOUT = timedelta(minutes=30)
EXECUTOR_HEARTBEAT = timedelta(seconds=30)

Outcome = Literal["approved", "rejected", "resolved", "timeout"]
T = TypeVar("T")


@workflow.defn(name="IncidentWorkflow")
class IncidentWorkflow:
    @workflow.init
    def __init__(self, inp: IncidentInput) -> None:
        self._input = inp
        self._state = IncidentState(
            incident_id=workflow.info().workflow_id, phase=Phase.RECEIVED, alert=inp.alert
        )
        self._resolved = inp.alert.status == "resolved"
        # Set when guardrails distrust the diagnosis: auto-approval is then off for this incident.
        self._requires_human = ""

    # --- handlers -------------------------------------------------------------------------------

    @workflow.query
    def state(self) -> IncidentState:
        return self._state

    @workflow.signal
    def alert(self, alert: Alert) -> None:
        """Every notification for this fingerprint: the first firing one, re-fires and resolves."""
        self._state.alert_updates += 1
        if alert.status == "resolved":
            if not self._resolved:
                self._resolved = True
                self._state.resolved_at = workflow.now()
                self._note("alert resolved", f"source reported resolution (endsAt {alert.ends_at})")
        elif self._state.alert_updates > 1:
            self._note("alert re-fired", f"notification #{self._state.alert_updates} for this fingerprint")

    @workflow.signal
    def approve(self, decision: Decision) -> None:
        self._record_decision(decision, approved=True)

    @workflow.signal
    def reject(self, decision: Decision) -> None:
        self._record_decision(decision, approved=False)

    @workflow.update
    def decide(self, request: DecisionRequest) -> IncidentState:
        self._record_decision(Decision(approver=request.approver, reason=request.reason), request.approve)
        return self._state

    @decide.validator
    def _validate_decide(self, request: DecisionRequest) -> None:
        if self._state.phase != Phase.AWAITING_APPROVAL:
            raise ValueError(f"incident is {self._state.phase}, not AwaitingApproval")
        if any(a.approver == request.approver for a in self._state.approvals):
            raise ValueError(f"{request.approver} has already decided on this incident")

    def _record_decision(self, decision: Decision, approved: bool) -> None:
        verb = "approval" if approved else "rejection"
        if self._state.phase != Phase.AWAITING_APPROVAL:
            self._note(f"ignored {verb}", f"{decision.approver}: incident was {self._state.phase}")
            return
        if any(a.approver == decision.approver for a in self._state.approvals):
            self._note(f"ignored duplicate {verb}", f"{decision.approver} had already decided")
            return
        self._state.approvals.append(Approval(**decision.model_dump(), approved=approved, at=workflow.now()))
        self._note(f"{verb} by {decision.approver}", decision.reason)

    # --- the incident ---------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: IncidentInput) -> IncidentState:
        alert = inp.alert
        workflow.upsert_search_attributes(
            [
                sa.ALERT_NAME.value_set(alert.name),
                sa.SERVICE.value_set(alert.service),
                sa.SEVERITY.value_set(alert.severity),
                sa.ENVIRONMENT.value_set(alert.environment),
            ]
        )
        try:
            await self._run(alert)
        except asyncio.CancelledError:
            await self._enter(
                Phase.CANCELLED, "workflow cancelled", "cancellation requested through Temporal"
            )
            raise
        if workflow.patched("record-incident-memory"):
            await self._remember()
        return self._state

    async def _remember(self) -> None:
        """Closed incidents become memory: later diagnoses recall them as priors and evidence."""
        try:
            await workflow.execute_activity(
                "memory.record_incident",
                self._state,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=READ_RETRY,
            )
        except ActivityError as err:
            self._note("incident not stored in memory", error_text(err))

    async def _run(self, alert: Alert) -> None:
        await self._enter(Phase.RECEIVED, "alert received", f"{alert.name} from {alert.source}")
        if self._resolved:
            await self._enter(Phase.CANCELLED, "nothing to do", "the alert was already resolved")
            return
        await self._enter(Phase.GATHERING, "gathering evidence")
        evidence = await self._gather(alert)
        await self._enter(Phase.DIAGNOSING, "diagnosing", evidence.summary())
        diagnosis = self._state.diagnosis = await self._diagnose(alert, evidence)
        self._note("diagnosis", f"{diagnosis.category} ({diagnosis.confidence:.2f}): {diagnosis.explanation}")
        plan = plan_for(alert, diagnosis)
        if plan is None:
            await self._enter(Phase.ESCALATED, "no remediation known", f"no catalogue entry for {alert.name}")
            return
        self._state.plan = plan
        self._note("plan", plan.summary)
        for planned in plan.actions:
            planned.preview = await self._preview(planned)
        if self._resolved:
            await self._enter(Phase.CANCELLED, "alert resolved before any action ran")
            return
        outcome = await self._await_approval()
        if outcome == "rejected":
            await self._enter(Phase.REJECTED, "remediation rejected", self._state.approvals[-1].reason)
            return
        if outcome == "resolved":
            await self._enter(Phase.CANCELLED, "alert resolved before any action ran")
            return
        if outcome == "timeout":
            await self._enter(
                Phase.ESCALATED, "approval timed out", "nobody decided before the last deadline"
            )
            return
        await self._execute_and_verify(plan.actions, alert)

    async def _execute_and_verify(self, actions: list[PlannedAction], alert: Alert) -> None:
        await self._enter(Phase.EXECUTING, "executing plan")
        done: list[PlannedAction] = []
        for planned in actions:
            done.append(planned)
            try:
                planned.snapshot = await self._executor(planned, "snapshot", dict)
                planned.result = await self._executor(planned, "apply", ActionOutcome)
            except ActivityError as err:
                planned.result = ActionOutcome(ok=False, summary=error_text(err))
                self._note(f"step {planned.step} failed", planned.result.summary)
                await self._compensate(done)
                await self._enter(Phase.FAILED, "remediation failed", planned.result.summary)
                return
            self._note(f"step {planned.step} applied", planned.result.summary)
        await self._enter(Phase.VERIFYING, "verifying")
        if await self._verify(alert):
            await self._enter(Phase.RESOLVED, "verified healthy")
            return
        await self._compensate(done)
        await self._enter(Phase.ROLLED_BACK, "verification failed; compensations ran")

    # --- steps ----------------------------------------------------------------------------------

    async def _gather(self, alert: Alert) -> Evidence:
        try:
            return await workflow.execute_activity(
                "gather_evidence",
                alert,
                result_type=Evidence,
                start_to_close_timeout=timedelta(minutes=2),
                retry_policy=READ_RETRY,
            )
        except ActivityError as err:
            # Diagnosis still runs on what little we know; a stalled incident helps nobody.
            self._note("evidence gathering failed", error_text(err))
            return Evidence(notes=[f"evidence gathering failed: {error_text(err)}"])

    async def _diagnose(self, alert: Alert, evidence: Evidence) -> Diagnosis:
        self._state.evidence = evidence
        self._state.evidence_summary = evidence.summary()
        try:
            heuristic = await workflow.execute_activity(
                "diagnose",
                DiagnoseRequest(alert=alert, evidence=evidence),
                result_type=Diagnosis,
                start_to_close_timeout=timedelta(minutes=5),
                retry_policy=READ_RETRY,
            )
        except ActivityError as err:
            self._note("diagnosis failed", error_text(err))
            heuristic = Diagnosis(category="unknown", confidence=0.0, explanation=error_text(err))
        if not workflow.patched("llm-investigation"):
            return heuristic
        result = await investigate(alert, evidence, heuristic, self._note)
        if result.requires_human:
            self._requires_human = result.requires_human_reason or "the investigation asks for a human"
        return result.diagnosis

    async def _preview(self, planned: PlannedAction) -> ActionOutcome:
        try:
            preview = await self._executor(planned, "preview", ActionOutcome)
        except ActivityError as err:
            preview = ActionOutcome(ok=False, summary=f"preview failed: {error_text(err)}")
        self._note(f"preview of {planned.step}", preview.summary)
        return preview

    async def _executor(self, planned: PlannedAction, op: str, result_type: type[T]) -> T:
        return await workflow.execute_activity(
            f"{planned.action.executor}.{op}",
            ActionRequest(incident_id=self._state.incident_id, step=planned.step, action=planned.action),
            result_type=result_type,
            start_to_close_timeout=EXECUTOR_TIMEOUT,
            heartbeat_timeout=EXECUTOR_HEARTBEAT,
            retry_policy=APPLY_RETRY if op == "apply" else READ_RETRY,
        )

    async def _await_approval(self) -> Outcome:
        config = self._input.config
        if config.auto_approve and not self._requires_human:
            self._note("auto-approved", "auto_approve is set for this incident")
            return "approved"
        if config.auto_approve:
            self._note("auto-approval withheld", self._requires_human)
        await self._enter(Phase.AWAITING_APPROVAL, "awaiting approval", self._plan_text())
        start = workflow.now()
        # The escalation chain is a series of durable timers, not a sweep that may be switched off.
        stages = [(config.notify_after, 1), (config.escalate_after, 2), (config.give_up_after, 0)]
        for after, level in stages:
            remaining = max(start + after - workflow.now(), timedelta(0))
            try:
                await workflow.wait_condition(self._decided, timeout=remaining)
                break
            except TimeoutError:
                if level == 0:
                    return "timeout"
                what = "approval still pending" if level == 1 else "escalated to the next level"
                self._note(what, f"no decision after {after}")
                await self._notify(what, level)
        if any(not a.approved for a in self._state.approvals):
            return "rejected"
        # A resolve wins over an approval that lands at the same moment: no fix for a healed alert.
        if self._resolved:
            return "resolved"
        return "approved"

    def _decided(self) -> bool:
        if self._resolved or any(not a.approved for a in self._state.approvals):
            return True
        needed = self._state.plan.required_approvers if self._state.plan else 1
        return len({a.approver for a in self._state.approvals if a.approved}) >= needed

    async def _verify(self, alert: Alert) -> bool:
        request = VerifyRequest(
            alert=alert, probe_url=alert.lookup("probe_url") or alert.lookup("health_url")
        )
        try:
            result = await workflow.execute_activity(
                "verify",
                request,
                result_type=str,
                schedule_to_close_timeout=self._input.config.verify_timeout,
                retry_policy=VERIFY_RETRY,
            )
        except ActivityError as err:
            self._note("verification failed", error_text(err))
            return False
        self._note("verification passed", result)
        return True

    async def _compensate(self, done: list[PlannedAction]) -> None:
        for planned in reversed(done):
            try:
                planned.rollback = await self._executor(planned, "rollback", ActionOutcome)
            except ActivityError as err:
                planned.rollback = ActionOutcome(ok=False, summary=f"rollback failed: {error_text(err)}")
            self._note(f"rollback of {planned.step}", planned.rollback.summary)

    # --- bookkeeping ----------------------------------------------------------------------------

    def _plan_text(self) -> str:
        plan = self._state.plan
        if plan is None:
            return ""
        previews = "; ".join(f"{a.step}: {a.preview.summary}" for a in plan.actions if a.preview)
        return f"{plan.summary}. Preview: {previews}" if previews else plan.summary

    def _note(self, event: str, detail: str = "") -> None:
        self._state.timeline.append(
            TimelineEntry(at=workflow.now(), phase=self._state.phase, event=event, detail=detail)
        )

    async def _enter(self, phase: Phase, event: str, detail: str = "") -> None:
        self._state.phase = phase
        self._note(event, detail)
        workflow.upsert_search_attributes([sa.INCIDENT_PHASE.value_set(phase.value)])
        await self._notify(event, 0)

    async def _notify(self, message: str, level: int) -> None:
        alert = self._state.alert
        change = PhaseChange(
            incident_id=self._state.incident_id,
            phase=self._state.phase,
            alert_name=alert.name,
            service=alert.service,
            severity=alert.severity,
            message=message,
            level=level,
        )
        try:
            await workflow.execute_activity(
                "notify", change, start_to_close_timeout=timedelta(seconds=30), retry_policy=READ_RETRY
            )
        except ActivityError as err:
            # A broken webhook must not stop a remediation; the timeline keeps the failure.
            self._note("notification failed", error_text(err))
