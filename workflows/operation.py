"""OperationWorkflow: a pinned playbook run over several targets, without an alert.

Maintenance started by hand (`remediator run`) or by a Temporal Schedule: health checks, backups,
log rotation, batch restarts. Received -> Executing -> the worst ending of its targets (Resolved,
Escalated, Rejected, RolledBack, Failed; Cancelled when cancelled).

Each target runs in a child workflow, `OperationTargetWorkflow`, which interprets the playbook on the
shared `IncidentRuntime` (workflows/runtime.py) exactly as an incident does: policy before every action, previews,
approvals with escalation, blast-radius limits, verification, compensations. Children rather than the
interpreter per target inside this workflow, because then

- per-target retry is Temporal's: a target whose run failed (or rolled back) fails its child, and the
  child's RetryPolicy runs it again (a new run, so the executors' idempotency keys are fresh);
- each target has its own history, `state` query, `IncidentPhase` and `approve`/`reject` signals, so
  a person can follow or approve one target, and a 500-target batch does not grow one history past
  Temporal's limits.

At most `concurrency` children run at once: a single loop starts them in order and waits on the
count, so which target starts when is deterministic. `approve` and `reject` sent to the operation
are forwarded to every running target; a target not waiting for approval records them as ignored.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError, CancelledError, ChildWorkflowError, FailureError
from temporalio.workflow import ParentClosePolicy

from workflows import search_attributes as sa
from workflows.approvals import ApprovalHandlers
from workflows.decisions import Decision
from workflows.error_types import ErrorType
from workflows.incident_models import IncidentState, PlaybookRef, TimelineEntry
from workflows.operation_models import (
    FAILED,
    OPERATION_WORKFLOW,
    TARGET_WORKFLOW,
    OperationInput,
    OperationState,
    TargetInput,
    TargetResult,
)
from workflows.phases import Phase
from workflows.playbook_host import PlaybookResult
from workflows.playbook_run import final_phase, run_playbook
from workflows.runtime import IncidentRuntime

# The worst phase among the targets is the operation's; earlier in this list is worse.
_SEVERITY = (Phase.FAILED, Phase.ROLLED_BACK, Phase.REJECTED, Phase.ESCALATED, Phase.CANCELLED)


@workflow.defn(name=TARGET_WORKFLOW)
class OperationTargetWorkflow(ApprovalHandlers):
    """One target of an operation: its pinned playbook, run like an incident without diagnosis."""

    _runtime: IncidentRuntime

    @workflow.init
    def __init__(self, inp: TargetInput) -> None:
        self._state = IncidentState(
            incident_id=workflow.info().workflow_id, phase=Phase.RECEIVED, alert=inp.alert
        )
        policy = inp.policy.model_copy(update={"dry_run": True}) if inp.dry_run else inp.policy
        self._runtime = IncidentRuntime(self._state, inp.config, policy)

    @workflow.run
    async def run(self, inp: TargetInput) -> TargetResult:
        alert, runtime = inp.alert, self._runtime
        workflow.upsert_search_attributes(
            [
                sa.ALERT_NAME.value_set(alert.name),
                sa.SERVICE.value_set(alert.service),
                sa.ENVIRONMENT.value_set(alert.environment),
            ]
        )
        started = workflow.now()
        evicted = False
        try:
            await runtime.enter(Phase.RECEIVED, "operation target", f"{inp.target} of {inp.operation_id}")
            result = await run_playbook(runtime, inp.pinned)
            await runtime.enter(*final_phase(result))
        except asyncio.CancelledError:
            await runtime.enter(Phase.CANCELLED, "workflow cancelled", "the operation was cancelled")
            raise
        except GeneratorExit:
            evicted = True  # a stopped worker's run, closed by Python: see IncidentWorkflow.run
            raise
        finally:
            if not evicted:
                await runtime.close()
        report = _report(inp.target, result, self._state.phase, started)
        if result.outcome in FAILED:
            # Failing the child is what lets its RetryPolicy run the target again.
            raise ApplicationError(
                f"{inp.target}: {result.reason}", report, type=ErrorType.TARGET_FAILED.value
            )
        return report


def _report(target: str, result: PlaybookResult, phase: Phase, started: datetime) -> TargetResult:
    return TargetResult(
        target=target,
        status=result.outcome,
        phase=phase,
        workflow_id=workflow.info().workflow_id,
        attempts=workflow.info().attempt,
        reason=result.reason,
        applied=result.applied,
        path=result.path,
        started_at=started,
        finished_at=workflow.now(),
    )


@workflow.defn(name=OPERATION_WORKFLOW)
class OperationWorkflow:
    @workflow.init
    def __init__(self, inp: OperationInput) -> None:
        pinned = inp.pinned
        self._input = inp
        self._state = OperationState(
            operation_id=workflow.info().workflow_id,
            playbook=PlaybookRef(name=pinned.name, sha256=pinned.sha256, source=pinned.source),
            phase=Phase.RECEIVED,
            dry_run=inp.dry_run,
            environment=inp.environment,
            concurrency=inp.concurrency,
            attempts=inp.attempts,
            started_by=inp.started_by,
            targets=[TargetResult(target=t) for t in inp.targets],
        )
        self._in_flight = 0

    @workflow.query
    def state(self) -> OperationState:
        return self._state

    @workflow.signal
    async def approve(self, decision: Decision) -> None:
        await self._forward("approve", decision)

    @workflow.signal
    async def reject(self, decision: Decision) -> None:
        await self._forward("reject", decision)

    async def _forward(self, signal: str, decision: Decision) -> None:
        running = [t for t in self._state.targets if t.status == "running"]
        self._note(f"{signal} by {decision.approver}", f"forwarded to {len(running)} running target(s)")
        for target in running:
            try:
                await workflow.get_external_workflow_handle(target.workflow_id).signal(signal, decision)
            except FailureError as err:  # it finished meanwhile
                self._note(f"{signal} not forwarded to {target.target}", str(err))

    @workflow.run
    async def run(self, inp: OperationInput) -> OperationState:
        attributes = [sa.ALERT_NAME.value_set(inp.pinned.name)]
        if inp.environment:
            attributes.append(sa.ENVIRONMENT.value_set(inp.environment))
        workflow.upsert_search_attributes(attributes)
        mode = ", dry-run" if inp.dry_run else ""
        self._enter(
            Phase.RECEIVED,
            "operation started",
            f"{inp.pinned.name} (sha256 {inp.pinned.sha256[:12]}) over {len(inp.targets)} target(s), "
            f"{inp.concurrency} at a time{mode}" + (f"; by {inp.started_by}" if inp.started_by else ""),
        )
        try:
            self._enter(Phase.EXECUTING, "running targets")
            await self._run_targets()
        except asyncio.CancelledError:
            self._enter(Phase.CANCELLED, "operation cancelled", "cancellation requested through Temporal")
            raise
        self._finish()
        return self._state

    async def _run_targets(self) -> None:
        inp = self._input
        running: list[asyncio.Task[None]] = []
        try:
            for result in self._state.targets:
                await workflow.wait_condition(lambda: self._in_flight < inp.concurrency)
                if self._halted():
                    result.status = "skipped"
                    result.reason = f"not started: more than {inp.max_failures} target(s) failed"
                    continue
                self._in_flight += 1
                running.append(asyncio.create_task(self._run_target(result)))
            await asyncio.gather(*running)
        except asyncio.CancelledError:
            # Cancelling a child's task asks Temporal to cancel the child, and waits until it has
            # ended (its compensations and its Cancelled phase included).
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            raise

    def _halted(self) -> bool:
        limit = self._input.max_failures
        return limit is not None and sum(t.status in FAILED for t in self._state.targets) > limit

    async def _run_target(self, result: TargetResult) -> None:
        inp = self._input
        result.status, result.started_at = "running", workflow.now()
        result.workflow_id = f"{self._state.operation_id}.{result.target}"
        self._note(f"target {result.target} started", result.workflow_id)
        child = TargetInput(
            operation_id=self._state.operation_id,
            target=result.target,
            pinned=inp.pinned,
            policy=inp.policy,
            config=inp.config,
            alert=inp.target_alert(result.target),
            dry_run=inp.dry_run,
        )
        try:
            final = await workflow.execute_child_workflow(
                OperationTargetWorkflow.run,
                child,
                id=result.workflow_id,
                retry_policy=RetryPolicy(maximum_attempts=inp.attempts, initial_interval=inp.retry_interval),
                parent_close_policy=ParentClosePolicy.REQUEST_CANCEL,
            )
        except ChildWorkflowError as err:
            final = _failed(result, err)
        finally:
            self._in_flight -= 1
        index = self._state.targets.index(result)
        self._state.targets[index] = final
        self._note(f"target {final.target}: {final.status}", final.reason)

    def _finish(self) -> None:
        targets = self._state.targets
        resolved = sum(t.status == "resolved" for t in targets)
        self._state.health_score = round(100 * resolved / len(targets))
        phases = {t.phase for t in targets if t.phase is not None}
        phase = next((p for p in _SEVERITY if p in phases), Phase.RESOLVED)
        counts = ", ".join(f"{n} {status}" for status, n in Counter(t.status for t in targets).items())
        self._state.summary = (
            f"{resolved} of {len(targets)} target(s) resolved ({counts}); health score "
            f"{self._state.health_score}" + ("; dry-run: nothing was executed" if self._input.dry_run else "")
        )
        self._enter(phase, "operation finished", self._state.summary)

    # --- bookkeeping ----------------------------------------------------------------------------

    def _note(self, event: str, detail: str = "") -> None:
        self._state.timeline.append(
            TimelineEntry(at=workflow.now(), phase=self._state.phase, event=event, detail=detail)
        )

    def _enter(self, phase: Phase, event: str, detail: str = "") -> None:
        self._state.phase = phase
        self._note(event, detail)
        workflow.upsert_search_attributes([sa.INCIDENT_PHASE.value_set(phase.value)])


def _failed(result: TargetResult, err: ChildWorkflowError) -> TargetResult:
    """The failed child's own report (its error's details), or what its failure says."""
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.type == ErrorType.TARGET_FAILED and cause.details:
        return TargetResult.model_validate(cause.details[0])
    if isinstance(cause, CancelledError):
        update = {
            "status": "cancelled",
            "phase": Phase.CANCELLED,
            "reason": "cancelled",
            "finished_at": workflow.now(),
        }
        return result.model_copy(update=update)
    return result.model_copy(
        update={
            "status": "failed",
            "phase": Phase.FAILED,
            "reason": str(cause or err),
            "finished_at": workflow.now(),
        }
    )
