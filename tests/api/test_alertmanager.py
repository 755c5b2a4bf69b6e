"""The real Prometheus Alertmanager delivering to our API: one incident per alert, resolutions arrive.

Alertmanager authenticates with a sender key, as `http_config.authorization` (Bearer) or as
`basic_auth` (the key as password); without one it gets 401s, and it keeps retrying.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
import yaml
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.client import Client

from activities.config import REPO_ROOT, Settings
from api.app import create_app
from api.auth.keys import KeyStore
from api.auth.principal import Role
from tests.api.support import LIVE_SERVICE, serve, state_of, wait_for, wait_for_phase
from tests.credentials import ApiKeys
from worker.devserver import DevServer, free_port
from workflows import search_attributes as sa
from workflows.phases import Phase

pytestmark = [pytest.mark.alertmanager, pytest.mark.integration, pytest.mark.ansible]

CONFIG = """\
route:
  receiver: remediator
  group_by: [alertname, instance]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: remediator
    webhook_configs:
      - url: {url}/alerts/alertmanager
        send_resolved: true
{http_config}"""
# What goes under the webhook (indented to it); {key} is the sender's API key.
BEARER = "        http_config:\n          authorization: {{credentials: {key}}}\n"
BASIC = "        http_config:\n          basic_auth: {{username: alertmanager, password: {key}}}\n"


EXAMPLE = REPO_ROOT / "deploy" / "alertmanager.yml"


def binary(*names: str) -> str:
    found = next((path for name in names if (path := shutil.which(name))), None)
    if not found:
        raise FileNotFoundError(
            f"{names[0]} is missing: apt-get install -y prometheus-alertmanager (make test does)"
        )
    return found


def test_example_config_is_valid_and_points_at_our_route() -> None:
    checked = subprocess.run([binary("amtool"), "check-config", str(EXAMPLE)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config = yaml.safe_load(EXAMPLE.read_text())
    [hook] = next(r for r in config["receivers"] if r["name"] == "remediator")["webhook_configs"]
    assert hook["send_resolved"] is True
    path = urlparse(hook["url"]).path
    assert path == "/alerts/alertmanager"
    assert "post" in create_app(Settings()).openapi()["paths"][path]
    # The example authenticates: a key file Alertmanager reads, sent as `Authorization: Bearer`.
    assert hook["http_config"]["authorization"]["credentials_file"]


@dataclass
class Alertmanager:
    url: str
    http: httpx.AsyncClient

    async def post(self, alerts: list[dict[str, Any]]) -> None:
        response = await self.http.post(f"{self.url}/api/v2/alerts", json=alerts)
        assert response.status_code == 200, response.text

    async def fingerprints(self, environment: str) -> dict[str, str]:
        """instance label -> Alertmanager's fingerprint, for the alerts it holds for `environment`."""
        response = await self.http.get(
            f"{self.url}/api/v2/alerts", params={"filter": f'environment="{environment}"'}
        )
        assert response.status_code == 200, response.text
        return {a["labels"]["instance"]: a["fingerprint"] for a in response.json()}


