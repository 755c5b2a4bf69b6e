"""No credential store, no API: unless REMEDIATOR_AUTH=disabled, which warns at every start."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from activities.config import Settings
from api.app import create_app
from api.auth.access import AccessError
from api.auth.credentials import AuthConfigError
from api.auth.keys import KeyStore
from api.auth.principal import Role
from tests.api.support import serve
from worker.devserver import free_port

REMEDIATOR = str(Path(sys.executable).parent / "remediator")


async def start(settings: Settings) -> None:
    app = create_app(settings, "127.0.0.1:1")
    async with app.router.lifespan_context(app):
        pass


async def test_without_keys_or_oidc_the_app_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(AuthConfigError, match="no credentials are configured"):
        await start(Settings(state_dir=tmp_path))
    store = KeyStore(tmp_path / "api-keys.json")
    store.create("gone", [Role.ADMIN])
    store.revoke("gone")
    with pytest.raises(AuthConfigError, match="holds no active key"):  # revoked keys do not count
        await start(Settings(state_dir=tmp_path))
    store.create("admin", [Role.ADMIN])
    await start(Settings(state_dir=tmp_path))


def test_remediator_api_refuses_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "REMEDIATOR_STATE_DIR": str(tmp_path)}
    env.pop("REMEDIATOR_AUTH", None)
    result = subprocess.run(
        [REMEDIATOR, "api", "--port", str(free_port())], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert result.stderr.startswith("remediator: no credentials are configured: the API key file ")
    assert "remediator auth key create --name admin --role admin" in result.stderr
    assert "REMEDIATOR_AUTH=disabled" in result.stderr and len(result.stderr.splitlines()) == 1


def test_remediator_api_with_auth_disabled_starts_and_warns(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "REMEDIATOR_STATE_DIR": str(tmp_path), "REMEDIATOR_AUTH": "disabled"}
    log = (tmp_path / "api.log").open("w+")
    proc = subprocess.Popen(
        [REMEDIATOR, "api", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, Path(log.name).read_text()
            time.sleep(0.2)
        # No key at all, and still every route is open: what `disabled` means.
        assert httpx.get(f"http://127.0.0.1:{port}/auth/keys").status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()
    output = Path(log.name).read_text()
    assert "REMEDIATOR_AUTH=disabled: every caller is 'anonymous' with every role" in output


async def test_disabled_auth_logs_a_warning_at_every_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(state_dir=tmp_path, auth="disabled")
    with caplog.at_level(logging.WARNING, logger="api.auth.credentials"):
        await start(settings)
        await start(settings)
    warnings = [r for r in caplog.records if "REMEDIATOR_AUTH=disabled" in r.getMessage()]
    assert len(warnings) == 2 and all(r.levelno == logging.WARNING for r in warnings)
    async with (
        serve(create_app(settings, f"127.0.0.1:{free_port()}")) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        response = await http.post("/auth/keys", json={"name": "k", "roles": ["viewer"]})
    assert response.status_code == 201
    assert (tmp_path / "api-keys.json").exists()


async def test_a_malformed_access_section_names_file_and_line(tmp_path: Path) -> None:
    KeyStore(tmp_path / "api-keys.json").create("admin", [Role.ADMIN])
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "dry_run: false\naccess:\n  groups:\n    sre: {roles: [approver]}\n    ops:\n      roles: [root]\n"
    )
    with pytest.raises(AccessError) as raised:
        await start(Settings(state_dir=tmp_path, policy_file=policy))
    assert str(raised.value).startswith(f"{policy}:6: access.groups.ops.roles[0]: Input should be ")


async def test_the_access_section_does_not_disturb_the_policy(tmp_path: Path) -> None:
    KeyStore(tmp_path / "api-keys.json").create("admin", [Role.ADMIN])
    policy = tmp_path / "policy.yaml"
    policy.write_text("destructive_approvers: 3\naccess:\n  groups:\n    sre: {roles: [approver]}\n")
    await start(Settings(state_dir=tmp_path, policy_file=policy))
