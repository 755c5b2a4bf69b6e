"""The API pins each new incident to its playbook and the policy, loaded once when the app starts."""

from __future__ import annotations

import hashlib
import shutil
import uuid
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client

from activities.config import REPO_ROOT, Settings
from api.app import create_app
from api.ingest import PinningError
from tests.api.test_routes import post, start_input

pytestmark = pytest.mark.integration
SHIPPED = REPO_ROOT / "playbooks"


async def test_an_incident_starts_pinned_to_its_playbook_and_the_policy(
    idle_http: httpx.AsyncClient, dev_client: Client
) -> None:
    token = uuid.uuid4().hex[:8]
    [outcome] = await post(
        idle_http, "/alerts", {"alertname": "HighCPU", "labels": {"namespace": "shop", "run": token}}
    )
    inp = await start_input(dev_client, outcome["incident_id"])
    assert inp.playbook is not None and inp.playbook.name == "HighCPU"
    # The content and the hash of the file as it was at startup: later edits change nothing running.
    assert inp.playbook.sha256 == hashlib.sha256((SHIPPED / "high_cpu.yaml").read_bytes()).hexdigest()
    assert inp.playbook.playbook.steps[0].id == "cpu"
    assert inp.policy.destructive_approvers == 2  # the built-in policy: no REMEDIATOR_POLICY_FILE set

    [unknown] = await post(idle_http, "/alerts", {"alertname": "NothingKnown", "labels": {"run": token}})
    assert (await start_input(dev_client, unknown["incident_id"])).playbook is None


async def start_with(settings: Settings) -> None:
    app = create_app(settings, "127.0.0.1:1")
    async with app.router.lifespan_context(app):
        pass


async def test_a_malformed_playbook_stops_the_api_at_startup(tmp_path: Path) -> None:
    shutil.copy(SHIPPED / "service_down.yaml", tmp_path / "service_down.yaml")
    (tmp_path / "broken.yaml").write_text(
        "name: Broken\nmatch: {matchers: ['alertname=\"Broken\"']}\nsteps:\n  - id: go\n    kind: jump\n"
    )
    with pytest.raises(PinningError) as raised:
        await start_with(Settings(playbook_dir=tmp_path))
    assert str(raised.value).startswith(f"{tmp_path / 'broken.yaml'}:5: steps[0].kind: ")


async def test_a_malformed_policy_stops_the_api_at_startup(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("dry_run: false\nlimits:\n  concurrent_remediations: none\n")
    with pytest.raises(PinningError) as raised:
        await start_with(Settings(policy_file=policy))
    assert str(raised.value).startswith(f"{policy}:3: limits.concurrent_remediations: ")
