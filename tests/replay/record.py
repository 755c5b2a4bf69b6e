"""Record IncidentWorkflow histories for the replay test: `python -m tests.replay.record`.

`python -m tests.replay.record v3 playbook_crashloop` records only the cases named.
Re-record only for a new workflow version, and keep the old files: they are what running
incidents look like, and `workflow.patched` must keep replaying them.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from tests.conftest import start_time_server
from tests.workflows.fakes import (
    CONFIG,
    QUEUE,
    Fakes,
    make_alert,
    settled,
    shipped,
    start,
    wait_phase,
    wait_state,
    worker,
)
from workflows.activity_names import KUBE_EVENTS, KUBE_LOGS, KUBE_ROLLOUT_HISTORY, METRICS_QUERY
from workflows.decisions import Decision
from workflows.incident import IncidentWorkflow
from workflows.incident_models import IncidentConfig
from workflows.phases import Phase
from workflows.playbook import PinnedPlaybook
from workflows.policy import Policy, Window

HISTORIES = Path(__file__).parent / "histories"
Steer = Callable[[WorkflowHandle[Any, Any]], Awaitable[None]]


async def approve(handle: WorkflowHandle[Any, Any]) -> None:
    await wait_phase(handle, Phase.AWAITING_APPROVAL)
    await handle.signal(IncidentWorkflow.approve, Decision(approver="alice", reason="recorded"))


async def approve_twice(handle: WorkflowHandle[Any, Any]) -> None:
    """Two distinct people, as destructive actions need."""
    await wait_phase(handle, Phase.AWAITING_APPROVAL)
    for person in ("alice", "bob"):
        await handle.signal(IncidentWorkflow.approve, Decision(approver=person, reason="recorded"))


async def reject(handle: WorkflowHandle[Any, Any]) -> None:
    await wait_phase(handle, Phase.AWAITING_APPROVAL)
    await handle.signal(IncidentWorkflow.reject, Decision(approver="bob", reason="recorded"))


async def resolve(handle: WorkflowHandle[Any, Any]) -> None:
    state = await wait_phase(handle, Phase.AWAITING_APPROVAL)
    await handle.signal(IncidentWorkflow.alert, state.alert.model_copy(update={"status": "resolved"}))


async def wait(handle: WorkflowHandle[Any, Any]) -> None:
    """Nobody answers: the escalation chain runs out, or the playbook runs on its own."""


async def approve_through_refires(handle: WorkflowHandle[Any, Any]) -> None:
    """One approval, re-fires until the incident continued as new, then the second approval."""
    state = await wait_phase(handle, Phase.AWAITING_APPROVAL)
    await handle.signal(IncidentWorkflow.approve, Decision(approver="alice", reason="recorded"))
    for _ in range(REFIRES):
        await handle.signal(IncidentWorkflow.alert, state.alert.notice())
    await wait_state(handle, lambda s: s.alert_updates == REFIRES + 1, "counted the re-fires")
    await handle.signal(IncidentWorkflow.approve, Decision(approver="bob", reason="recorded"))


@dataclass
class Case:
    fakes: Fakes
    steer: Steer
    playbook: str = ""  # a shipped playbook's file; empty: none pinned (the catalogue path)
    policy: Policy = field(default_factory=Policy)
    labels: dict[str, str] = field(default_factory=dict)
    before: int = 0  # incidents for the same service run (unrecorded) first, to use up the limits
    config: IncidentConfig = field(default_factory=lambda: CONFIG)

    def pinned(self) -> PinnedPlaybook | None:
        return shipped(self.playbook) if self.playbook else None


DOWN_THEN_UP: list[dict[str, Any]] = [{"ok": False}, {"ok": True, "status": 200}]
REFIRES = 30
# A window that opens three hours after the recorder's server starts (at the wall clock): closed now.
_OPENS = (datetime.now(UTC) + timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
LATER = Window(name="later", start=_OPENS.time(), end=(_OPENS + timedelta(hours=1)).time())
CASES: dict[str, Case] = {
    "resolved": Case(Fakes(), approve),
    "rolled_back": Case(Fakes(verify_ok=False), approve),
    "failed": Case(Fakes(apply_fails=True), approve),
    "rejected": Case(Fakes(), reject),
    "cancelled_by_resolve": Case(Fakes(), resolve),
    "escalated": Case(Fakes(), wait),
    # Playbook-driven endings (v2 on): the interpreter, policy verdicts and the limiter in history.
    "playbook_resolved": Case(Fakes(reads={"probe.http": DOWN_THEN_UP}), wait, "service_down.yaml"),
    "playbook_two_approvers": Case(
        Fakes(reads={"metrics.query": [{"value": 0}]}),
        approve_twice,
        "node_not_ready.yaml",
        labels={"alertname": "NodeNotReady", "node": "node-7", "environment": "prod"},
    ),
    "policy_denied": Case(
        Fakes(reads={"probe.http": DOWN_THEN_UP}),
        wait,
        "service_down.yaml",
        Policy(services={"deny": ["demo"]}),
    ),
    "dry_run": Case(
        Fakes(reads={"probe.http": DOWN_THEN_UP}), wait, "service_down.yaml", Policy(dry_run=True)
    ),
    "rate_limited_wait": Case(
        Fakes(reads={"probe.http": DOWN_THEN_UP * 2}),
        wait,
        "service_down.yaml",
        Policy(limits={"actions_per_service_per_hour": 1}, max_wait="2h"),
        before=1,
    ),
    # v3 on: Kubernetes checks call the kube_* reads (runtime.KUBE_READ_NAMES).
    "playbook_crashloop": Case(
        Fakes(
            reads={
                KUBE_LOGS: [{"lines": ["panic: config key DATABASE_URL missing"]}],
                KUBE_EVENTS: [{"events": [{"type": "Warning", "reason": "BackOff"}]}],
                KUBE_ROLLOUT_HISTORY: [{"revisions": [{"name": "web-7f8a", "revision": 4}]}],
                METRICS_QUERY: [{"value": 0}],
            }
        ),
        approve,
        "kube_pod_crash_looping.yaml",
        labels={
            "alertname": "KubePodCrashLooping",
            "namespace": "shop",
            "pod": "web-7f8a-x1",
            "deployment": "web",
        },
    ),
    # v4 on: without a model configured where the incident started, no `llm.policy` activity.
    "playbook_heuristic_only": Case(
        Fakes(reads={"probe.http": DOWN_THEN_UP}),
        wait,
        "service_down.yaml",
        config=CONFIG.model_copy(update={"llm": False}),
    ),
    # v4 on: without a notification channel configured where the incident started, no `notify`.
    "notifications_off": Case(Fakes(), approve, config=CONFIG.model_copy(update={"notifications": False})),
    # v5 on: an incident waiting for approval continues as new (workflows/continuation.py); the
    # history is its last run's, which replays the first run's journal; `-first` is the first run.
    "continued_as_new": Case(
        Fakes(reads={"probe.http": DOWN_THEN_UP}),
        approve_through_refires,
        "service_down.yaml",
        Policy.model_validate({"environments": {"prod": {"approvers_required": 2}}}),
        labels={"environment": "prod"},
        config=CONFIG.model_copy(update={"continue_after_events": 80}),
    ),
    # v6 on: the catalogue plan runs as a generated playbook on the interpreter; a policy wait hands it
    # to a person before anyone is asked to approve (interpreter.WAIT_BEFORE_APPROVAL_PATCH).
    "policy_wait": Case(Fakes(), wait, policy=Policy(maintenance_windows=[LATER])),
}


async def run_case(env: WorkflowEnvironment, case: Case) -> WorkflowHandle[Any, Any]:
    limiter = f"limiter-{uuid.uuid4().hex[:8]}"
    async with worker(env.client, case.fakes, QUEUE, limiter):
        for _ in range(case.before):
            await settled(
                await start(env.client, make_alert(**case.labels), case.config, case.pinned(), case.policy)
            )
        handle = await start(env.client, make_alert(**case.labels), case.config, case.pinned(), case.policy)
        await case.steer(handle)
        await handle.result()
        # A limiter left running disturbs the time-skipping server's later skips (tests/workflows/test_limits.py).
        with contextlib.suppress(RPCError):
            await env.client.get_workflow_handle(limiter).terminate("recorded")
    return handle


async def main(version: str, names: list[str]) -> None:
    """Record `names` (every case when none) as `<version>-<name>.json`."""
    env = await start_time_server()
    HISTORIES.mkdir(exist_ok=True)
    for name, case in CASES.items():
        if names and name not in names:
            continue
        handle = await run_case(env, case)
        history = await handle.fetch_history()
        (HISTORIES / f"{version}-{name}.json").write_text(history.to_json())
        print(f"recorded {version}-{name}")
        first = env.client.get_workflow_handle(handle.id, run_id=handle.result_run_id)
        if (await first.describe()).run_id != (await handle.describe()).run_id:
            (HISTORIES / f"{version}-{name}-first.json").write_text((await first.fetch_history()).to_json())
            print(f"recorded {version}-{name}-first")
    await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "v1", sys.argv[2:]))
