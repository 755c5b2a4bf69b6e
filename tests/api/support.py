"""Helpers of the API tests: payload fixtures, an in-process uvicorn server, polling."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import json
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from activities.config import Settings
from worker.devserver import free_port
from workflows.alerts import prometheus_fingerprint
from workflows.incident_models import IncidentState
from workflows.phases import Phase

FIXTURES = Path(__file__).parent / "fixtures"
# The service the live tests' alerts name; the test inventory "restarts" it for one incident (below).
LIVE_SERVICE = "api-test-svc"
# What the inventory's restart command for LIVE_SERVICE runs: it marks the incident's service as up.
# The incident comes from the action's idempotency key (`incident-<fingerprint>/<step>`), which the
# executor passes to every run; alert text never reaches the command.
LIVE_RESTART = "touch {root}/{{{{ remediator_idempotency_key | dirname }}}}"


@dataclass(frozen=True)
class LiveService:
    """LIVE_SERVICE as the ServiceDown playbook sees it: a real HTTP endpoint per incident, down (404)
    until Ansible's restart for that incident creates its file, then up (200)."""

    url: str
    root: Path

    def probe_url(self, fingerprint: str) -> str:
        return f"{self.url}/incident-{fingerprint}"


def live_settings(state: Path, service: LiveService, **settings: Any) -> Settings:
    """Settings of a worker whose real Ansible restarts LIVE_SERVICE (an inventory under `state`)."""
    inventory = state / "inventory.yml"
    restart = LIVE_RESTART.format(root=service.root)
    inventory.write_text(
        "all:\n  hosts:\n    localhost:\n"
        f"      ansible_connection: local\n      ansible_python_interpreter: {sys.executable}\n"
        f"      restart_commands:\n        {LIVE_SERVICE}: '{restart}'\n"
    )
    return Settings(
        state_dir=state,
        ansible_inventory=str(inventory),
        verify_timeout=timedelta(seconds=20),
        probe_allow=["127.0.0.1"],  # the live service
        **settings,
    )


@contextlib.contextmanager
def serve_directory(root: Path) -> Iterator[str]:
    """Python's own file server on a free port, in a thread; yields its base URL."""

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def uniquely(payload: Any, token: str | None = None) -> Any:
    """A copy whose fingerprints and labels are this test's own, so tests never share incidents."""
    token = token or uuid.uuid4().hex[:8]
    payload = copy.deepcopy(payload)
    alerts = payload.get("alerts", [payload]) if isinstance(payload, dict) else payload
    webhook = isinstance(payload, dict) and "version" in payload
    for alert in alerts:
        alert.setdefault("labels", {})["test_run"] = token
        if alert.get("fingerprint"):
            # Alertmanager and Grafana fingerprints name their labels, so they change with them.
            alert["fingerprint"] = (
                prometheus_fingerprint(alert["labels"]) if webhook else f"{alert['fingerprint']}-{token}"
            )
    return payload


class _Server(uvicorn.Server):
    # pytest owns the signal handlers; an in-process test server must not take them over.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[str]:
    """Serve `app` with uvicorn on a free port in this event loop; yields its base URL."""
    port = free_port()
    server = _Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # a failed startup raises here instead of hanging the test
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def wait_for(check: Any, timeout: float = 60.0, every: float = 0.25) -> Any:
    """Poll an async `check` until it returns something truthy; fail with its last value otherwise."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while asyncio.get_running_loop().time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")


async def state_of(http: httpx.AsyncClient, incident_id: str) -> IncidentState:
    response = await http.get(f"/incidents/{incident_id}")
    assert response.status_code == 200, response.text
    return IncidentState.model_validate(response.json())


async def wait_for_phase(http: httpx.AsyncClient, incident_id: str, *phases: Phase) -> IncidentState:
    async def reached() -> IncidentState | None:
        response = await http.get(f"/incidents/{incident_id}")
        if response.status_code != 200:
            return None
        state = IncidentState.model_validate(response.json())
        return state if state.phase in phases else None

    result: IncidentState = await wait_for(reached, timeout=90)
    return result
