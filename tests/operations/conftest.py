"""Live fixtures: the real dev server, a real worker (real Ansible on localhost) and the API on uvicorn.

The inventory names node-a and node-b, both reached with the local connection, each with log and
backup directories of its own under the test's temporary directory, and 127.0.0.1, where restarting
the service `shop` touches a file.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from temporalio.client import Client

from activities.config import Settings
from api.app import create_app
from tests.api.support import serve
from tests.api.test_cli import KEYS
from tests.credentials import ApiKeys
from worker.devserver import DevServer
from worker.main import activity_pool, build_worker

NODES = ("node-a", "node-b")


@pytest.fixture(scope="module")
def ops_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ops-live")
    hosts = {}
    for node in NODES:
        for sub in ("logs", "data", "backups"):
            (root / node / sub).mkdir(parents=True)
        (root / node / "data" / "orders.csv").write_text("id,total\n1,9.99\n")
        hosts[node] = {
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            "log_dirs": [str(root / node / "logs")],
            "backup_paths": [str(root / node / "data")],
            "backup_dir": str(root / node / "backups"),
            "remediator_marker_dir": str(root / node / "markers"),
        }
    # The batch restart's target is 127.0.0.1:<port of the API>, whose /healthz answers the probe.
    hosts["127.0.0.1"] = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "restart_commands": {"shop": f"touch {root / 'shop.restarted'}"},
        "remediator_marker_dir": str(root / "markers"),
    }
    (root / "inventory.yml").write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    return root


@pytest.fixture(autouse=True)
def cli_keys(api_keys: ApiKeys) -> None:
    """`cli` (from tests/api/test_cli.py) signs each command with the key its user would hold."""
    KEYS[:] = [api_keys]


@pytest.fixture(scope="module")
def ops_settings(ops_dir: Path, api_keys: ApiKeys) -> Settings:
    return Settings(
        task_queue=f"ops-live-{uuid.uuid4().hex[:8]}",
        state_dir=ops_dir,
        ansible_inventory=str(ops_dir / "inventory.yml"),
        api_keys_file=api_keys.path,
        probe_allow=["127.0.0.1"],  # the health-check targets are local test services
    )


@pytest.fixture(scope="module")
async def ops_api(dev_server: DevServer, dev_client: Client, ops_settings: Settings) -> AsyncIterator[str]:
    with activity_pool(ops_settings) as pool:
        async with (
            build_worker(dev_client, ops_settings, pool),
            serve(create_app(ops_settings, dev_server.address)) as url,
        ):
            yield url
