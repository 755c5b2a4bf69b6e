"""Webhook -> incident -> approval -> real Ansible -> verification, on the real Temporal dev server.

The API pins the shipped ServiceDown playbook (probe, restart through Ansible, verify). The stack runs
a copy of the shipped playbooks in which only ServiceDown's verification is shortened (`fast_playbooks`),
so that a restart that never heals is rolled back in seconds rather than after five minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from activities.config import REPO_ROOT, Settings
from api.app import create_app
from tests.credentials import ApiKeys, ByRoute
from worker.client import connect
from worker.devserver import DevServer, free_port
from worker.main import activity_pool, build_worker
from workflows.alerts import prometheus_fingerprint

pytestmark = [pytest.mark.integration, pytest.mark.ansible]


@dataclass
class Stack:
    api: httpx.AsyncClient
    service_port: int
    rollback_log: Path


def serve_command(port: int, root: Path) -> str:
    """A real web service: python's http.server, answering /health while the file exists."""
    return f"{sys.executable} -m http.server {port} --bind 127.0.0.1 --directory {root}"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    root = tmp_path_factory.mktemp("www")
    (root / "health").write_text("ok")
    port = free_port()
    yield port, root
    # Whatever Ansible started is detached from us; find it by its command line and stop it.
    subprocess.run(["pkill", "-f", serve_command(port, root)], check=False)


def fast_playbooks(directory: Path) -> Path:
    """The shipped playbooks, with ServiceDown verifying every 2s for at most 20s instead of 10s / 5m."""
    for shipped in (REPO_ROOT / "playbooks").glob("*.yaml"):
        (directory / shipped.name).write_text(shipped.read_text())
    service_down = directory / "service_down.yaml"
    text = service_down.read_text()
    assert "    interval: 10s\n    timeout: 5m\n" in text, "the shipped ServiceDown playbook changed"
    service_down.write_text(
        text.replace("    interval: 10s\n    timeout: 5m\n", "    interval: 2s\n    timeout: 20s\n")
    )
    return directory


@pytest.fixture(scope="module")
async def stack(
    dev_server: DevServer,
    service: tuple[int, Path],
    tmp_path_factory: pytest.TempPathFactory,
    api_keys: ApiKeys,
) -> AsyncIterator[Stack]:
    port, root = service
    state = tmp_path_factory.mktemp("state")
    rollback_log = state / "rollbacks.log"
    inventory = state / "inventory.yml"
    restart = f"setsid nohup {serve_command(port, root)} >/dev/null 2>&1 &"
    inventory.write_text(
        "all:\n  hosts:\n    localhost:\n"
        f"      ansible_connection: local\n      ansible_python_interpreter: {sys.executable}\n"
        f"      remediation_log: {rollback_log}\n"
        f"      remediator_marker_dir: {state / 'markers'}\n"
        "      restart_commands:\n"
        f"        web: {restart!r}\n"
        "        broken: 'true'\n"
    )
    settings = Settings(
        state_dir=state,
        task_queue=f"e2e-{port}",
        ansible_inventory=str(inventory),
        verify_timeout=timedelta(seconds=8),
        playbook_dir=fast_playbooks(tmp_path_factory.mktemp("playbooks")),
        api_keys_file=api_keys.path,
        probe_allow=["127.0.0.1"],  # the test's web service
    )
    os.environ.pop("REMEDIATOR_AUTO_APPROVE", None)
    api_port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, dev_server.address), host="127.0.0.1", port=api_port, log_level="warning"
        )
    )
    client = await connect(dev_server.address)
    with activity_pool(settings) as pool:
        worker = build_worker(client, settings, pool)
        tasks = [asyncio.create_task(worker.run()), asyncio.create_task(server.serve())]
        while not server.started:
            await asyncio.sleep(0.05)
        base_url = f"http://127.0.0.1:{api_port}"
        async with httpx.AsyncClient(base_url=base_url, timeout=30, auth=ByRoute(api_keys)) as api:
            yield Stack(api=api, service_port=port, rollback_log=rollback_log)
        server.should_exit = True
        await worker.shutdown()
        await asyncio.gather(*tasks)


