"""Continue-as-new for IncidentWorkflow: an incident outlives any history limit while it waits.

An incident can wait for approval for hours while its alert re-fires every few minutes: each
notification is a signal in its history, and Temporal ends a run whose history passes 51,200 events or
50 MB, approvals and all. So while it waits for approval (where incidents spend their time), once its
run's history passes `IncidentConfig.continue_after_events` / `continue_after_bytes` or Temporal
suggests it, the incident continues as new, carrying a `Continuation`: its state (timeline, approvals,
re-fire count, plan, diagnosis), the pinned playbook and policy (its `IncidentInput`), and a journal.

The journal holds every call the incident made through its runtime (checks, previews, applies,
rollbacks, blast-radius counts, approvals) with the answer. The new run runs the same engine (the
playbook interpreter, or the catalogue plan) from the top, but each journaled call is answered from
the journal instead of being made again, and the timeline, phases and notifications stay quiet, until
the engine reaches the approval it was waiting for: that one is asked live again, counting the
decisions already given, with its escalation chain running on from when it was first asked. Nothing
runs twice. A run that asks for another call than the journal holds (a path that depends on the
clock, say) stops with `Diverged`, and the incident escalates to a human rather than guess.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel
from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.actions import ActionSpec
from workflows.activity_options import CallOptions
from workflows.approvals import decision_name
from workflows.checks import CHECK_OUTPUTS, CheckSpec
from workflows.decisions import Decision, Trust
from workflows.incident_models import Continuation, IncidentConfig, IncidentState, JournalEntry
from workflows.phases import Phase
from workflows.plans import ActionOutcome
from workflows.playbook_host import ApprovalRequest, ApprovalResult
from workflows.policy import Policy, Usage
from workflows.runtime import IncidentRuntime

T = TypeVar("T", bound=BaseModel)
Kind = Literal["check", "preview", "apply", "rollback", "usage", "approval"]
# Runs started before continue-as-new existed never continue as new (their histories replay as ran).
CONTINUE_AS_NEW_PATCH = "continue-as-new-while-waiting"
# Runs before it refused a decision that reached them ahead of their resumed approval wait.
HOLD_EARLY_DECISIONS_PATCH = "hold-decisions-until-resumed"


class ContinueAsNewDue(Exception):
    """The approval wait woke up with the history past its threshold: continue as new now."""


class Diverged(Exception):
    """The continued run asked for another call than the journal holds at this point."""


class ResumableRuntime(IncidentRuntime):
    """An `IncidentRuntime` that journals its calls, and answers them from a carried journal after continue-as-new."""

    def __init__(
        self,
        state: IncidentState,
        config: IncidentConfig,
        policy: Policy,
        carried: Continuation | None = None,
        trust: Trust | None = None,
    ) -> None:
        super().__init__(state, config, policy, trust)
        self.journal: list[JournalEntry] = list(carried.journal) if carried else []
        self.runs = carried.runs + 1 if carried else 1
        self.may_continue = False  # set by the workflow from CONTINUE_AS_NEW_PATCH
        self._cursor = 0  # journal entries answered so far
        self._replay = len(self.journal)  # how many to answer before the run is live again
        self._quiet = carried is not None  # replaying: the timeline already has all of it
        # The approval the earlier run waited for, as it left it.
        self._pending = carried if carried is not None and carried.asked_at is not None else None
        self._before: Phase | None = None  # the phase the approval being asked interrupted
        self._asking: ApprovalRequest | None = None
        self._asked_at: datetime | None = None
        self._floor: int | None = None  # history length when the current approval wait began
        self._resumed_phase: Phase | None = None  # to enter again once the resumed approval is given
        self._held: list[tuple[Decision, bool]] = []  # decisions that came before the wait resumed
        if carried is not None:
            self.resolved = state.resolved_at is not None
            self._leased = carried.leased

    # --- replay ---------------------------------------------------------------------------------

    def _replayed(self, kind: str, step: str) -> JournalEntry | None:
        """The journaled answer to this call, or None once the journal is spent (the run is live again)."""
        if self._cursor >= self._replay:
            self._quiet = False
            return None
        entry = self.journal[self._cursor]
        if (entry.kind, entry.step) != (kind, step):
            self._quiet = False
            raise Diverged(
                f"after continuing as new the incident asked for {kind} {step!r} where it had "
                f"{entry.kind} {entry.step!r}"
            )
        self._cursor += 1
        return entry

    def _keep(self, kind: Kind, step: str, output: BaseModel | dict[str, Any]) -> JournalEntry:
        data = output.model_dump(mode="json") if isinstance(output, BaseModel) else output
        self.journal.append(JournalEntry(kind=kind, step=step, output=data))
        return self.journal[-1]

    def _keep_error(self, kind: Kind, step: str, err: ActivityError) -> JournalEntry:
        cause = err.cause
        typed = cause if isinstance(cause, ApplicationError) else None
        self.journal.append(
            JournalEntry(
                kind=kind,
                step=step,
                error=str(cause or err),
                error_type=(typed.type or "") if typed else "",
                non_retryable=typed.non_retryable if typed else False,
            )
        )
        return self.journal[-1]

    async def _journaled(self, kind: Kind, step: str, call: Awaitable[T]) -> T:
        """Make the call live, and journal its answer (or its failure) for a run that continues this one."""
        try:
            output = await call
        except ActivityError as err:
            self._keep_error(kind, step, err)
            raise
        self._keep(kind, step, output)
        return output

    @staticmethod
    def _raise(entry: JournalEntry) -> None:
        if entry.error:
            error = ActivityError(
                "activity error (replayed after continue-as-new)",
                scheduled_event_id=0,
                started_event_id=0,
                identity="",
                activity_type=entry.kind,
                activity_id=entry.step,
                retry_state=None,
            )
            raise error from ApplicationError(
                entry.error, type=entry.error_type or None, non_retryable=entry.non_retryable
            )

    # --- the timeline stays as the earlier run left it while replaying ----------------------------

    def record(self, event: str, detail: str = "") -> None:
        if not self._quiet:
            super().record(event, detail)

    @contextmanager
    def heard(self) -> Iterator[None]:
        """Around a signal handler: what a signal records is new, even while the engine replays."""
        quiet, self._quiet = self._quiet, False
        try:
            yield
        finally:
            self._quiet = quiet

    def decide(self, decision: Decision, approved: bool) -> None:
        with self.heard():
            if (
                self._pending is not None
                and self.desk.asking is None
                and workflow.patched(HOLD_EARLY_DECISIONS_PATCH)
            ):
                # A signal sent as the earlier run continued as new reaches this run first, before
                # it has replayed its way back to the approval it waits for: kept for that wait.
                self._held.append((decision, approved))
                self.record(
                    f"{decision_name(approved)} by {decision.approver} held",
                    "counted once the approval wait resumes",
                )
                return
            super().decide(decision, approved)

    def opened(self) -> None:
        held, self._held = self._held, []
        for decision, approved in held:
            self.decide(decision, approved)

    async def enter(self, phase: Phase, event: str, detail: str = "") -> None:
        if not self._quiet:
            await super().enter(phase, event, detail)

    async def notify(self, step: str, message: str, level: int) -> None:
        if not self._quiet:
            await super().notify(step, message, level)

    # --- calls, journaled -----------------------------------------------------------------------

    async def run_check(self, step: str, check: CheckSpec, call: CallOptions) -> BaseModel:
        if entry := self._replayed("check", step):
            self._raise(entry)
            return CHECK_OUTPUTS[check.type].model_validate(entry.output)
        return await self._journaled("check", step, super().run_check(step, check, call))

    async def preview_action(self, step: str, action: ActionSpec, call: CallOptions) -> ActionOutcome:
        if entry := self._replayed("preview", step):
            self._raise(entry)
            planned = self.planned(step, action)
            planned.preview = ActionOutcome.model_validate(entry.output)
            return planned.preview
        return await self._journaled("preview", step, super().preview_action(step, action, call))

    async def run_action(self, step: str, action: ActionSpec, call: CallOptions) -> ActionOutcome:
        planned = self.planned(step, action)
        if entry := self._replayed("apply", step):
            planned.snapshot = entry.snapshot
            if entry.attempted:
                self._attempted.add(step)
            planned.result = (
                ActionOutcome(ok=False, summary=entry.error)
                if entry.error
                else ActionOutcome.model_validate(entry.output)
            )
            self._raise(entry)
            return planned.result
        try:
            output = await super().run_action(step, action, call)
        except ActivityError as err:
            kept = self._keep_error("apply", step, err)
            kept.snapshot, kept.attempted = planned.snapshot, step in self._attempted
            raise
        kept = self._keep("apply", step, output)
        kept.snapshot, kept.attempted = planned.snapshot, step in self._attempted
        return output

    async def rollback_action(self, step: str, action: ActionSpec, call: CallOptions) -> ActionOutcome:
        if entry := self._replayed("rollback", step):
            planned = self.planned(step, action)
            failed = ActionOutcome(ok=False, summary=f"rollback failed: {entry.error}")
            planned.rollback = failed if entry.error else ActionOutcome.model_validate(entry.output)
            self._raise(entry)
            return planned.rollback
        return await self._journaled("rollback", step, super().rollback_action(step, action, call))

    async def usage(self, service: str) -> Usage:
        if entry := self._replayed("usage", service):
            self._service = service
            return Usage.model_validate(entry.output)
        return await self._journaled("usage", service, super().usage(service))

    async def request_approval(self, request: ApprovalRequest) -> ApprovalResult:
        if entry := self._replayed("approval", request.step):
            return ApprovalResult.model_validate(entry.output)
        # Left set when ContinueAsNewDue leaves the wait: `continuation` names the approval it was.
        self._asking, self._asked_at, self._before = request, None, self.state.phase
        result = await super().request_approval(request)
        self._asking = None
        if self._resumed_phase is not None and result.outcome == "approved":
            # The run that asked went from the phase it was in to AwaitingApproval and would go back.
            await self.enter(self._resumed_phase, "approved; carrying on", ", ".join(result.approvers))
        self._resumed_phase = None
        self._keep("approval", request.step, result)
        return result

    # --- the approval wait ----------------------------------------------------------------------

    def resumed(self, request: ApprovalRequest) -> datetime | None:
        self._floor = None
        pending, self._pending = self._pending, None  # only the first live ask can be the one resumed
        if pending is None or pending.approval_step != request.step:
            self._asked_at = workflow.now()
            return None
        self.resumed_first, self._asked_at = pending.approval_first, pending.asked_at
        before = self._before = pending.phase_before  # and so again if this run continues as new
        self._resumed_phase = before if before in (Phase.EXECUTING, Phase.VERIFYING) else None
        return self._asked_at

    def _decided(self) -> bool:
        return super()._decided() or self._due()

    def _due(self) -> bool:
        if not self.may_continue:
            return False
        info = workflow.info()
        length = info.get_current_history_length()
        if self._floor is None:
            # Only history that grows while waiting continues the run, never the wait's first look:
            # a run that starts past a (low) threshold cannot continue as new again and again.
            self._floor = length
            return False
        return length > self._floor and (
            info.is_continue_as_new_suggested()
            or length >= self.config.continue_after_events
            or info.get_current_history_size() >= self.config.continue_after_bytes
        )

    def continue_if_due(self) -> None:
        # Decisions first: a wait that a decision ended does not continue as new, even past the threshold.
        if not super()._decided() and self._due():
            raise ContinueAsNewDue()

    def continuation(self, requires_human: str) -> Continuation:
        """What the next run needs to pick the wait up where this one leaves it."""
        asking = self._asking
        return Continuation(
            state=self.state,
            journal=self.journal,
            requires_human=requires_human,
            approval_step=asking.step if asking else "",
            approval_first=self.desk.first if asking else 0,
            asked_at=self._asked_at if asking else None,
            phase_before=self._before if asking else None,
            leased=self._leased,
            runs=self.runs,
        )
