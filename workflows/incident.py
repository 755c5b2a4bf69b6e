"""IncidentWorkflow: one durable workflow per alert fingerprint.

Received -> Gathering -> Diagnosing -> then the playbook pinned at start (workflows/interpreter.py,
run on `IncidentRuntime`), or, when no playbook fits the alert, a catalogue plan proposed for approval,
run by the same interpreter as a generated playbook (workflows/catalogue_playbook.py):
AwaitingApproval -> Executing -> Verifying -> Resolved, with the side exits RolledBack, Escalated,
Rejected, Cancelled and Failed. Deterministic code only: every side effect is an activity called by
name; changes in what the workflow does are guarded by `workflow.patched` (see tests/replay).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from fnmatch import fnmatchcase
from typing import Literal

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from workflows import search_attributes as sa
from workflows.actions import RISK_ORDER, acted_on
from workflows.activity_names import DIAGNOSE, GATHER_EVIDENCE, MEMORY_RECORD_INCIDENT, VERIFY
from workflows.activity_options import (
    ACTION_HEARTBEAT,
    ACTION_TIMEOUT,
    APPLY_RETRY,
    READ_RETRY,
    CallOptions,
)
from workflows.alerts import Alert
from workflows.approvals import ApprovalHandlers
from workflows.catalogue import plan_for, refusal
from workflows.catalogue_playbook import as_playbook, ending, human_reason, probe_url, unverifiable
from workflows.continuation import CONTINUE_AS_NEW_PATCH, ContinueAsNewDue, Diverged, ResumableRuntime
from workflows.decisions import Trust
from workflows.diagnosis import DiagnoseRequest, Diagnosis
from workflows.evidence import Evidence
from workflows.failures import REFUSED_TARGETS_PATCH, error_text, refused_target
from workflows.incident_memory import IncidentMemory
from workflows.incident_models import IncidentInput, IncidentState
from workflows.interpreter import CLEAN_PREVIEW_PATCH, TRUSTED_CONTEXT_PATCH
from workflows.investigation import investigate
from workflows.phases import Phase
from workflows.plans import ActionOutcome, Plan, PlannedAction, VerifyRequest
from workflows.playbook import ParamError, resolve_params
from workflows.playbook_host import ApprovalRequest
from workflows.playbook_run import DRY_RUN_ENDING, final_phase, run_catalogue_plan, run_playbook
from workflows.policy import ActionContext, Verdict
from workflows.policy import evaluate as evaluate_policy
from workflows.ui_details import line

# Playbooks, policy and blast-radius limits after the diagnosis (issue 4); incidents started before
# replay the catalogue path they began with.
PLAYBOOKS_PATCH = "playbooks-and-policy"
# Without a model configured where the incident started (IncidentConfig.llm) no `llm.policy` runs.
LLM_CONFIGURED_PATCH = "llm-only-when-configured"
# The catalogue plan runs as a generated playbook on the interpreter (workflows/catalogue_playbook.py,
# issue 11): one engine. Incidents started before replay the catalogue engine below (`_propose` on).
# After 2027-03-06 none of those can still run (an approval gives up after hours, not months): then
# change the check to `workflow.deprecate_patch(CATALOGUE_PLAYBOOK_PATCH)` and delete that engine, and
# in a later release the deprecate_patch call too.
CATALOGUE_PLAYBOOK_PATCH = "catalogue-as-playbook"
PLAN_STEP = "plan"  # the old engine's one approval, for the whole plan
EVIDENCE_DEADLINE = timedelta(minutes=2)  # from the start of gathering to a diagnosis, retries included
DIAGNOSE_TIMEOUT = timedelta(minutes=1)
VERIFY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2), backoff_coefficient=1.5, maximum_interval=timedelta(seconds=15)
)
PREVIEW_CALL = CallOptions(ACTION_TIMEOUT, READ_RETRY, ACTION_HEARTBEAT)
APPLY_CALL = CallOptions(ACTION_TIMEOUT, APPLY_RETRY, ACTION_HEARTBEAT)

Outcome = Literal["approved", "rejected", "resolved", "timeout", "nobody"]


@workflow.defn(name="IncidentWorkflow")
class IncidentWorkflow(ApprovalHandlers):
    _runtime: ResumableRuntime

    @workflow.init
    def __init__(self, inp: IncidentInput) -> None:
        self._input = inp
        self._state = IncidentState(
            incident_id=workflow.info().workflow_id,
            phase=Phase.RECEIVED,
            alert=inp.alert,
            trace_id=inp.trace_id,
        )
        if inp.continued is not None:  # continued as new while waiting: the incident so far
            self._state = inp.continued.state
        self._runtime = ResumableRuntime(self._state, inp.config, inp.policy, inp.continued)
        # Set when guardrails distrust the diagnosis: auto-approval is then off for this incident.
        self._requires_human = inp.continued.requires_human if inp.continued else ""
        self._refused = ""  # the executor's reason when it refused a catalogue action's target

    # --- handlers -------------------------------------------------------------------------------

    # `state`, `approve`, `reject` and `decide` come from ApprovalHandlers, answered by the runtime.

    @workflow.signal
    def alert(self, alert: Alert) -> None:
        """Every notification for this fingerprint: the first firing one, re-fires and resolves."""
        with self._runtime.heard():  # recorded even while a continued run replays its engine
            self._heard(alert)

    def _heard(self, alert: Alert) -> None:
        if (differs := _label_diff(self._input.alert, alert)) and workflow.patched(TRUSTED_CONTEXT_PATCH):
            # A fingerprint is only a name for the labels: a notification naming this incident with
            # other labels is another alert borrowing it, and must not resolve or re-fire this one.
            self._runtime.record(
                f"refused {alert.status} notification",
                f"its labels differ from this incident's ({differs}); not applied",
            )
            return
        self._state.alert_updates += alert.repeats
        if alert.status == "resolved":
            if not self._runtime.resolved:
                self._runtime.resolved = True
                self._state.resolved_at = workflow.now()
                self._runtime.record("alert resolved", f"source reported resolution (endsAt {alert.ends_at})")
        elif self._state.alert_updates > 1:
            coalesced = f" ({alert.repeats} identical, coalesced)" if alert.repeats > 1 else ""
            self._runtime.record(
                "alert re-fired", f"notification #{self._state.alert_updates} for this fingerprint{coalesced}"
            )

    # --- the incident ---------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: IncidentInput) -> IncidentState:
        alert = inp.alert
        if workflow.patched(TRUSTED_CONTEXT_PATCH):
            self._trust(inp)
        workflow.upsert_search_attributes(
            [
                sa.ALERT_NAME.value_set(alert.name),
                sa.SERVICE.value_set(alert.service),
                sa.SEVERITY.value_set(alert.severity),
                sa.ENVIRONMENT.value_set(self._runtime.environment),
            ]
        )
        if inp.continued is not None:
            workflow.upsert_search_attributes([sa.INCIDENT_PHASE.value_set(self._state.phase.value)])
        self._runtime.may_continue = workflow.patched(CONTINUE_AS_NEW_PATCH)
        continuing = evicted = False
        try:
            await self._run(alert)
        except ContinueAsNewDue:
            continuing = True  # the blast-radius lease goes with the incident into its next run
        except GeneratorExit:
            # Python is closing this run's coroutine: a stopped worker let go of it without evicting
            # it (sdk-python#494). The incident goes on from its history elsewhere, lease and all,
            # and no command may be sent from here. Never raised in a live workflow task.
            evicted = True
            raise
        except Diverged as err:
            await self._runtime.enter(Phase.ESCALATED, "continued incident took another path", str(err))
        except asyncio.CancelledError:
            await self._runtime.enter(
                Phase.CANCELLED, "workflow cancelled", "cancellation requested through Temporal"
            )
            raise
        finally:
            if not (continuing or evicted):
                await self._runtime.close()
        if continuing:
            await workflow.wait_condition(workflow.all_handlers_finished)
            carried = self._runtime.continuation(self._requires_human)
            workflow.continue_as_new(inp.model_copy(update={"continued": carried}))
        if workflow.patched("record-incident-memory"):
            await self._remember()
        return self._state

    def _trust(self, inp: IncidentInput) -> None:
        """Policy follows the sender's credential (IncidentInput), never the alert's own labels."""
        environment = inp.environment or inp.policy.default_environment
        self._runtime.trust = Trust(environment, inp.opened_by, tuple(inp.sender_services))
        self._state.environment, self._state.opened_by = environment, inp.opened_by
        if (label := inp.alert.environment) and label != environment:
            self._runtime.record(
                "environment", f"{environment} from the sender's credential; label says {label}"
            )

    async def _remember(self) -> None:
        """Closed incidents become memory: later diagnoses recall them as priors and evidence.

        Only what diagnosis needs goes (IncidentMemory), not annotations, evidence or transcripts. The
        input is not part of the command a replay compares, so no patch is needed for the change.
        """
        try:
            await workflow.execute_activity(
                MEMORY_RECORD_INCIDENT,
                IncidentMemory.of(self._state),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=READ_RETRY,
                summary=f"remember this {self._state.phase.value} incident",
            )
        except ActivityError as err:
            self._runtime.record("incident not stored in memory", error_text(err))

    async def _run(self, alert: Alert) -> None:
        runtime = self._runtime
        # The trace id is part of the input, so replays see the same one; runs without it record none.
        trace = f"; trace {self._state.trace_id}" if self._state.trace_id else ""
        await runtime.enter(Phase.RECEIVED, "alert received", f"{alert.name} from {alert.source}{trace}")
        if runtime.resolved:
            await runtime.enter(Phase.CANCELLED, "nothing to do", "the alert was already resolved")
            return
        await runtime.enter(Phase.GATHERING, "gathering evidence")
        evidence = await self._gather(alert)
        await runtime.enter(Phase.DIAGNOSING, "diagnosing", evidence.summary())
        diagnosis = self._state.diagnosis = await self._diagnose(alert, evidence)
        runtime.record(
            "diagnosis", f"{diagnosis.category} ({diagnosis.confidence:.2f}): {diagnosis.explanation}"
        )
        if not workflow.patched(PLAYBOOKS_PATCH):
            await self._propose(alert, plan_for(alert, diagnosis), policy=False)
            return
        pinned = self._input.playbook
        unusable = self._unusable()
        if pinned is not None and not unusable:
            result = await run_playbook(runtime, pinned, diagnosis, self._requires_human)
            await runtime.enter(*final_phase(result))
            return
        runtime.record(
            "no playbook", unusable or f"no playbook matches {alert.name}; falling back to the catalogue"
        )
        await self._propose(alert, plan_for(alert, diagnosis, proposals=True), policy=True)

    def _unusable(self) -> str:
        """Why the pinned playbook cannot run for this alert (a label it needs is missing); empty if it can."""
        pinned, alert = self._input.playbook, self._input.alert
        if pinned is None:
            return ""
        try:
            resolve_params(pinned.playbook, alert.labels, alert.annotations)
        except ParamError as err:
            return f"playbook {pinned.name} matches but cannot run: {err}; falling back to the catalogue"
        return ""

    # --- the catalogue plan, proposed for approval ------------------------------------------------

    async def _propose(self, alert: Alert, plan: Plan | None, policy: bool) -> None:
        """A catalogue plan: previewed, approved by a human, executed, verified.

        With `policy`, the incident's policy is asked about every action first; a refusal, a dry run
        or a wait (window, limit) hands the plan to a human instead: without a playbook nothing is held.
        Since CATALOGUE_PLAYBOOK_PATCH the interpreter does all that (`_run_as_playbook`); what follows
        that branch, and the methods it calls, are the old engine that earlier incidents replay.
        """
        runtime = self._runtime
        if plan is None:
            await runtime.enter(
                Phase.ESCALATED, "no remediation known", f"no playbook or catalogue entry for {alert.name}"
            )
            return
        self._state.plan = plan
        runtime.record("plan", plan.summary)
        if (malformed := refusal(plan, alert)) and workflow.patched(REFUSED_TARGETS_PATCH):
            # The playbooks' rule for alert text, here too: nothing unvalidated reaches an executor.
            await runtime.enter(Phase.ESCALATED, "catalogue plan refused", malformed)
            return
        if policy and not self._continues_old_engine() and workflow.patched(CATALOGUE_PLAYBOOK_PATCH):
            await self._run_as_playbook(plan)
            return
        verdicts = await self._verdicts(plan) if policy else []
        if refused := [v for v in verdicts if not v.allowed]:
            await runtime.enter(Phase.ESCALATED, "policy refused the plan", refused[0].reason)
            return
        for planned in plan.actions:
            planned.preview = await self._preview(planned)
            if self._refused:
                await runtime.enter(Phase.ESCALATED, f"{planned.step} refused by the executor", self._refused)
                return
        if any(v.dry_run for v in verdicts):
            await runtime.enter(
                Phase.ESCALATED, DRY_RUN_ENDING, "plan, previews and verdicts recorded; a human must act"
            )
            return
        if waits := [v.wait_until for v in verdicts if v.wait_until]:
            await runtime.enter(Phase.ESCALATED, "policy asks to wait", f"until {max(waits):%Y-%m-%d %H:%M}Z")
            return
        if runtime.resolved:
            await runtime.enter(Phase.CANCELLED, "alert resolved before any action ran")
            return
        outcome = await self._await_approval(plan, verdicts)
        if outcome == "rejected":
            await runtime.enter(Phase.REJECTED, "remediation rejected", self._state.approvals[-1].reason)
        elif outcome == "resolved":
            await runtime.enter(Phase.CANCELLED, "alert resolved before any action ran")
        elif outcome == "timeout":
            await runtime.enter(
                Phase.ESCALATED, "approval timed out", "nobody decided before the last deadline"
            )
        elif outcome == "nobody":
            await runtime.enter(
                Phase.ESCALATED,
                "nobody may approve the whole plan",
                "no approver is eligible for every action",
            )
        else:
            await self._execute_and_verify(plan.actions, alert)

    def _continues_old_engine(self) -> bool:
        """Whether this run continues (as new) one that waited for the old engine's approval of the plan:
        its journal holds that engine's calls, so it carries on with that engine."""
        carried = self._input.continued
        return carried is not None and carried.approval_step == PLAN_STEP

    async def _run_as_playbook(self, plan: Plan) -> None:
        """The plan as a generated playbook, run by the interpreter as any playbook is."""
        runtime, config, alert = self._runtime, self._input.config, self._state.alert
        pinned = as_playbook(plan, alert, config.verify_timeout)
        human = human_reason(config, alert, self._requires_human)
        result = await run_catalogue_plan(runtime, pinned, self._state.diagnosis, human)
        await runtime.enter(*ending(result, self._state))

    async def _verdicts(self, plan: Plan) -> list[Verdict]:
        alert, diagnosis, runtime = self._state.alert, self._state.diagnosis, self._runtime
        verdicts: list[Verdict] = []
        for planned in plan.actions:
            service = self._target(planned) if workflow.patched(TRUSTED_CONTEXT_PATCH) else alert.service
            context = ActionContext(
                action=planned.action.name,
                risk=planned.action.risk,
                service=service,
                environment=runtime.environment,
                confidence=diagnosis.confidence if diagnosis else None,
                now=workflow.now(),
                usage=await runtime.usage(service),
            )
            verdicts.append(evaluate_policy(self._input.policy, context))
            if not any(fnmatchcase(service, glob) for glob in runtime.trust.services):
                verdicts[-1] = Verdict(
                    allowed=False,
                    reasons=[f"{service!r} is outside the services the alert's sender may speak for"],
                )
            runtime.record(f"policy for {planned.step}", verdicts[-1].text())
        return verdicts

    def _target(self, planned: PlannedAction) -> str:
        return acted_on(planned.action) or self._state.alert.service

    def _unverifiable(self, plan: Plan) -> str:
        """Why a catalogue plan must not run without a human even when auto-approval is on."""
        if not workflow.patched(CLEAN_PREVIEW_PATCH):
            return ""
        if failed := [p.step for p in plan.actions if p.preview is None or not p.preview.ok]:
            return f"the preview of {', '.join(failed)} failed"
        return unverifiable(self._state.alert, self._input.config)

    async def _await_approval(self, plan: Plan, verdicts: list[Verdict]) -> Outcome:
        runtime, config = self._runtime, self._input.config
        needed = max([plan.required_approvers, *(v.approvers_required for v in verdicts)])
        policy_asks = any(v.needs_approval for v in verdicts)
        unclean = self._unverifiable(plan) if config.auto_approve else ""
        if config.auto_approve and not self._requires_human and not policy_asks and not unclean:
            runtime.record("auto-approved", "auto_approve is set for this incident")
            return "approved"
        if config.auto_approve:
            why = self._requires_human or unclean or "the policy asks for a human"
            runtime.record("auto-approval withheld", why)
            needed = max(needed, 1)
        # Everyone who approves must be allowed to approve every action of the plan.
        allowed = [set(v.eligible_approvers) for v in verdicts if v.eligible_approvers]
        eligible = sorted(set.intersection(*allowed)) if allowed else []
        if allowed and not eligible:
            return "nobody"
        reasons = "; ".join(v.reason for v in verdicts if v.needs_approval)
        risks = [a.action.risk for a in plan.actions]
        targets = {self._target(a) for a in plan.actions}
        result = await runtime.request_approval(
            ApprovalRequest(
                step=PLAN_STEP,
                summary=self._plan_text(),
                reason=reasons,
                approvers_required=needed,
                eligible=eligible,
                risk=max(risks, key=RISK_ORDER.__getitem__) if risks else None,
                target=targets.pop() if len(targets) == 1 else "",
            )
        )
        return "approved" if result.outcome == "approved" else result.outcome

    async def _execute_and_verify(self, actions: list[PlannedAction], alert: Alert) -> None:
        runtime = self._runtime
        await runtime.enter(Phase.EXECUTING, "executing plan")
        done: list[PlannedAction] = []
        for planned in actions:
            done.append(planned)
            try:
                result = await runtime.run_action(planned.step, planned.action, APPLY_CALL)
            except ActivityError:
                result = planned.result or ActionOutcome(ok=False, summary="apply failed")
            if not result.ok:
                runtime.record(f"step {planned.step} failed", result.summary)
                await self._compensate(done)
                await runtime.enter(Phase.FAILED, "remediation failed", result.summary)
                return
            runtime.record(f"step {planned.step} applied", result.summary)
        await runtime.enter(Phase.VERIFYING, "verifying")
        if await self._verify(alert):
            await runtime.enter(Phase.RESOLVED, "verified healthy")
            return
        await self._compensate(done)
        await runtime.enter(Phase.ROLLED_BACK, "verification failed; compensations ran")

    # --- steps ----------------------------------------------------------------------------------

    async def _gather(self, alert: Alert) -> Evidence:
        if self._input.continued and self._state.evidence is not None:
            return self._state.evidence  # gathered by the run this one continues
        try:
            return await workflow.execute_activity(
                GATHER_EVIDENCE,
                alert,
                result_type=Evidence,
                start_to_close_timeout=EVIDENCE_DEADLINE,
                # Retries share the one deadline: a hanging probe or Prometheus cannot hold the
                # diagnosis back longer than that (it then runs on what little is known).
                schedule_to_close_timeout=EVIDENCE_DEADLINE,
                retry_policy=READ_RETRY,
                summary=line(f"gather evidence on {alert.service or alert.name}"),
            )
        except ActivityError as err:
            # Diagnosis still runs on what little we know; a stalled incident helps nobody.
            self._runtime.record("evidence gathering failed", error_text(err))
            return Evidence(notes=[f"evidence gathering failed: {error_text(err)}"])

    async def _diagnose(self, alert: Alert, evidence: Evidence) -> Diagnosis:
        self._state.evidence = evidence
        self._state.evidence_summary = evidence.summary()
        if self._input.continued and self._state.diagnosis is not None:
            return self._state.diagnosis  # diagnosed by the run this one continues
        try:
            heuristic = await workflow.execute_activity(
                DIAGNOSE,
                DiagnoseRequest(alert=alert, evidence=evidence),
                result_type=Diagnosis,
                # The rules take well under a second (memory priors a few more): an attempt that
                # hangs is retried after this, not after minutes (seen under load, issue 12).
                start_to_close_timeout=DIAGNOSE_TIMEOUT,
                retry_policy=READ_RETRY,
                summary=line(f"diagnose {alert.name}"),
            )
        except ActivityError as err:
            self._runtime.record("diagnosis failed", error_text(err))
            heuristic = Diagnosis(category="unknown", confidence=0.0, explanation=error_text(err))
        if not workflow.patched("llm-investigation"):
            return heuristic
        if not self._input.config.llm and workflow.patched(LLM_CONFIGURED_PATCH):
            return heuristic  # no model configured: asking the worker for its policy is a wasted activity
        result = await investigate(alert, evidence, heuristic, self._runtime.record)
        if result.requires_human:
            self._requires_human = result.requires_human_reason or "the investigation asks for a human"
        return result.diagnosis

    async def _preview(self, planned: PlannedAction) -> ActionOutcome:
        try:
            preview = await self._runtime.preview_action(planned.step, planned.action, PREVIEW_CALL)
        except ActivityError as err:
            if (refused := refused_target(err)) and workflow.patched(REFUSED_TARGETS_PATCH):
                self._refused = refused
            preview = ActionOutcome(ok=False, summary=f"preview failed: {error_text(err)}")
        self._runtime.record(f"preview of {planned.step}", preview.summary)
        return preview

    async def _verify(self, alert: Alert) -> bool:
        request = VerifyRequest(alert=alert, probe_url=probe_url(alert))
        try:
            result = await workflow.execute_activity(
                VERIFY,
                request,
                result_type=str,
                schedule_to_close_timeout=self._input.config.verify_timeout,
                retry_policy=VERIFY_RETRY,
                summary=line(f"verify {alert.service or alert.name} is healthy"),
            )
        except ActivityError as err:
            self._runtime.record("verification failed", error_text(err))
            return False
        self._runtime.record("verification passed", result)
        return True

    async def _compensate(self, done: list[PlannedAction]) -> None:
        for planned in reversed(done):
            # The runtime keeps a failed rollback on the plan; every compensation is still attempted.
            with contextlib.suppress(ActivityError):
                await self._runtime.rollback_action(planned.step, planned.action, APPLY_CALL)
            summary = planned.rollback.summary if planned.rollback else ""
            self._runtime.record(f"rollback of {planned.step}", summary)

    def _plan_text(self) -> str:
        plan = self._state.plan
        if plan is None:
            return ""
        previews = "; ".join(f"{a.step}: {a.preview.summary}" for a in plan.actions if a.preview)
        return f"{plan.summary}. Preview: {previews}" if previews else plan.summary


def _label_diff(ours: Alert, theirs: Alert) -> str:
    """Which labels differ (empty: none). A slim notice (`Alert.notice`) has only the labels' digest."""
    if theirs.digest and not theirs.labels:
        return "" if theirs.digest == ours.labels_digest() else "the labels' digest"
    keys = sorted(k for k in {*ours.labels, *theirs.labels} if ours.labels.get(k) != theirs.labels.get(k))
    return ", ".join(keys[:5]) + (" ..." if len(keys) > 5 else "")
