"""Fake activities registered under the real names, and helpers shared by workflow and replay tests."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError, CancelledError

from workflows.incident import IncidentWorkflow
from workflows.investigation_models import LLMPolicy
from workflows.models import (
    ActionOutcome,
    ActionRequest,
    Alert,
    DiagnoseRequest,
    Diagnosis,
    Evidence,
    IncidentConfig,
    IncidentInput,
    IncidentState,
    Phase,
    PhaseChange,
    ProbeResult,
    VerifyRequest,
)

QUEUE = "incident-tests"


@dataclass
class Fakes:
    """Activities registered under the real names; they record what the workflow asked for."""

    verify_ok: bool = True
    apply_fails: bool = False
    calls: list[str] = field(default_factory=list)
    notifications: list[PhaseChange] = field(default_factory=list)
    remembered: list[IncidentState] = field(default_factory=list)

    def activities(self) -> list[Callable[..., Any]]:
        @activity.defn(name="gather_evidence")
        async def gather(alert: Alert) -> Evidence:
            self.calls.append("gather_evidence")
            return Evidence(probe=ProbeResult(url="http://demo/health", ok=False, error="ConnectError"))

        @activity.defn(name="diagnose")
        async def diagnose(request: DiagnoseRequest) -> Diagnosis:
            self.calls.append("diagnose")
            return Diagnosis(category="dependency_down", confidence=0.8, explanation="probe refused")

        @activity.defn(name="notify")
        async def notify(change: PhaseChange) -> str:
            self.notifications.append(change)
            return "recorded"

        @activity.defn(name="verify")
        async def verify(request: VerifyRequest) -> str:
            self.calls.append("verify")
            if not self.verify_ok:
                raise ApplicationError("still unhealthy", non_retryable=True)
            return "probe answered 200"

        def executor(op: str) -> Callable[..., Any]:
            @activity.defn(name=f"ansible.{op}")
            async def run(request: ActionRequest) -> Any:
                self.calls.append(f"ansible.{op}")
                if op == "snapshot":
                    return {"rollback_playbook": request.action.rollback_playbook}
                if op == "apply" and self.apply_fails:
                    raise ApplicationError("task failed on localhost", non_retryable=True)
                return ActionOutcome(ok=True, summary=f"{op} done", changed=op != "preview")

            return run

        @activity.defn(name="llm.policy")
        async def llm_policy() -> LLMPolicy:
            return LLMPolicy(enabled=False)

        @activity.defn(name="memory.record_incident")
        async def remember(state: IncidentState) -> None:
            self.remembered.append(state)

        ops = ("preview", "snapshot", "apply", "rollback")
        return [gather, diagnose, notify, verify, llm_policy, remember, *(executor(op) for op in ops)]


def make_alert(name: str = "ServiceDown", status: str = "firing") -> Alert:
    return Alert(
        fingerprint=uuid.uuid4().hex[:16],
        status=status,  # type: ignore[arg-type]
        labels={"alertname": name, "service": "demo", "severity": "critical", "environment": "dev"},
        annotations={"probe_url": "http://demo/health"},
    )


CONFIG = IncidentConfig(
    notify_after=timedelta(minutes=15),
    escalate_after=timedelta(hours=1),
    give_up_after=timedelta(hours=4),
    verify_timeout=timedelta(minutes=5),
)


async def start(client: Client, alert: Alert, config: IncidentConfig = CONFIG) -> WorkflowHandle[Any, Any]:
    return await client.start_workflow(
        IncidentWorkflow.run,
        IncidentInput(alert=alert, config=config),
        id=alert.workflow_id,
        task_queue=QUEUE,
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


async def expect_cancelled(handle: WorkflowHandle[Any, Any]) -> None:
    with pytest.raises(WorkflowFailureError) as raised:
        await handle.result()
    assert isinstance(raised.value.cause, CancelledError)


def events(state: IncidentState) -> list[str]:
    return [entry.event for entry in state.timeline]
