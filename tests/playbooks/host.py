"""A tiny workflow implementing PlaybookHost, and fake activities registered under the real names.

The host is what the IncidentWorkflow will be to the interpreter: activities by name, approvals by
signal, a timeline. The fakes record every call and answer from scripts given by each test.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from temporalio import workflow
from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from worker.sandbox import SANDBOX_RUNNER
from workflows.actions import ActionSpec
from workflows.activity_names import (
    EXECUTORS,
    GATHER_EVIDENCE,
    METRICS_QUERY,
    PROBE_HTTP,
    ExecutorOp,
    executor_op,
)
from workflows.activity_options import CallOptions
from workflows.alerts import Alert
from workflows.checks import CheckSpec
from workflows.decisions import Decision
from workflows.diagnosis import Diagnosis
from workflows.evidence import Evidence, MetricSample, ProbeResult
from workflows.interpreter import PlaybookInterpreter
from workflows.investigation_models import ProbeRequest, PromQuery
from workflows.phases import Phase
from workflows.plans import ActionOutcome, ActionRequest
from workflows.playbook import PinnedPlaybook
from workflows.playbook_host import ApprovalRequest, ApprovalResult, PlaybookResult
from workflows.policy import Policy, Usage
from workflows.runtime import execute_check, execute_op

with workflow.unsafe.imports_passed_through():
    from tests.registration import fake


class HostInput(BaseModel):
    pinned: PinnedPlaybook
    alert: Alert
    policy: Policy = Policy()
    diagnosis: Diagnosis | None = None
    dry_run: bool = False
    usages: list[Usage] = []  # answered in order, the last one repeating


class Entry(BaseModel):
    at: datetime
    event: str
    detail: str = ""


class HostReport(BaseModel):
    result: PlaybookResult
    timeline: list[Entry]
    phases: list[Phase]
    requests: list[ApprovalRequest]
    notes: list[str]


@workflow.defn(name="PlaybookTestHost")
class PlaybookTestHost:
    def __init__(self) -> None:
        self._timeline: list[Entry] = []
        self._phases: list[Phase] = []
        self._requests: list[ApprovalRequest] = []
        self._notes: list[str] = []
        self._approvers: list[str] = []
        self._rejected: Decision | None = None
        self._resolved = False
        self._waiting = ""
        self._usages: list[Usage] = []
        self._alert: Alert | None = None

    @workflow.run
    async def run(self, inp: HostInput) -> HostReport:
        self._usages = list(inp.usages)
        self._alert = inp.alert
        interpreter = PlaybookInterpreter(
            self, inp.pinned, inp.policy, inp.alert, inp.diagnosis, dry_run=inp.dry_run
        )
        result = await interpreter.run()
        return HostReport(
            result=result,
            timeline=self._timeline,
            phases=self._phases,
            requests=self._requests,
            notes=self._notes,
        )

    @workflow.signal
    def approve(self, decision: Decision) -> None:
        if decision.approver not in self._approvers:
            self._approvers.append(decision.approver)

    @workflow.signal
    def reject(self, decision: Decision) -> None:
        self._rejected = decision

    @workflow.signal
    def resolve(self) -> None:
        self._resolved = True

    @workflow.query
    def waiting_for(self) -> str:
        return self._waiting

    # --- PlaybookHost ---------------------------------------------------------------------------

    @property
    def incident_id(self) -> str:
        return workflow.info().workflow_id

    def alert_resolved(self) -> bool:
        return self._resolved

    def record(self, event: str, detail: str = "") -> None:
        self._timeline.append(Entry(at=workflow.now(), event=event, detail=detail))

    async def enter(self, phase: Phase, event: str, detail: str = "") -> None:
        self._phases.append(phase)
        self.record(f"phase {phase.value}", event)

    async def run_check(self, step: str, check: CheckSpec, call: CallOptions) -> BaseModel:
        if self._alert is None:
            raise ApplicationError("no alert", non_retryable=True)
        return await execute_check(self.incident_id, self._alert, step, check, call)

    async def preview_action(self, step: str, action: ActionSpec, call: CallOptions) -> ActionOutcome:
        return await execute_op(self.incident_id, step, action, "preview", call)

    async def run_action(self, step: str, action: ActionSpec, call: CallOptions) -> ActionOutcome:
        request = ActionRequest(incident_id=self.incident_id, step=step, action=action)
        await call.execute(f"{action.executor}.snapshot", request, dict)
        return await execute_op(self.incident_id, step, action, "apply", call)

    async def rollback_action(self, step: str, action: ActionSpec, call: CallOptions) -> ActionOutcome:
        return await execute_op(self.incident_id, step, action, "rollback", call)

    async def request_approval(self, request: ApprovalRequest) -> ApprovalResult:
        self._requests.append(request)
        self._approvers, self._rejected, self._waiting = [], None, request.step

        def counted() -> set[str]:
            fresh = {a for a in self._approvers if not request.eligible or a in request.eligible}
            return fresh | set(request.approved_by)

        def decided() -> bool:
            return (
                self._rejected is not None or self._resolved or len(counted()) >= request.approvers_required
            )

        try:
            await workflow.wait_condition(decided, timeout=request.timeout or timedelta(hours=1))
        except TimeoutError:
            return ApprovalResult(outcome="timeout")
        finally:
            self._waiting = ""
        if self._rejected is not None:
            return ApprovalResult(outcome="rejected", reason=self._rejected.reason)
        if self._resolved:
            return ApprovalResult(outcome="resolved")
        return ApprovalResult(outcome="approved", approvers=sorted(counted() - set(request.approved_by)))

    async def notify(self, step: str, message: str, level: int) -> None:
        self._notes.append(message)

    async def usage(self, service: str) -> Usage:
        if not self._usages:
            return Usage()
        return self._usages.pop(0) if len(self._usages) > 1 else self._usages[0]


# --- fake activities ----------------------------------------------------------------------------


@dataclass
class Fakes:
    """Scripted answers; `calls` lists `activity:step` in the order they ran."""

    probes: list[bool] = field(default_factory=lambda: [True])
    metrics: list[float | None] = field(default_factory=lambda: [0.0])
    evidence: Evidence = field(default_factory=Evidence)
    failing: set[str] = field(default_factory=set)  # steps whose apply raises
    calls: list[str] = field(default_factory=list)
    sent: dict[str, dict[str, Any]] = field(default_factory=dict)  # the action each apply received

    @staticmethod
    def _next(script: list[Any]) -> Any:
        return script.pop(0) if len(script) > 1 else script[0]

    def activities(self) -> list[Callable[..., Any]]:
        @fake(PROBE_HTTP)
        async def probe(request: ProbeRequest) -> ProbeResult:
            self.calls.append(PROBE_HTTP)
            ok = self._next(self.probes)
            return ProbeResult(url=request.url, ok=ok, status=200 if ok else 503)

        @fake(METRICS_QUERY)
        async def query(request: PromQuery) -> MetricSample:
            self.calls.append(METRICS_QUERY)
            return MetricSample(query=request.query, kind="instant", value=self._next(self.metrics))

        @fake(GATHER_EVIDENCE)
        async def gather(alert: Alert) -> Evidence:
            self.calls.append(GATHER_EVIDENCE)
            return self.evidence

        return [probe, query, gather, *(fn for kind in EXECUTORS for fn in self._executor(kind))]

    def _executor(self, kind: str) -> list[Callable[..., Any]]:
        def op(name: ExecutorOp) -> Callable[..., Any]:
            async def run(request: ActionRequest) -> ActionOutcome:
                self.calls.append(f"{kind}.{name}:{request.step}")
                if name == "apply":
                    self.sent[request.step] = request.action.model_dump(mode="json")
                if name == "apply" and request.step in self.failing:
                    raise ApplicationError(f"{request.step} broke", non_retryable=True)
                return ActionOutcome(
                    ok=True, summary=f"{name} {request.action.name}", changed=name == "apply"
                )

            return fake(executor_op(kind, name))(run)

        @fake(executor_op(kind, "snapshot"))
        async def snapshot(request: ActionRequest) -> dict[str, Any]:
            self.calls.append(f"{kind}.snapshot:{request.step}")
            return {"before": "state"}

        return [op("preview"), op("apply"), op("rollback"), snapshot]

    def applied(self) -> list[str]:
        return [c.split(":", 1)[1] for c in self.calls if c.split(":")[0].endswith(".apply")]


@dataclass
class Run:
    client: Client
    fakes: Fakes
    queue: str = field(default_factory=lambda: f"playbooks-{uuid.uuid4()}")

    def worker(self) -> Worker:
        return Worker(
            self.client,
            task_queue=self.queue,
            workflows=[PlaybookTestHost],
            activities=self.fakes.activities(),
            workflow_runner=SANDBOX_RUNNER,
        )

    async def start(self, inp: HostInput) -> WorkflowHandle[Any, HostReport]:
        return await self.client.start_workflow(
            PlaybookTestHost.run, inp, id=f"incident-{uuid.uuid4()}", task_queue=self.queue
        )


def events(report: HostReport) -> list[str]:
    return [e.event for e in report.timeline]


def detail(report: HostReport, prefix: str) -> str:
    return next(e.detail for e in report.timeline if e.event.startswith(prefix))


def find(items: Sequence[str], prefix: str) -> list[str]:
    return [i for i in items if i.startswith(prefix)]
