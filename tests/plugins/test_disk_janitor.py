"""The README's example plugin, DiskJanitor, loaded through REMEDIATOR_WORKFLOW_MODULES into the real
worker and run on the time-skipping server: its own activity, Remediator's Ansible executor (real
ansible-runner on localhost) and Remediator's approval handlers."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from activities.config import REPO_ROOT, Settings
from worker.main import activity_pool, build_worker
from workflows.decisions import Decision
from workflows.incident_models import IncidentState
from workflows.phases import Phase

pytestmark = pytest.mark.ansible
EXAMPLES = REPO_ROOT / "deploy" / "examples"


def old_and_new_logs(logs: Path) -> None:
    logs.mkdir()
    twenty_days_ago = time.time() - 20 * 86400
    for name in ("app.log.1", "app.log.2.gz"):
        (logs / name).write_text("old")
        os.utime(logs / name, (twenty_days_ago, twenty_days_ago))
    (logs / "app.log").write_text("current")


async def state_when(handle: WorkflowHandle[Any, Any], phase: Phase) -> IncidentState:
    for _ in range(600):
        try:
            state = await handle.query("state", result_type=IncidentState)
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
        else:
            if state.phase == phase:
                return state
        await asyncio.sleep(0.05)
    raise AssertionError(f"{handle.id} never reached {phase}")


async def test_disk_janitor_cleans_up_once_approved(
    time_env: WorkflowEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLES))
    logs = tmp_path / "logs"
    old_and_new_logs(logs)
    inventory = tmp_path / "inventory.json"  # Ansible runs only on inventory hosts; here the one local host
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory.write_text(json.dumps({"all": {"hosts": {"localhost": local}}}))
    settings = Settings(
        task_queue=f"janitor-{uuid.uuid4().hex[:8]}",
        state_dir=tmp_path / "state",
        ansible_inventory=str(inventory),
        ansible_marker_dir=str(tmp_path / "markers"),
        workflow_modules=["disk_janitor.workflow"],
    )
    request = {"path": str(tmp_path), "min_free_percent": 100, "cleanup_dirs": [str(logs)]}
    with activity_pool(settings) as pool:
        async with build_worker(time_env.client, settings, pool):
            # Started by type name with plain JSON, as `temporal workflow start` would.
            handle = await time_env.client.start_workflow(
                "DiskJanitor", request, id=f"janitor-{uuid.uuid4().hex[:8]}", task_queue=settings.task_queue
            )
            waiting = await state_when(handle, Phase.AWAITING_APPROVAL)
            assert sorted(p.name for p in logs.iterdir()) == ["app.log", "app.log.1", "app.log.2.gz"]
            await handle.signal("approve", Decision(approver="alice", reason="old logs only"))
            report = await handle.result()
            final = await handle.query("state", result_type=IncidentState)

    asking = next(e for e in waiting.timeline if e.event == "awaiting approval")
    assert "delete rotated logs older than 7 days: ansible check of disk_cleanup.yml" in asking.detail
    assert report["outcome"] == "cleaned" and report["approved_by"] == ["alice"]
    assert 0 <= report["free_before"] <= 100 and 0 <= report["free_after"] <= 100  # other processes write too
    assert [p.name for p in logs.iterdir()] == ["app.log"]
    assert final.phase == Phase.RESOLVED
    events = [e.event for e in final.timeline]
    assert events.index("approval by alice") < events.index("cleaning up") < events.index("cleanup done")
    assert final.plan and final.plan.actions[0].result and final.plan.actions[0].result.ok