@contextlib.asynccontextmanager
async def running_alertmanager(api: str, tmp_path: Path, http_config: str) -> AsyncIterator[Alertmanager]:
    config = tmp_path / "alertmanager.yml"
    config.write_text(CONFIG.format(url=api, http_config=http_config))
    port = free_port()
    log = (tmp_path / "alertmanager.log").open("wb")
    process = subprocess.Popen(
        [
            binary("prometheus-alertmanager", "alertmanager"),
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",  # no gossip: a single, private instance
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(timeout=10) as http:

            async def ready() -> bool:
                if process.poll() is not None:
                    raise RuntimeError(f"alertmanager exited: {(tmp_path / 'alertmanager.log').read_text()}")
                try:
                    return (await http.get(f"{url}/-/ready")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_for(ready, timeout=30, every=0.1)
            yield Alertmanager(url=url, http=http)
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()


@pytest.fixture
async def alertmanager(live_api: str, tmp_path: Path, api_keys: ApiKeys) -> AsyncIterator[Alertmanager]:
    async with running_alertmanager(live_api, tmp_path, BEARER.format(key=api_keys.keys["sender"])) as am:
        yield am


def alerts(environment: str, ends_at: datetime | None = None) -> list[dict[str, Any]]:
    """Two alerts the catalogue can fix; each test run has an environment label of its own."""
    starts_at = datetime.now(UTC) - timedelta(minutes=1)
    labels = {
        "alertname": "ServiceDown",
        "service": LIVE_SERVICE,
        "severity": "critical",
        "environment": environment,
    }
    return [
        {
            "labels": {**labels, "instance": instance},
            "annotations": {"summary": f"{LIVE_SERVICE} on {instance} is down"},
            "startsAt": starts_at.isoformat(),
            **({"endsAt": ends_at.isoformat()} if ends_at else {}),
            "generatorURL": "http://prometheus.test/graph?g0.expr=up%3D%3D0",
        }
        for instance in ("node-a:9100", "node-b:9100")
    ]


async def incidents_of(client: Client, environment: str) -> list[str]:
    query = f"WorkflowType='IncidentWorkflow' AND Environment='{environment}'"
    return [execution.id async for execution in client.list_workflows(query)]


async def test_alertmanager_webhooks_make_one_incident_per_alert_and_resolve_them(
    alertmanager: Alertmanager, live_http: httpx.AsyncClient, dev_client: Client
) -> None:
    environment = f"am-{uuid.uuid4().hex[:8]}"
    await alertmanager.post(alerts(environment))
    fingerprints = await wait_for(lambda: _both(alertmanager, environment), timeout=15)
    expected = sorted(f"incident-{fp}" for fp in fingerprints.values())

    async def started() -> list[str] | None:
        found = sorted(await incidents_of(dev_client, environment))
        return found if found == expected else None

    await wait_for(started, timeout=30)
    for incident_id in expected:
        await wait_for_phase(live_http, incident_id, Phase.AWAITING_APPROVAL)

    # Alertmanager re-sends on restarts and repeats; re-posting the same alerts must not add incidents.
    await alertmanager.post(alerts(environment))
    await asyncio.sleep(3)  # several group intervals for any extra notification to arrive
    assert sorted(await incidents_of(dev_client, environment)) == expected
    for incident_id in expected:
        runs = await dev_client.count_workflows(f"WorkflowId='{incident_id}'")
        assert runs.count == 1, incident_id
        state = await state_of(live_http, incident_id)
        assert (state.alert.source, state.alert.environment) == ("alertmanager", environment)

    # endsAt in the past resolves them; Alertmanager then sends `resolved`, which cancels the pending fix.
    await alertmanager.post(alerts(environment, ends_at=datetime.now(UTC) - timedelta(seconds=1)))
    for incident_id in expected:
        final = await wait_for_phase(live_http, incident_id, Phase.CANCELLED)
        assert final.resolved_at is not None, final.timeline
        assert final.alert_updates >= 2
        assert any(e.event == "alert resolved" for e in final.timeline)
    assert sorted(await incidents_of(dev_client, environment)) == expected, (
        "a resolution never opens an incident"
    )


async def _both(alertmanager: Alertmanager, environment: str) -> dict[str, str] | None:
    fingerprints = await alertmanager.fingerprints(environment)
    return fingerprints if len(fingerprints) == 2 else None


class Recorder:
    """Wraps the app at the ASGI edge and records the status of every alert delivery that reached it."""

    def __init__(self, app: ASGIApp, statuses: list[int]) -> None:
        self.app = app
        self.statuses = statuses

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start" and scope["path"] == "/alerts/alertmanager":
                self.statuses.append(message["status"])
            await send(message)

        await self.app(scope, receive, recording_send)


@pytest.mark.parametrize(
    ("http_config", "accepted"),
    [(BEARER, True), (BASIC, True), ("", False), (BASIC.replace("{key}", "rmd_0_wrong"), False)],
)
async def test_alertmanager_with_a_key_succeeds_and_without_gets_401_and_retries(
    dev_server: DevServer,
    live_settings: Settings,
    api_keys: ApiKeys,
    dev_client: Client,
    tmp_path: Path,
    http_config: str,
    accepted: bool,
) -> None:
    statuses: list[int] = []
    app = create_app(live_settings, dev_server.address)
    app.add_middleware(Recorder, statuses=statuses)
    # An alert name of its own (no playbook knows it): its incidents are found by AlertName alone.
    name = f"AuthCheck{uuid.uuid4().hex[:8]}"
    batch = [{**alert, "labels": {**alert["labels"], "alertname": name}} for alert in alerts("auth")]
    async with (
        serve(app) as url,
        running_alertmanager(url, tmp_path, http_config.format(key=api_keys.keys["sender"])) as am,
    ):
        await am.post(batch)
        if accepted:
            started = await wait_for(lambda: _named(dev_client, name, 2), timeout=30)
            assert len(started) == 2 and set(statuses) == {202}, statuses
            return
        # Refused with 401, and Alertmanager keeps trying: every group interval it sends again.
        await wait_for(lambda: _at_least(statuses, 3), timeout=30)
    assert set(statuses) == {401}, statuses
    assert await _named(dev_client, name, 0) == []


async def _named(client: Client, alertname: str, count: int) -> list[str] | None:
    query = f"WorkflowType='IncidentWorkflow' AND AlertName='{alertname}'"
    found = [execution.id async for execution in client.list_workflows(query)]
    return found if len(found) == count else None


async def _at_least(statuses: list[int], count: int) -> bool:
    return len(statuses) >= count


async def test_one_refused_alert_does_not_cost_its_group_the_valid_one(
    dev_server: DevServer, live_settings: Settings, api_keys: ApiKeys, dev_client: Client, tmp_path: Path
) -> None:
    """Issue 10: a 3 KB label made the whole group a 422, which Alertmanager drops. Now the long label is
    cut, the alert claiming an environment its key does not hold is refused alone, and the group is a 202."""
    environment = f"grp-{uuid.uuid4().hex[:8]}"
    _, key = KeyStore(api_keys.path).create(f"am-{environment}", [Role.SENDER], environments=[environment])
    statuses: list[int] = []
    app = create_app(live_settings, dev_server.address)
    app.add_middleware(Recorder, statuses=statuses)
    name = f"GroupCheck{uuid.uuid4().hex[:8]}"
    same_group = {"alertname": name, "instance": "node-a:9100", "service": LIVE_SERVICE}  # group_by keys
    batch = [
        {"labels": {**same_group, "environment": environment, "shard": "1", "blob": "x" * 3000}},
        {"labels": {**same_group, "environment": "not-held", "shard": "2"}},
    ]
    async with serve(app) as url, running_alertmanager(url, tmp_path, BEARER.format(key=key)) as am:
        await am.post(batch)
        [incident] = await wait_for(lambda: _named(dev_client, name, 1), timeout=30)
        await wait_for(lambda: _at_least(statuses, 1), timeout=30)
    assert set(statuses) == {202}, statuses
    description = await dev_client.get_workflow_handle(incident).describe()
    assert description.typed_search_attributes.get(sa.ENVIRONMENT) == environment
