"""The durable playbook interpreter: runs a pinned playbook inside a workflow.

Like the `dsl/` sample of temporalio/samples-python, the YAML is data walked by workflow code; every
side effect goes through `PlaybookHost`, which the IncidentWorkflow implements (its activities, its
approval signals, its timeline). The interpreter owns the flow: templating, decisions, policy before
every action, approvals, durable waits, verification polls and compensations in reverse on failure.
Every step and decision is recorded, decisions with the values they compared.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any, Literal

from pydantic import BaseModel, TypeAdapter, ValidationError
from temporalio import workflow
from temporalio.exceptions import ActivityError

from workflows.actions import ActionSpec, Risk, acted_on
from workflows.activity_options import (
    ACTION_HEARTBEAT,
    ACTION_TIMEOUT,
    APPLY_RETRY,
    CHECK_TIMEOUT,
    READ_RETRY,
    CallOptions,
    call_options,
)
from workflows.alerts import Alert
from workflows.conditions import ConditionError, evaluate
from workflows.diagnosis import Diagnosis
from workflows.failures import REFUSED_TARGETS_PATCH, refused_target
from workflows.phases import Phase
from workflows.plans import ActionOutcome
from workflows.playbook import (
    ActionStep,
    ApprovalStep,
    CheckStep,
    DecideStep,
    NotifyStep,
    ParamError,
    PinnedPlaybook,
    RollbackStep,
    Step,
    StopStep,
    VerifyStep,
    resolve_params,
)
from workflows.playbook_host import (
    MIN_WAIT,
    SUMMARY_CHARS,
    ApprovalRequest,
    Cause,
    Outcome,
    PlaybookHost,
    PlaybookResult,
    StepRecord,
)
from workflows.policy import ActionContext, Policy, Verdict
from workflows.policy import evaluate as evaluate_policy
from workflows.spec_errors import dotted
from workflows.templating import TemplateError, render
from workflows.ui_details import duration as ui_duration
from workflows.validation import ACTIONS, CHECKS, alert_context, problems

# Issue 9's trust boundary; incidents started before replay the rules they began with.
# The policy judges (and limits count) the object an action acts on, not the `service` label, and
# only inside the services the alert's sender may speak for.
TRUSTED_CONTEXT_PATCH = "trusted-context"
# A change the policy would auto-approve still waits for a human after a failed or empty preview, or
# when the playbook has nothing to verify the fix with.
CLEAN_PREVIEW_PATCH = "auto-approve-after-clean-preview"
# A policy wait longer than max_wait escalates before anyone is asked to approve the action it holds.
WAIT_BEFORE_APPROVAL_PATCH = "max-wait-before-approval"


class _Compensation:
    # A plain class: a dataclass in a sandboxed module is built again for every run (worker/sandbox.py).
    def __init__(
        self, action_step: str, step: str, action: ActionSpec, call: CallOptions, explicit: bool
    ) -> None:
        self.action_step = action_step
        self.step = step  # the step whose request runs it: the action's own, or its rollback step's
        self.action = action
        self.call = call
        self.explicit = explicit


class _End(Exception):
    def __init__(
        self, outcome: Outcome, reason: str, compensate: bool = True, cause: Cause | None = None
    ) -> None:
        super().__init__(reason)
        self.outcome: Outcome = outcome
        self.reason = reason
        self.compensate = compensate
        self.cause = cause


def _error_text(err: BaseException) -> str:
    if isinstance(err, ValidationError):
        return "; ".join(f"{dotted(tuple(e['loc']))}: {e['msg']}" for e in err.errors())
    while isinstance(err, ActivityError) and err.cause is not None:
        err = err.cause
    return str(err)


def _summary(model: BaseModel) -> str:
    if isinstance(model, ActionOutcome):
        return model.summary
    text = json.dumps(model.model_dump(mode="json"), separators=(",", ":"), default=str)
    return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 1] + "…"


class PlaybookInterpreter:
    def __init__(
        self,
        host: PlaybookHost,
        pinned: PinnedPlaybook,
        policy: Policy,
        alert: Alert,
        diagnosis: Diagnosis | None = None,
        environment: str | None = None,
        scope: tuple[str, ...] = ("*",),
        dry_run: bool = False,
        human: str = "",
        may_wait: bool = True,
    ) -> None:
        """`environment` is the trusted one whose policy applies (None: the alert's label, for callers
        without a credential behind them); `scope` holds the service globs actions may touch; `human`
        says why every action waits for a person even where the policy would auto-approve it; without
        `may_wait` a policy wait (window, limit) escalates at once instead of holding the action."""
        self.host = host
        self.pinned = pinned
        self.policy = policy
        self.alert = alert
        self.diagnosis = diagnosis
        self.environment = alert.environment if environment is None else environment
        self.scope = scope
        self.dry_run = dry_run or policy.is_dry_run(self.environment)
        self.human = human
        self.may_wait = may_wait
        self.context: dict[str, Any] = {}
        self.compensations: list[_Compensation] = []
        self.approvers: set[str] = set()
        self.approver_risks: dict[str, list[Risk]] = {}  # approvers whose credential limits their risks
        self.applied: list[str] = []
        self.path: list[StepRecord] = []
        self.phase: Phase | None = None

    # --- entry --------------------------------------------------------------------------------

    async def run(self) -> PlaybookResult:
        playbook = self.pinned.playbook
        self.host.record(
            "playbook",
            f"{self.pinned.name} (sha256 {self.pinned.sha256[:12]}, {self.pinned.source or 'pinned'})",
        )
        cause: Cause | None = None
        try:
            self._prepare()
            await self._sequence(playbook.steps)
            outcome: Outcome = "resolved"
            reason = "every step ran" if not self.dry_run else "dry-run: every step ran; nothing was executed"
        except _End as end:
            outcome, reason, cause = end.outcome, end.reason, end.cause
            self.host.record(f"playbook ended: {outcome}", reason)
            if end.compensate:
                reason += await self._compensate()
        return PlaybookResult(
            outcome=outcome,
            reason=reason,
            cause=cause,
            dry_run=self.dry_run,
            applied=self.applied,
            outputs=self.context.get("steps", {}),
            path=self.path,
        )

    def _prepare(self) -> None:
        issues = problems(self.pinned.playbook)
        if issues:
            raise _End("failed", "invalid playbook: " + "; ".join(map(str, issues)), compensate=False)
        try:
            params = resolve_params(self.pinned.playbook, self.alert.labels, self.alert.annotations)
        except ParamError as err:
            raise _End("failed", str(err), compensate=False) from None
        self.context = {
            "alert": alert_context(self.alert),
            "params": params,
            "steps": {},
            "diagnosis": self.diagnosis.model_dump(mode="json") if self.diagnosis else {},
            "incident": {"id": self.host.incident_id},
        }
        if params:
            self.host.record("params", ", ".join(f"{k}={v!r}" for k, v in params.items()))

    # --- helpers ------------------------------------------------------------------------------

    def _render(self, step: Step, value: Any) -> Any:
        try:
            return render(value, self.context)
        except TemplateError as err:
            raise _End("failed", f"step {step.id}: {err}") from None

    def _spec(self, step: Step, adapter: TypeAdapter[Any], raw: dict[str, Any]) -> Any:
        try:
            return adapter.validate_python(self._render(step, raw))
        except ValidationError as err:
            raise _End("failed", f"step {step.id}: {_error_text(err)}") from None

    def _keep(self, step: Step, output: BaseModel | dict[str, Any]) -> None:
        value = output.model_dump(mode="json") if isinstance(output, BaseModel) else output
        self.context["steps"][step.id] = value

    def _trace(self, step: Step, status: Literal["ok", "failed", "skipped", "dry-run"], detail: str) -> None:
        self.path.append(StepRecord(step=step.id, kind=step.kind, status=status, detail=detail))

    async def _phase(self, phase: Phase, event: str) -> None:
        if self.phase != phase and not self.dry_run:
            self.phase = phase
            await self.host.enter(phase, event)

    async def _wait(self, duration: timedelta, why: str) -> bool:
        """A durable timer that the alert's resolution cuts short; True when it did."""
        timeout = max(duration, MIN_WAIT)
        try:
            await workflow.wait_condition(
                self.host.alert_resolved, timeout=timeout, timeout_summary=f"{why} in {ui_duration(timeout)}"
            )
        except TimeoutError:
            return False
        return True

    def _stop_if_resolved(self, before: str) -> None:
        if self.host.alert_resolved():
            outcome: Outcome = "resolved" if self.applied else "cancelled"
            raise _End(outcome, f"the alert resolved before {before}; nothing more runs", compensate=False)

    # --- steps --------------------------------------------------------------------------------

    async def _sequence(self, steps: list[Step]) -> None:
        for step in steps:
            await self._step(step)

    async def _step(self, step: Step) -> None:
        match step:
            case CheckStep():
                await self._check(step)
            case DecideStep():
                await self._decide(step)
            case ActionStep():
                await self._action(step)
            case ApprovalStep():
                await self._approval(step)
            case VerifyStep():
                await self._verify(step)
            case NotifyStep():
                await self._notify(step)
            case RollbackStep():
                self._rollback(step)
            case StopStep():
                self._stop(step)

    async def _check(self, step: CheckStep) -> None:
        check = self._spec(step, CHECKS, step.check)
        try:
            output = await self.host.run_check(step.id, check, call_options(step, CHECK_TIMEOUT, READ_RETRY))
        except ActivityError as err:
            self._trace(step, "failed", _error_text(err))
            raise _End("failed", f"check {step.id} failed: {_error_text(err)}") from None
        self._keep(step, output)
        self.host.record(f"check {step.id}", _summary(output))
        self._trace(step, "ok", _summary(output))

    async def _decide(self, step: DecideStep) -> None:
        try:
            decided = evaluate(step.when, self.context, workflow.now())
        except (ConditionError, TemplateError) as err:
            raise _End("failed", f"decide {step.id}: {err}") from None
        branch = "then" if decided.result else "else"
        self.host.record(f"decide {step.id}: {branch}", decided.text())
        self._trace(step, "ok", f"{branch}: {decided.text()}")
        self._keep(step, {"result": decided.result})
        await self._sequence(step.then if decided.result else step.else_)

    async def _action(self, step: ActionStep) -> None:
        action = self._spec(step, ACTIONS, step.action)
        first = workflow.now()
        verdict = await self._verdict(step, action)
        preview = await self._preview(step, action)
        if self.dry_run:
            self._keep(step, preview)
            self.host.record(f"dry-run: would apply {step.id}")
            self._trace(step, "dry-run", preview.summary)
            return
        if verdict.wait_until is not None and workflow.patched(WAIT_BEFORE_APPROVAL_PATCH):
            self._within_max_wait(step, verdict, first)
        await self._authorise(step, action, verdict, preview)
        while verdict.wait_until is not None:
            # Windows and limits: a durable timer, then the policy is asked again with fresh counts.
            self._within_max_wait(step, verdict, first)
            self.host.record(f"waiting before {step.id}", f"until {verdict.wait_until:%Y-%m-%d %H:%M:%S}Z")
            if await self._wait(verdict.wait_until - workflow.now(), f"policy allows {step.id}"):
                self._stop_if_resolved(f"action {step.id}")
            verdict = await self._verdict(step, action)
            await self._authorise(step, action, verdict, preview)
        self._stop_if_resolved(f"action {step.id}")
        call = call_options(step, ACTION_TIMEOUT, APPLY_RETRY, ACTION_HEARTBEAT)
        self.compensations.append(_Compensation(step.id, step.id, action, call, explicit=False))
        await self._phase(Phase.EXECUTING, "executing playbook")
        try:
            outcome = await self.host.run_action(step.id, action, call)
        except ActivityError as err:
            outcome = ActionOutcome(ok=False, summary=_error_text(err))
        self.applied.append(step.id)
        self._keep(step, outcome)
        if not outcome.ok:
            self.host.record(f"step {step.id} failed", outcome.summary)
            self._trace(step, "failed", outcome.summary)
            raise _End("failed", f"action {step.id} failed: {outcome.summary}")
        self.host.record(f"step {step.id} applied", outcome.summary)
        self._trace(step, "ok", outcome.summary)

    def _within_max_wait(self, step: ActionStep, verdict: Verdict, first: datetime) -> None:
        until = verdict.wait_until
        if until is None or (self.may_wait and until - first <= self.policy.max_wait):
            return
        limit = f"past max_wait ({self.policy.max_wait})" if self.may_wait else "and may not"
        raise _End(
            "escalated",
            f"{step.id} would wait {limit}: {verdict.reason}",
            cause=Cause(kind="wait", step=step.id, detail=f"until {until:%Y-%m-%d %H:%M}Z"),
        )

    def _target(self, step: ActionStep, action: ActionSpec) -> str:
        """What the policy judges and the limits count: the object acted on, inside the sender's scope."""
        label = self.alert.service or str(self.context["params"].get("service", ""))
        if not workflow.patched(TRUSTED_CONTEXT_PATCH):
            return label
        target = acted_on(action) or label
        if target != label:
            self.host.record(
                f"{step.id} acts on {target!r}", f"judged as {target!r}, not the label {label!r}"
            )
        if not any(fnmatchcase(target, glob) for glob in self.scope):
            self._trace(step, "skipped", f"{target!r} is outside the sender's services")
            raise _End(
                "escalated",
                f"{step.id} acts on {target!r}, outside the services the alert's sender may speak for "
                f"({', '.join(self.scope) or 'none'})",
                cause=Cause(
                    kind="policy",
                    step=step.id,
                    detail=f"{target!r} is outside the services the alert's sender may speak for",
                ),
            )
        return target

    async def _verdict(self, step: ActionStep, action: ActionSpec) -> Verdict:
        """The policy's verdict on the action now, recorded; a refusal ends the playbook."""
        service = self._target(step, action)
        ctx = ActionContext(
            action=action.name,
            risk=action.risk,
            service=service,
            environment=self.environment,
            confidence=self.diagnosis.confidence if self.diagnosis else None,
            now=workflow.now(),
            usage=await self.host.usage(service),
        )
        verdict = evaluate_policy(self.policy, ctx)
        if self.dry_run and not verdict.dry_run:
            verdict = verdict.model_copy(update={"dry_run": True})
        self.host.record(f"policy for {step.id}", verdict.text())
        if not verdict.allowed:
            self._trace(step, "skipped", verdict.text())
            raise _End(
                "escalated",
                f"policy refused {step.id}: {verdict.reason}",
                cause=Cause(kind="policy", step=step.id, detail=verdict.reason),
            )
        return verdict

    async def _preview(self, step: ActionStep, action: ActionSpec) -> ActionOutcome:
        try:
            preview = await self.host.preview_action(
                step.id, action, call_options(step, CHECK_TIMEOUT, READ_RETRY)
            )
        except ActivityError as err:
            if (refused := refused_target(err)) and workflow.patched(REFUSED_TARGETS_PATCH):
                self.host.record(f"{step.id} refused by the executor", refused)
                self._trace(step, "skipped", refused)
                raise _End(
                    "escalated",
                    f"{step.id} refused by the executor: {refused}",
                    cause=Cause(kind="executor", step=step.id, detail=refused),
                ) from None
            # A preview that fails still leaves a decision to a human; the failure is shown to them.
            preview = ActionOutcome(ok=False, summary=f"preview failed: {_error_text(err)}")
        self.host.record(f"preview of {step.id}", preview.summary)
        return preview

    def _unclean(self, action: ActionSpec, preview: ActionOutcome) -> str:
        """Why an action the policy would auto-approve still needs a human; empty when it need not."""
        if self.human:
            return self.human
        if action.risk == "read" or not workflow.patched(CLEAN_PREVIEW_PATCH):
            return ""
        if not preview.ok:
            return f"the preview failed ({preview.summary})"
        if not preview.summary.strip():
            return "the preview is empty"
        if not any(isinstance(s, VerifyStep) for _, s in self.pinned.playbook.walk()):
            return "the playbook has nothing to verify the fix with"
        return ""

    async def _authorise(
        self, step: Step, action: ActionSpec | None, verdict: Verdict, preview: ActionOutcome | None
    ) -> None:
        if not verdict.needs_approval:
            unclean = self._unclean(action, preview) if action and preview else ""
            if not unclean:
                return
            self.host.record(f"auto-approval withheld for {step.id}", unclean)
            eligible_names = self.policy.members(self.policy.approvers.get(action.risk, []) if action else [])
            verdict = verdict.model_copy(
                update={
                    "needs_approval": True,
                    "approvers_required": 1,
                    "eligible_approvers": eligible_names,
                    "reasons": [*verdict.reasons, f"{unclean}; a human must approve"],
                }
            )
        risk = action.risk if action else None
        eligible = set(verdict.eligible_approvers)
        counted = sorted(
            a for a in self.approvers if (not eligible or a in eligible) and self._may_decide(a, risk)
        )
        if len(counted) >= verdict.approvers_required:
            self.host.record(
                f"approval for {step.id}", f"covered by earlier approval of {', '.join(counted)}"
            )
            return
        what = f"{action.executor} action {action.name!r}" if action else step.id
        summary = f"{step.id}: {what}" + (f"; preview: {preview.summary}" if preview else "")
        request = ApprovalRequest(
            step=step.id,
            summary=summary,
            reason=verdict.reason,
            approvers_required=verdict.approvers_required,
            eligible=verdict.eligible_approvers,
            approved_by=counted,
            risk=risk,
            target=acted_on(action) if action else "",
        )
        await self._ask(step, request)

    def _may_decide(self, approver: str, risk: Risk | None) -> bool:
        limits = self.approver_risks.get(approver)
        return limits is None or (risk is not None and risk in limits)

    async def _ask(self, step: Step, request: ApprovalRequest) -> None:
        self._stop_if_resolved(f"approval of {step.id}")
        result = await self.host.request_approval(request)
        if result.outcome == "rejected":
            raise _End("rejected", f"{step.id} rejected: {result.reason or 'no reason given'}")
        if result.outcome == "timeout":
            timeout = Cause(kind="timeout", step=step.id, detail="nobody decided before the last deadline")
            raise _End("escalated", f"nobody approved {step.id} in time", cause=timeout)
        if result.outcome == "resolved":
            self._stop_if_resolved(f"approval of {step.id}")
        eligible = set(request.eligible)
        valid = {a for a in result.approvers if not eligible or a in eligible}
        total = valid | set(request.approved_by)
        # The two-person rule is checked here too, so a host that miscounts cannot bypass it.
        if len(total) < request.approvers_required:
            raise _End(
                "escalated",
                f"{step.id} needs {request.approvers_required} distinct eligible approvers, got {sorted(total)}",
            )
        self.approvers |= valid
        self.approver_risks.update(result.limits)
        self.host.record(f"approved {step.id}", ", ".join(sorted(total)))

    async def _approval(self, step: ApprovalStep) -> None:
        message = self._render(step, step.message)
        eligible = self.policy.members(step.groups)
        if self.dry_run:
            self.host.record(
                f"dry-run: would ask approval at {step.id}",
                f"{step.approvers} approver(s) {eligible or 'anyone'}",
            )
            self._keep(step, {"approvers": []})
            self._trace(step, "dry-run", f"would need {step.approvers} approver(s)")
            return
        request = ApprovalRequest(
            step=step.id,
            summary=message or f"playbook {self.pinned.name} asks for approval at {step.id}",
            reason=f"the playbook asks for {step.approvers} approver(s)",
            approvers_required=step.approvers,
            eligible=eligible,
            timeout=step.timeout,
        )
        await self._ask(step, request)
        self._keep(step, {"approvers": sorted(self.approvers)})
        self._trace(step, "ok", ", ".join(sorted(self.approvers)))

    async def _verify(self, step: VerifyStep) -> None:
        await self._phase(Phase.VERIFYING, "verifying")
        deadline = workflow.now() + step.deadline
        attempt, last = 0, ""
        while True:
            attempt += 1
            check = self._spec(step, CHECKS, step.check)
            try:
                output = await self.host.run_check(
                    step.id, check, call_options(step, CHECK_TIMEOUT, READ_RETRY)
                )
                self._keep(step, output)
                decided = evaluate(step.until, self.context, workflow.now())
                last = decided.text()
                holds = decided.result
            except ActivityError as err:
                last, holds = f"check failed: {_error_text(err)}", False
            except (ConditionError, TemplateError) as err:
                raise _End("failed", f"verify {step.id}: {err}") from None
            if holds:
                self.host.record(f"verify {step.id} passed", f"attempt {attempt}: {last}")
                self._trace(step, "ok", last)
                return
            if self.dry_run:
                self.host.record(f"dry-run: verify {step.id} does not hold yet", last)
                self._trace(step, "dry-run", last)
                return
            remaining = deadline - workflow.now()
            if remaining <= timedelta(0):
                self.host.record(f"verify {step.id} failed", f"after {attempt} attempt(s): {last}")
                self._trace(step, "failed", last)
                raise _End("rolled_back", f"verify {step.id} did not hold within {step.deadline}: {last}")
            if await self._wait(min(step.interval, remaining), f"verify {step.id} again"):
                self.host.record(f"verify {step.id} passed", "the alert resolved")
                self._trace(step, "ok", "the alert resolved")
                return

    async def _notify(self, step: NotifyStep) -> None:
        message = str(self._render(step, step.message))
        try:
            await self.host.notify(step.id, message, step.level)
        except ActivityError as err:
            # A broken webhook must not stop a remediation; the timeline keeps the failure.
            self.host.record(f"notify {step.id} failed", _error_text(err))
        self._trace(step, "ok", message)

    def _rollback(self, step: RollbackStep) -> None:
        action = self._spec(step, ACTIONS, step.action)
        call = call_options(step, ACTION_TIMEOUT, APPLY_RETRY, ACTION_HEARTBEAT)
        for index, comp in enumerate(self.compensations):
            if comp.action_step == step.undo:
                self.compensations[index] = _Compensation(step.undo, step.id, action, call, explicit=True)
        self.host.record(
            f"rollback for {step.undo} registered", f"{step.id}: {action.executor} {action.name!r}"
        )
        self._trace(step, "dry-run" if self.dry_run else "ok", f"compensates {step.undo}")

    def _stop(self, step: StopStep) -> None:
        # An author's stop keeps what was applied: undoing it is a decision for the human taking over.
        reason = str(self._render(step, step.reason))
        self._trace(step, "ok", f"{step.outcome}: {reason}")
        raise _End(step.outcome, f"{step.id}: {reason}", compensate=False)

    async def _compensate(self) -> str:
        """Run compensations newest first; every one is attempted even if an earlier one fails."""
        failed: list[str] = []
        for comp in reversed(self.compensations):
            if comp.action_step not in self.applied:
                continue
            try:
                if comp.explicit:
                    outcome = await self.host.run_action(comp.step, comp.action, comp.call)
                else:
                    outcome = await self.host.rollback_action(comp.step, comp.action, comp.call)
            except ActivityError as err:
                outcome = ActionOutcome(ok=False, summary=_error_text(err))
            if not outcome.ok:
                failed.append(comp.action_step)
            self.host.record(f"rollback of {comp.action_step}", outcome.summary)
        self.compensations.clear()
        return f"; rollback failed for {', '.join(failed)}" if failed else ""
