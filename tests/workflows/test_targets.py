"""Alert-chosen targets end with a human, never on an executor: IncidentWorkflow on the time-skipping
server with the REAL Ansible executor (ansible-runner, local connections) and fakes for the rest.

Each refusal is the executor's own (a host outside the inventory, no inventory, an empty limit over a
many-host inventory) or the catalogue's pattern check; the incident ends Escalated with the reason in
its timeline, and nothing is applied.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.ansible.executor import AnsibleExecutor
from activities.config import REPO_ROOT, Settings
from activities.limits import LimitsActivities
from tests.registration import fake
from tests.workflows.fakes import Fakes, detail, events, make_alert, settled, shipped, start
from worker.sandbox import SANDBOX_RUNNER
from workflows.activity_names import ExecutorOp, executor_op
from workflows.incident import IncidentWorkflow
from workflows.incident_models import IncidentState
from workflows.limiter import RemediationLimiter
from workflows.phases import Phase
from workflows.plans import ActionRequest

pytestmark = pytest.mark.ansible
SERVICE_DOWN = shipped("service_down.yaml")
DOWN = {"probe.http": [{"ok": False, "status": 503}]}


@dataclass
class RealAnsible(Fakes):
    """Fakes, except that `ansible.*` are the real executor's activities."""

    executor: AnsibleExecutor | None = None

    def _executor(self, kind: str, op: ExecutorOp) -> Callable[..., Any]:
        if kind != "ansible" or self.executor is None:
            return super()._executor(kind, op)
        real: Callable[[ActionRequest], Any] = getattr(self.executor, op)

        def run(request: ActionRequest) -> Any:
            self.calls.append(executor_op(kind, op))
            return real(request)

        return fake(executor_op(kind, op))(run)


def inventory(tmp: Path, hosts: list[str]) -> Path:
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    path = tmp / "inventory.json"
    path.write_text(json.dumps({"all": {"hosts": dict.fromkeys(hosts, local)}}))
    return path


@asynccontextmanager
async def real_ansible_worker(client: Client, fakes: RealAnsible) -> AsyncIterator[str]:
    queue, limiter = f"targets-{uuid.uuid4().hex[:8]}", f"limiter-{uuid.uuid4().hex[:8]}"
    limits = LimitsActivities(limiter)
    with ThreadPoolExecutor(max_workers=2) as pool:
        async with Worker(
            client,
            task_queue=queue,
            workflows=[IncidentWorkflow, RemediationLimiter],
            activities=[*fakes.activities(), limits.acquire, limits.release, limits.usage],
            activity_executor=pool,
            workflow_runner=SANDBOX_RUNNER,
        ):
            yield queue


async def run_incident(
    env: WorkflowEnvironment, tmp: Path, hosts: list[str] | None, playbook: bool, **labels: str
) -> tuple[IncidentState, RealAnsible]:
    settings = Settings(
        ansible_playbook_dir=REPO_ROOT / "playbooks" / "ansible",
        ansible_inventory=str(inventory(tmp, hosts)) if hosts is not None else "",
        ansible_marker_dir=str(tmp / "markers"),
    )
    fakes = RealAnsible(reads=dict(DOWN), executor=AnsibleExecutor(settings))
    async with real_ansible_worker(env.client, fakes) as queue:
        alert = make_alert(**labels)
        handle = await start(env.client, alert, playbook=SERVICE_DOWN if playbook else None, queue=queue)
        state = await settled(handle, seconds=60)
    assert not (tmp / "markers").exists(), "no marker written: nothing ran on any host"
    return state, fakes


async def test_a_host_outside_the_inventory_escalates_with_the_reason(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    state, fakes = await run_incident(time_env, tmp_path, ["web-1", "web-2"], True, host="elsewhere")
    assert state.phase == Phase.ESCALATED
    assert "alert host 'elsewhere' is not a host of the inventory" in detail(state, "restart refused")
    assert fakes.calls.count("ansible.preview") == 1, "refused at the --check run, not retried"
    assert "restart refused by the executor" in detail(state, "playbook escalated")
    assert "ansible.apply" not in fakes.calls and "awaiting approval" not in events(state)


async def test_an_empty_host_over_many_hosts_escalates(time_env: WorkflowEnvironment, tmp_path: Path) -> None:
    state, fakes = await run_incident(time_env, tmp_path, ["web-1", "web-2"], True)
    assert state.phase == Phase.ESCALATED
    assert "this per-host playbook would run on 2 hosts as one action" in detail(state, "restart refused")
    assert "ansible.apply" not in fakes.calls


async def test_the_catalogue_fallback_without_an_inventory_escalates(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    state, fakes = await run_incident(time_env, tmp_path, None, False, host="localhost")
    assert state.phase == Phase.ESCALATED
    assert "no Ansible inventory is configured" in detail(state, "restart refused by the executor")
    assert "ansible.apply" not in fakes.calls and "awaiting approval" not in events(state)


@pytest.mark.parametrize(
    ("labels", "why"),
    [
        ({"service": "demo;reboot"}, "service='demo;reboot' does not match"),
        ({"service": "demo", "host": "-oProxyCommand=x"}, "host='-oProxyCommand=x' does not match"),
    ],
)
async def test_a_label_failing_the_patterns_never_reaches_ansible_check(
    time_env: WorkflowEnvironment, tmp_path: Path, labels: dict[str, str], why: str
) -> None:
    # The playbook refuses the label (its param pattern), the catalogue then refuses it too.
    state, fakes = await run_incident(time_env, tmp_path, ["localhost"], True, **labels)
    assert state.phase == Phase.ESCALATED
    assert "does not match" in detail(state, "no playbook")
    assert why in detail(state, "catalogue plan refused")
    assert not [c for c in fakes.calls if c.startswith("ansible.")], "not even a --check run"
