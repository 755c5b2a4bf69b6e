"""Fake activities registered under the real names, and helpers shared by workflow and replay tests.

The blast-radius limiter is not faked: `worker()` registers the real RemediationLimiter workflow and
the real `limits.*` activities (with a limiter id of the caller's, so tests never share counts).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.service import RPCError
from temporalio.worker import Worker

from activities.config import REPO_ROOT
from activities.limits import LimitsActivities
from tests.registration import fake
from worker.playbooks import load_playbook
from worker.sandbox import SANDBOX_RUNNER
from workflows.activity_names import (
    DIAGNOSE,
    EXECUTOR_OPS,
    EXECUTORS,
    GATHER_EVIDENCE,
    KUBE_EVENTS,
    KUBE_LOGS,
    KUBE_ROLLOUT_HISTORY,
    LLM_POLICY,
    MEMORY_RECORD_INCIDENT,
    METRICS_QUERY,
    NOTIFY,
    PROBE_HTTP,
    VERIFY,
    ExecutorOp,
    executor_op,
)
from workflows.alerts import Alert
from workflows.diagnosis import DiagnoseRequest, Diagnosis
from workflows.evidence import Evidence, MetricSample, ProbeResult
from workflows.incident import IncidentWorkflow
from workflows.incident_memory import IncidentMemory
from workflows.incident_models import IncidentConfig, IncidentInput, IncidentState
from workflows.investigation_models import LLMPolicy, ProbeRequest, PromQuery
from workflows.kube_reads import (
    EventList,
    EventsQuery,
    LogsQuery,
    PodLogs,
    RolloutHistory,
    RolloutHistoryQuery,
)
from workflows.limiter import RemediationLimiter
from workflows.notifications import PhaseChange
from workflows.phases import Phase
from workflows.plans import ActionOutcome, ActionRequest, VerifyRequest
from workflows.playbook import PinnedPlaybook
from workflows.policy import Policy

QUEUE = "incident-tests"
PLAYBOOKS = REPO_ROOT / "playbooks"
Answers = list[dict[str, Any]]


@dataclass
class Fakes:
    """Activities registered under the real names; they record what the workflow asked for.

    Reads answer from `reads` (activity name -> outputs in order, the last one repeating), merged
    over what the request itself says (the url, the query ...).
    """

    verify_ok: bool = True
    apply_fails: bool = False  # every apply fails
    failing: set[str] = field(default_factory=set)  # steps whose apply fails
    reads: dict[str, Answers] = field(default_factory=dict)
    previews: dict[str, dict[str, Any]] = field(default_factory=dict)  # step -> preview fields
    diagnosis: Diagnosis = field(
        default_factory=lambda: Diagnosis(
            category="dependency_down", confidence=0.8, explanation="probe refused"
        )
    )
    calls: list[str] = field(default_factory=list)  # activity names, in order
    steps: list[str] = field(default_factory=list)  # "<executor>.<op>:<step>", in order
    notifications: list[PhaseChange] = field(default_factory=list)
    remembered: list[IncidentMemory] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.reads = {name: list(script) for name, script in self.reads.items()}  # ours to consume

    def applied(self) -> list[str]:
        return [s.split(":", 1)[1] for s in self.steps if s.split(":")[0].endswith(".apply")]

    def _read(self, name: str, model: type[BaseModel], given: dict[str, Any]) -> Any:
        self.calls.append(name)
        script = self.reads.get(name, [{}])
        answer = script.pop(0) if len(script) > 1 else script[0]
        return model.model_validate({**given, **answer})

    def activities(self) -> list[Callable[..., Any]]:
        @fake(GATHER_EVIDENCE)
        async def gather(alert: Alert) -> Evidence:
            if GATHER_EVIDENCE in self.reads:
                result: Evidence = self._read(GATHER_EVIDENCE, Evidence, {})
                return result
            self.calls.append(GATHER_EVIDENCE)
            return Evidence(probe=ProbeResult(url="http://demo/health", ok=False, error="ConnectError"))

        @fake(DIAGNOSE)
        async def diagnose(request: DiagnoseRequest) -> Diagnosis:
            self.calls.append(DIAGNOSE)
            return self.diagnosis

        @fake(NOTIFY)
        async def notify(change: PhaseChange) -> str:
            self.notifications.append(change)
            return "recorded"

        @fake(VERIFY)
        async def verify(request: VerifyRequest) -> str:
            self.calls.append(VERIFY)
            if not self.verify_ok:
                raise ApplicationError("still unhealthy", non_retryable=True)
            return "probe answered 200"

        @fake(LLM_POLICY)
        async def llm_policy() -> LLMPolicy:
            return LLMPolicy(enabled=False)

        @fake(MEMORY_RECORD_INCIDENT)
        async def remember(memory: IncidentMemory) -> None:
            self.remembered.append(memory)

        executors = [self._executor(kind, op) for kind in EXECUTORS for op in EXECUTOR_OPS]
        return [gather, diagnose, notify, verify, llm_policy, remember, *self._reads(), *executors]

    def _reads(self) -> list[Callable[..., Any]]:
        @fake(PROBE_HTTP)
        async def probe(request: ProbeRequest) -> ProbeResult:
            result: ProbeResult = self._read(PROBE_HTTP, ProbeResult, {"url": request.url, "ok": False})
            return result

        @fake(METRICS_QUERY)
        async def query(request: PromQuery) -> MetricSample:
            given = {"query": request.query, "kind": "instant"}
            result: MetricSample = self._read(METRICS_QUERY, MetricSample, given)
            return result

        @fake(KUBE_LOGS)
        async def logs(request: LogsQuery) -> PodLogs:
            given = {"pod": request.pod, "container": request.container, "previous": request.previous}
            result: PodLogs = self._read(KUBE_LOGS, PodLogs, given)
            return result

        @fake(KUBE_EVENTS)
        async def events(request: EventsQuery) -> EventList:
            result: EventList = self._read(KUBE_EVENTS, EventList, {"namespace": request.namespace})
            return result

        @fake(KUBE_ROLLOUT_HISTORY)
        async def history(request: RolloutHistoryQuery) -> RolloutHistory:
            given = {"deployment": request.deployment}
            result: RolloutHistory = self._read(KUBE_ROLLOUT_HISTORY, RolloutHistory, given)
            return result

        return [probe, query, logs, events, history]

    def _executor(self, kind: str, op: ExecutorOp) -> Callable[..., Any]:
        async def run(request: ActionRequest) -> Any:
            self.calls.append(executor_op(kind, op))
            self.steps.append(f"{executor_op(kind, op)}:{request.step}")
            if op == "snapshot":
                return {"before": request.action.name}
            failing = self.apply_fails or request.step in self.failing
            if op == "apply" and failing:
                raise ApplicationError("task failed on localhost", non_retryable=True)
            fields = {"ok": True, "summary": f"{op} done", "changed": op != "preview"}
            return ActionOutcome.model_validate(
                {**fields, **(self.previews.get(request.step, {}) if op == "preview" else {})}
            )

        return fake(executor_op(kind, op))(run)


@asynccontextmanager
async def worker(
    client: Client, fakes: Fakes, queue: str = QUEUE, limiter_id: str = ""
) -> AsyncIterator[Worker]:
    """IncidentWorkflow with `fakes`, plus the real limiter (its own id, unless one is given).

    The limiter runs forever, so it is terminated on the way out: open limiters left on the shared
    time-skipping server keep it from skipping time in later tests, which then hang.
    """
    limiter = limiter_id or f"limiter-{uuid.uuid4().hex[:8]}"
    limits = LimitsActivities(limiter)
    async with Worker(
        client,
        task_queue=queue,
        workflows=[IncidentWorkflow, RemediationLimiter],
        activities=[*fakes.activities(), limits.acquire, limits.release, limits.usage],
        workflow_runner=SANDBOX_RUNNER,
    ) as running:
        try:
            yield running
        finally:
            with contextlib.suppress(RPCError):
                await client.get_workflow_handle(limiter).terminate("test over")


def make_alert(name: str = "ServiceDown", status: str = "firing", **labels: str) -> Alert:
    return Alert(
        fingerprint=uuid.uuid4().hex[:16],
        status=status,  # type: ignore[arg-type]
        labels={"alertname": name, "service": "demo", "severity": "critical", "environment": "dev", **labels},
        annotations={"probe_url": "http://demo/health"},
    )


def awaiting(alert: Alert, diagnosis: Diagnosis) -> IncidentState:
    """A diagnosed incident's state as a run leaves it waiting for approval (what it carries on with)."""
    return IncidentState(
        incident_id=alert.workflow_id,
        phase=Phase.AWAITING_APPROVAL,
        alert=alert,
        evidence=Evidence(),
        diagnosis=diagnosis,
    )


