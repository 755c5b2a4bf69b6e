"""Memory shared through Qdrant: an incident closed by a worker on one machine is recalled by a worker on
another. The real dev server, the real API and worker, and the real qdrant-client over HTTP to the
local Qdrant REST server of tests/memory; each "machine" has its own state directory."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client

from activities.memory.store import build_store
from api.app import create_app
from tests.api.support import serve, wait_for, wait_for_phase
from tests.credentials import ApiKeys, ByRoute
from tests.memory.conftest import backend_settings, fake_qdrant
from tests.memory.fake_qdrant import FakeQdrant
from worker.devserver import DevServer
from worker.main import activity_pool, build_worker
from workflows.investigation_models import MemoryQuery
from workflows.phases import Phase

pytestmark = pytest.mark.integration
__all__ = ["fake_qdrant"]


async def test_an_incident_closed_on_one_machine_is_recalled_on_another(
    dev_server: DevServer, dev_client: Client, fake_qdrant: FakeQdrant, tmp_path: Path
) -> None:
    first = backend_settings(
        "qdrant-server",
        tmp_path / "machine-a",
        fake_qdrant,
        task_queue=f"shared-memory-{uuid.uuid4().hex[:8]}",
        playbook_dir=tmp_path / "no-playbooks",
        api_keys_file=tmp_path / "api-keys.json",
    )
    keys = ApiKeys.create(first.api_keys_path)
    (tmp_path / "no-playbooks").mkdir()
    service = f"ledger-{uuid.uuid4().hex[:6]}"
    alert = {
        "alertname": "LedgerSlow",
        "severity": "warning",
        "service": service,
        "annotations": {"summary": f"{service} p99 latency above 2s since the batch import"},
    }
    with activity_pool(first) as pool:
        async with (
            build_worker(dev_client, first, pool),
            serve(create_app(first, dev_server.address)) as url,
            httpx.AsyncClient(base_url=url, timeout=30, auth=ByRoute(keys)) as api,
        ):
            posted = await api.post("/alerts", json=alert)
            assert posted.status_code == 202, posted.text
            incident = posted.json()[0]["incident_id"]
            # no playbook or catalogue entry knows this alert: the incident closes as Escalated
            await wait_for_phase(api, incident, Phase.ESCALATED)

            # another machine: its own state directory and its own client, the same Qdrant collection
            second = backend_settings(
                "qdrant-server",
                tmp_path / "machine-b",
                fake_qdrant,
                qdrant_collection=first.qdrant_collection,
            )
            elsewhere = build_store(second)

            async def recalled() -> list[str]:
                found = await elsewhere.search(
                    MemoryQuery(text=f"{service} latency batch import", kind="incident")
                )
                return [h.title for h in found.hits]

            titles = await wait_for(recalled, timeout=30)

    assert titles == [f"LedgerSlow on {service}: Escalated"]
    assert not (tmp_path / "machine-a" / "state" / "memory.sqlite3").exists()  # nothing stayed local
