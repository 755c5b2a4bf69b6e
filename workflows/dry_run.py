"""PlaybookDryRun: a playbook interpreted in dry-run mode, for `remediator playbook test`.

Nothing is applied and nobody is asked: reads and previews go to the `dryrun.check` and
`dryrun.preview` activities, which the CLI backs with canned outputs from a sample file, and the
result is the path the playbook would take, with every decision and policy verdict.
"""

from __future__ import annotations

from pydantic import BaseModel
from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows.actions import ActionSpec
from workflows.activity_names import DRYRUN_CHECK, DRYRUN_PREVIEW
from workflows.activity_options import CallOptions
from workflows.alerts import Alert
from workflows.checks import CHECK_OUTPUTS, CheckSpec
from workflows.diagnosis import Diagnosis
from workflows.interpreter import PlaybookInterpreter
from workflows.phases import Phase
from workflows.plans import ActionOutcome, ActionRequest
from workflows.playbook import PinnedPlaybook
from workflows.playbook_host import ApprovalRequest, ApprovalResult, PlaybookResult
from workflows.policy import Policy, Usage


class DryRunInput(BaseModel):
    pinned: PinnedPlaybook
    policy: Policy
    alert: Alert
    diagnosis: Diagnosis | None = None


class DryRunCheck(BaseModel):
    """Input of `dryrun.check`: the step id lets the canned output be chosen by step."""

    step: str
    check: CheckSpec


class DryRunEvent(BaseModel):
    event: str
    detail: str = ""


class DryRunReport(BaseModel):
    result: PlaybookResult
    events: list[DryRunEvent]


@workflow.defn(name="PlaybookDryRun")
class PlaybookDryRunWorkflow:
    def __init__(self) -> None:
        self._events: list[DryRunEvent] = []

    @workflow.run
    async def run(self, inp: DryRunInput) -> DryRunReport:
        interpreter = PlaybookInterpreter(
            self, inp.pinned, inp.policy, inp.alert, inp.diagnosis, dry_run=True
        )
        result = await interpreter.run()
        return DryRunReport(result=result, events=self._events)

    # --- PlaybookHost ---------------------------------------------------------------------------

    @property
    def incident_id(self) -> str:
        return workflow.info().workflow_id

    def alert_resolved(self) -> bool:
        return False

    def record(self, event: str, detail: str = "") -> None:
        self._events.append(DryRunEvent(event=event, detail=detail))

    async def enter(self, phase: Phase, event: str, detail: str = "") -> None:
        self.record(f"phase {phase.value}: {event}", detail)

    async def run_check(self, step: str, check: CheckSpec, call: CallOptions) -> BaseModel:
        return await call.execute(
            DRYRUN_CHECK, DryRunCheck(step=step, check=check), CHECK_OUTPUTS[check.type]
        )

    async def preview_action(self, step: str, action: ActionSpec, call: CallOptions) -> ActionOutcome:
        request = ActionRequest(incident_id=self.incident_id, step=step, action=action)
        return await call.execute(DRYRUN_PREVIEW, request, ActionOutcome)

    async def run_action(self, step: str, action: ActionSpec, call: CallOptions) -> ActionOutcome:
        raise ApplicationError(f"dry-run never applies ({step})", non_retryable=True)

    async def rollback_action(self, step: str, action: ActionSpec, call: CallOptions) -> ActionOutcome:
        raise ApplicationError(f"dry-run never rolls back ({step})", non_retryable=True)

    async def request_approval(self, request: ApprovalRequest) -> ApprovalResult:
        raise ApplicationError(f"dry-run never asks for approval ({request.step})", non_retryable=True)

    async def notify(self, step: str, message: str, level: int) -> None:
        self.record(f"would notify ({step}, level {level})", message)

    async def usage(self, service: str) -> Usage:
        return Usage()
