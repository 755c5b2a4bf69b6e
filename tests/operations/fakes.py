"""Fake activities for OperationWorkflow tests, registered under the real activities' names.

They answer as the executors and the probe would, record every call, count how many applies run
at once, and fail a target's first apply when told to, so per-target retry has something to retry.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from activities.config import REPO_ROOT
from tests.registration import fake
from worker.playbooks import load_playbook
from worker.sandbox import SANDBOX_RUNNER
from workflows.activity_names import (
    ANSIBLE_APPLY,
    ANSIBLE_SNAPSHOT,
    NOTIFY,
    PROBE_HTTP,
    ExecutorOp,
    executor_op,
)
from workflows.evidence import ProbeResult
from workflows.investigation_models import ProbeRequest
from workflows.notifications import PhaseChange
from workflows.operation import OperationTargetWorkflow, OperationWorkflow
from workflows.operation_models import OperationInput, OperationState
from workflows.plans import ActionOutcome, ActionRequest
from workflows.playbook import PinnedPlaybook

PLAYBOOKS = REPO_ROOT / "playbooks"


def pinned(file: str) -> PinnedPlaybook:
    return load_playbook(PLAYBOOKS / file, PLAYBOOKS / "ansible").pinned()


RESTART = pinned("ops_batch_restart.yaml")


def restart(targets: list[str], **kw: object) -> OperationInput:
    """OpsBatchRestart of the service `shop` in dev (change actions auto-approve) over `targets`."""
    return OperationInput.model_validate(
        {
            "pinned": RESTART,
            "targets": targets,
            "params": {"service": "shop"},
            "environment": "dev",
            "retry_interval": timedelta(seconds=1),
            **kw,
        }
    )


@dataclass
class OpsFakes:
    unhealthy: set[str] = field(default_factory=set)  # probe URLs containing one of these fail
    slow: set[str] = field(default_factory=set)  # probe URLs containing one of these take 5 s
    fail_first: set[str] = field(default_factory=set)  # targets whose first apply fails
    apply_seconds: float = 0.3
    calls: list[str] = field(default_factory=list)
    applies: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0
    max_in_flight: int = 0

    def activities(self) -> list[Callable[..., Any]]:
        @fake(PROBE_HTTP)
        async def probe(request: ProbeRequest) -> ProbeResult:
            self.calls.append(f"probe.http:{request.url}")
            if any(name in request.url for name in self.unhealthy):
                return ProbeResult(url=request.url, ok=False, error="ConnectError: refused")
            latency = 5000.0 if any(name in request.url for name in self.slow) else 12.0
            return ProbeResult(url=request.url, ok=True, status=200, latency_ms=latency)

        @fake(NOTIFY)
        async def notify(change: PhaseChange) -> None:
            self.calls.append(f"notify:{change.phase}")

        @fake(ANSIBLE_SNAPSHOT)
        async def snapshot(request: ActionRequest) -> dict[str, Any]:
            self.calls.append(f"ansible.snapshot:{request.action.limit}")
            return {}

        @fake(ANSIBLE_APPLY)
        async def apply(request: ActionRequest) -> ActionOutcome:
            target = request.action.limit
            self.calls.append(f"ansible.apply:{target}")
            self.applies[target] += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                await asyncio.sleep(self.apply_seconds)
            finally:
                self.in_flight -= 1
            if target in self.fail_first and self.applies[target] == 1:
                raise ApplicationError(f"{target} did not come back", non_retryable=True)
            return ActionOutcome(ok=True, summary=f"restarted on {target}", changed=True)

        def op(name: ExecutorOp) -> Callable[..., Any]:
            async def run(request: ActionRequest) -> ActionOutcome:
                self.calls.append(f"ansible.{name}:{request.action.limit}")
                return ActionOutcome(ok=True, summary=f"{name} on {request.action.limit}")

            return fake(executor_op("ansible", name))(run)

        return [probe, notify, snapshot, apply, op("preview"), op("rollback")]

    def called(self, prefix: str) -> list[str]:
        return [c.split(":", 1)[1] for c in self.calls if c.startswith(prefix + ":")]


@dataclass
class Ops:
    client: Client
    fakes: OpsFakes
    queue: str = field(default_factory=lambda: f"operations-{uuid.uuid4()}")

    def worker(self) -> Worker:
        return Worker(
            self.client,
            task_queue=self.queue,
            workflows=[OperationWorkflow, OperationTargetWorkflow],
            activities=self.fakes.activities(),
            workflow_runner=SANDBOX_RUNNER,
        )

    async def start(self, inp: OperationInput, id: str = "") -> WorkflowHandle[Any, OperationState]:
        return await self.client.start_workflow(
            OperationWorkflow.run,
            inp,
            id=id or f"operation-{inp.pinned.name}-{uuid.uuid4().hex[:8]}",
            task_queue=self.queue,
        )

    async def run(self, inp: OperationInput) -> OperationState:
        async with self.worker():
            return await (await self.start(inp)).result()
