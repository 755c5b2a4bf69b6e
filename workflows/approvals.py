"""Approvals: who may decide, the durable escalation chain, and the handlers people decide through.

- `ApprovalDesk`: the approval being asked, and which decisions count towards it (distinct, eligible
  approvers, never the incident's own opener, within each approver's credential limits);
- `Approvals`: the runtime's approval side, `request_approval` waits through the escalation chain
  (reminder, escalation and give-up timers from `IncidentConfig`, or the request's own timeout);
- `ApprovalHandlers`: the `state` query, the `approve` / `reject` signals and the `decide` update
  every workflow running on an `IncidentRuntime` (workflows/runtime.py) answers.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import Protocol

from temporalio import workflow

from workflows import metrics
from workflows.actions import Risk
from workflows.decisions import Approval, Decision, DecisionRequest, Trust
from workflows.incident_models import IncidentConfig, IncidentState
from workflows.phases import Phase
from workflows.playbook_host import ApprovalRequest, ApprovalResult
from workflows.ui_details import duration

_CARRY_ON = (Phase.EXECUTING, Phase.VERIFYING)


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


class IncidentRecord(Protocol):
    """What the approval side needs of the runtime it is part of: the state, the timeline, the phases."""

    state: IncidentState
    config: IncidentConfig
    trust: Trust
    desk: ApprovalDesk
    resolved: bool

    @property
    def environment(self) -> str: ...

    def record(self, event: str, detail: str = "") -> None: ...

    async def enter(self, phase: Phase, event: str, detail: str = "") -> None: ...

    def show(self) -> None: ...

    async def announce(self, message: str, level: int) -> None: ...


class Approvals(IncidentRecord):
    """The approval side of `IncidentRuntime`: decisions in, the durable wait for them out."""

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

    def decide(self, decision: Decision, approved: bool) -> None:
        """An `approve` or `reject`: counted, or recorded as ignored with the reason."""
        verb = decision_name(approved)
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
        self.opened()
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

    # Continue-as-new (workflows/continuation.py overrides these): a plain runtime never continues.
    resumed_first = 0  # with `resumed`: where the resumed approval's decisions start

    def resumed(self, request: ApprovalRequest) -> datetime | None:
        """When an earlier run of this incident asked `request` (it continued as new since); None if not."""
        return None

    def opened(self) -> None:
        """The approval request is open: decisions held for it until now may be counted."""

    def continue_if_due(self) -> None:
        """Raise to continue as new after the approval wait woke up; a plain runtime never does."""


class ApprovalHandlers:
    """The handlers every workflow running on an `IncidentRuntime` answers, in one mixin.

    They are the public contract of a remediation, whatever started it: the `state` query, the
    `approve` and `reject` signals ({"approver": ..., "reason": ...}) and the `decide` update whose
    validator refuses a decision that would not count. Temporal collects handlers from base classes,
    so a workflow gets them all by inheriting `ApprovalHandlers` and keeping its runtime in
    `self._runtime`:

        @workflow.defn(name="DiskJanitor")
        class DiskJanitor(ApprovalHandlers):
            @workflow.init
            def __init__(self, request: JanitorRequest) -> None:
                self._runtime = IncidentRuntime(IncidentState(...), IncidentConfig(), Policy())
    """

    _runtime: Approvals

    @workflow.query
    def state(self) -> IncidentState:
        return self._runtime.state

    # Signals are the Temporal CLI's path, open to whoever may signal workflows (trusted operators):
    # they are recorded `via: temporal`, whatever the payload claims.
    @workflow.signal
    def approve(self, decision: Decision) -> None:
        self._runtime.decide(decision.model_copy(update={"via": "temporal"}), approved=True)

    @workflow.signal
    def reject(self, decision: Decision) -> None:
        self._runtime.decide(decision.model_copy(update={"via": "temporal"}), approved=False)

    @workflow.update
    def decide(self, request: DecisionRequest) -> IncidentState:
        self._runtime.decide(request, request.approve)
        return self._runtime.state

    @decide.validator
    def _validate_decide(self, request: DecisionRequest) -> None:
        if refusal := self._runtime.refusal(request, request.approve):
            raise ValueError(refusal)


def decision_name(approved: bool) -> str:
    """How the timeline names a decision: "approval" or "rejection"."""
    return "approval" if approved else "rejection"


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