def shipped(file: str) -> PinnedPlaybook:
    """A shipped playbook, loaded and validated as the API loads it."""
    return load_playbook(PLAYBOOKS / file, PLAYBOOKS / "ansible").pinned()


CONFIG = IncidentConfig(
    notify_after=timedelta(minutes=15),
    escalate_after=timedelta(hours=1),
    give_up_after=timedelta(hours=4),
    verify_timeout=timedelta(minutes=5),
)


async def start(
    client: Client,
    alert: Alert,
    config: IncidentConfig = CONFIG,
    playbook: PinnedPlaybook | None = None,
    policy: Policy | None = None,
    queue: str = QUEUE,
    **trusted: Any,
) -> WorkflowHandle[Any, Any]:
    # The test is the trusted starter: unless `trusted` says otherwise (environment, opened_by,
    # sender_services), it vouches for the alert's own environment label, as the API does for a
    # sender whose credential may speak for any environment.
    inp = IncidentInput(
        alert=alert,
        config=config,
        playbook=playbook,
        policy=policy or Policy(),
        **{"environment": alert.environment, **trusted},
    )
    return await client.start_workflow(
        IncidentWorkflow.run,
        inp,
        id=alert.workflow_id,
        task_queue=queue,
        start_signal="alert",
        start_signal_args=[alert],
    )