def webhook(service: str, port: int) -> dict[str, object]:
    """An Alertmanager v4 webhook, as Alertmanager 0.25 sends it."""
    labels = {"alertname": "ServiceDown", "service": service, "severity": "critical", "job": service}
    return {
        "version": "4",
        "groupKey": '{}:{alertname="ServiceDown"}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "remediator",
        "groupLabels": {"alertname": "ServiceDown"},
        "commonLabels": labels,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example:9093",
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": {
                    "summary": f"{service} is down",
                    "probe_url": f"http://127.0.0.1:{port}/health",
                },
                "startsAt": "2026-11-21T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.example:9090/graph",
                "fingerprint": prometheus_fingerprint(labels),
            }
        ],
    }


async def wait_for_phase(
    api: httpx.AsyncClient, incident: str, phases: set[str], seconds: float = 90
) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + seconds
    state: dict[str, Any] = {}
    while asyncio.get_running_loop().time() < deadline:
        response = await api.get(f"/incidents/{incident}")
        if response.status_code == 200:
            state = response.json()
            if state["phase"] in phases:
                return state
        await asyncio.sleep(0.3)
    raise AssertionError(f"{incident} never reached {phases}; last state {state.get('phase')}")


def kill_service(port: int, root: Path) -> None:
    for pid in subprocess.run(
        ["pgrep", "-f", serve_command(port, root)], capture_output=True, text=True
    ).stdout.split():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGTERM)


async def test_webhook_to_verified_fix(stack: Stack, service: tuple[int, Path]) -> None:
    port, root = service
    kill_service(port, root)  # the outage is real: nothing listens on the port
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as probe:
            await probe.get(f"http://127.0.0.1:{port}/health")

    response = await stack.api.post("/alerts/alertmanager", json=webhook("web", port))
    assert response.status_code in (200, 202), response.text
    incident = response.json()[0]["incident_id"]

    waiting = await wait_for_phase(stack.api, incident, {"AwaitingApproval"})
    assert waiting["plan"]["actions"][0]["preview"]["ok"] is True  # the check-mode run succeeded
    assert waiting["diagnosis"]["confidence"] > 0

    approved = await stack.api.post(
        f"/incidents/{incident}/approve", json={"approver": "alice", "reason": "go"}
    )
    assert approved.status_code == 200, approved.text

    state = await wait_for_phase(stack.api, incident, {"Resolved", "RolledBack", "Failed"})
    assert state["phase"] == "Resolved", state["timeline"]
    assert state["approvals"][0]["approver"] == "alice"
    assert state["playbook"]["name"] == "ServiceDown"
    path = next(e["detail"] for e in state["timeline"] if e["event"] == "playbook path")
    assert path == "probe -> still_down -> restart -> healthy"
    async with httpx.AsyncClient() as probe:
        assert (await probe.get(f"http://127.0.0.1:{port}/health")).status_code == 200
    result = state["plan"]["actions"][0]["result"]
    assert result["ok"] is True and result["hosts"]["localhost"]["changed"] >= 1


async def test_failed_verification_rolls_back(stack: Stack) -> None:
    dead_port = free_port()  # the "broken" service's restart command does nothing, so it never heals
    response = await stack.api.post("/alerts/alertmanager", json=webhook("broken", dead_port))
    assert response.status_code in (200, 202), response.text
    incident = response.json()[0]["incident_id"]
    await wait_for_phase(stack.api, incident, {"AwaitingApproval"})
    await stack.api.post(f"/incidents/{incident}/approve", json={"approver": "bob"})

    state = await wait_for_phase(stack.api, incident, {"Resolved", "RolledBack", "Failed"})
    assert state["phase"] == "RolledBack"
    assert "verify healthy failed" in [entry["event"] for entry in state["timeline"]]
    # The compensation really ran: the rollback playbook recorded the failed restart on the host.
    assert f"{incident}/restart restart of broken did not verify" in stack.rollback_log.read_text()
