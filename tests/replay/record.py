"""Record IncidentWorkflow histories for the replay test: `python -m tests.replay.record`.

Re-record only for a new workflow version, and keep the old files: they are what running
incidents look like, and `workflow.patched` must keep replaying them.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.workflows.fakes import CONFIG, QUEUE, Fakes, make_alert, start, wait_phase
from worker.client import register_search_attributes
from workflows.incident import IncidentWorkflow
from workflows.models import Decision, Phase

HISTORIES = Path(__file__).parent / "histories"
Steer = Callable[[WorkflowHandle[Any, Any]], Awaitable[None]]


async def approve(handle: WorkflowHandle[Any, Any]) -> None:
    await wait_phase(handle, Phase.AWAITING_APPROVAL)
    await handle.signal(IncidentWorkflow.approve, Decision(approver="alice", reason="recorded"))


async def reject(handle: WorkflowHandle[Any, Any]) -> None:
    await wait_phase(handle, Phase.AWAITING_APPROVAL)
    await handle.signal(IncidentWorkflow.reject, Decision(approver="bob", reason="recorded"))


async def resolve(handle: WorkflowHandle[Any, Any]) -> None:
    state = await wait_phase(handle, Phase.AWAITING_APPROVAL)
    await handle.signal(IncidentWorkflow.alert, state.alert.model_copy(update={"status": "resolved"}))


async def wait(handle: WorkflowHandle[Any, Any]) -> None:
    """Nobody answers: the escalation chain runs out."""


CASES: dict[str, tuple[Fakes, Steer]] = {
    "resolved": (Fakes(), approve),
    "rolled_back": (Fakes(verify_ok=False), approve),
    "failed": (Fakes(apply_fails=True), approve),
    "rejected": (Fakes(), reject),
    "cancelled_by_resolve": (Fakes(), resolve),
    "escalated": (Fakes(), wait),
}


async def main(version: str) -> None:
    binary = shutil.which("temporal-test-server") or str(Path(sys.executable).parent / "temporal-test-server")
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary, data_converter=pydantic_data_converter
    )
    await register_search_attributes(env.client)
    HISTORIES.mkdir(exist_ok=True)
    for name, (fakes, steer) in CASES.items():
        async with Worker(
            env.client, task_queue=QUEUE, workflows=[IncidentWorkflow], activities=fakes.activities()
        ):
            handle = await start(env.client, make_alert(), CONFIG)
            await steer(handle)
            await handle.result()
            history = await handle.fetch_history()
        (HISTORIES / f"{version}-{name}.json").write_text(history.to_json())
        print(f"recorded {version}-{name}")
    await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "v1"))