async def wait_phase(handle: WorkflowHandle[Any, Any], phase: Phase) -> IncidentState:
    for _ in range(200):
        state: IncidentState = await handle.query(IncidentWorkflow.state)
        if state.phase == phase:
            return state
        await asyncio.sleep(0.05)
    raise AssertionError(f"never reached {phase}; last phase {state.phase}")


async def wait_state(
    handle: WorkflowHandle[Any, Any], holds: Callable[[IncidentState], bool], what: str
) -> IncidentState:
    for _ in range(200):
        state: IncidentState = await handle.query(IncidentWorkflow.state)
        if holds(state):
            return state
        await asyncio.sleep(0.05)
    raise AssertionError(f"never {what}; last events {events(state)[-5:]}")


async def wait_event(handle: WorkflowHandle[Any, Any], prefix: str, times: int = 1) -> IncidentState:
    """The state once the timeline has `times` events starting with `prefix`."""

    def recorded(state: IncidentState) -> bool:
        return sum(e.startswith(prefix) for e in events(state)) >= times

    return await wait_state(handle, recorded, f"recorded {prefix!r} {times} time(s)")


async def settled(handle: WorkflowHandle[Any, Any], seconds: float = 10) -> IncidentState:
    """The final state of a run that needs no timer, waited for without `result()`.

    `result()` lets the time-skipping server skip time, and once the run has ended it may skip ahead to
    any other timer, years ahead at times: a later incident would then find an hour-long limit expired.
    """
    for _ in range(int(seconds / 0.025)):
        if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
            state: IncidentState = await handle.query(IncidentWorkflow.state)
            return state
        await asyncio.sleep(0.025)
    raise AssertionError(f"{handle.id} is still running")


async def expect_cancelled(handle: WorkflowHandle[Any, Any]) -> None:
    with pytest.raises(WorkflowFailureError) as raised:
        await handle.result()
    assert isinstance(raised.value.cause, CancelledError)


def events(state: IncidentState) -> list[str]:
    return [entry.event for entry in state.timeline]


def detail(state: IncidentState, prefix: str) -> str:
    return next(e.detail for e in state.timeline if e.event.startswith(prefix))
