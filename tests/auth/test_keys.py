"""API keys: stored only as hashes (0600), revoked without a restart, Basic auth, the admin routes."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import httpx
import pytest

from api.auth.keys import KeyStore, KeyStoreError, digest
from api.auth.principal import Role
from tests.credentials import ApiKeys


def basic(key: str, user: str = "alertmanager") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{key}".encode()).decode()}


def test_the_file_holds_hashes_only_and_is_private(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.json")
    record, key = store.create("am-prod", [Role.SENDER], ["prod"], ["payments-*"], None)
    assert key.startswith(f"rmd_{record.id}_") and len(key) > 50
    text = store.path.read_text()
    assert key not in text and key.split("_", 2)[2] not in text
    assert json.loads(text)[0]["sha256"] == digest(key)
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert store.verify(key) == record
    assert record.principal().environments == ("prod",) and record.principal().services == ("payments-*",)


def test_names_are_unique_among_active_keys_and_revoke_finds_by_id_or_name(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.json")
    first, key = store.create("ci", [Role.OPERATOR])
    with pytest.raises(KeyStoreError, match="an active key named 'ci' exists"):
        store.create("ci", [Role.VIEWER])
    [revoked] = store.revoke(first.id)
    assert revoked.revoked and revoked.revoked_at is not None
    assert store.verify(key) is None
    second, _ = store.create("ci", [Role.VIEWER])  # the name is free again
    assert [r.id for r in store.revoke("ci")] == [second.id]
    with pytest.raises(KeyStoreError, match="no active key with id or name 'ci'"):
        store.revoke("ci")


def test_a_malformed_key_file_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text('[{"id": "x"}]')
    with pytest.raises(KeyStoreError, match=rf"{path}: 0.id: String should match pattern"):
        KeyStore(path).records()


async def test_basic_auth_with_the_key_as_password(http: httpx.AsyncClient, api_keys: ApiKeys) -> None:
    response = await http.get("/incidents?limit=0", headers=basic(api_keys.keys["viewer"]))
    assert response.status_code == 422, response.text  # authenticated: the bad limit is reported
    any_user = await http.get("/incidents?limit=0", headers=basic(api_keys.keys["viewer"], user=""))
    assert any_user.status_code == 422, any_user.text
    wrong = await http.get("/incidents?limit=0", headers=basic("rmd_000000000000_nope"))
    assert wrong.status_code == 401


async def test_revoked_key_is_refused_by_the_running_api(http: httpx.AsyncClient, api_keys: ApiKeys) -> None:
    store = KeyStore(api_keys.path)
    _, key = store.create("short-lived", [Role.VIEWER])
    headers = {"Authorization": f"Bearer {key}"}
    assert (await http.get("/incidents?limit=0", headers=headers)).status_code == 422
    store.revoke("short-lived")
    refused = await http.get("/incidents?limit=0", headers=headers)
    assert refused.status_code == 401
    assert "not an active API key" in refused.json()["message"]


async def test_admins_manage_keys_over_http(http: httpx.AsyncClient, api_keys: ApiKeys) -> None:
    admin = api_keys.headers("admin")
    body = {"name": "grafana", "roles": ["sender"], "environments": ["prod"]}
    created = await http.post("/auth/keys", json=body, headers=admin)
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    assert created.json()["roles"] == ["sender"] and created.json()["environments"] == ["prod"]
    listed = await http.get("/auth/keys", headers=admin)
    assert [k["name"] for k in listed.json()].count("grafana") == 1
    assert key not in listed.text and "sha256" not in listed.text
    again = await http.post("/auth/keys", json=body, headers=admin)
    assert again.status_code == 409 and "an active key named 'grafana' exists" in again.json()["message"]

    sent = await http.post("/alerts", json={}, headers={"Authorization": f"Bearer {key}"})
    assert sent.status_code == 422  # a sender: past authorization to validation
    revoked = await http.delete(f"/auth/keys/{created.json()['id']}", headers=admin)
    assert revoked.status_code == 200 and revoked.json()[0]["revoked"] is True
    assert (
        await http.post("/alerts", json={}, headers={"Authorization": f"Bearer {key}"})
    ).status_code == 401
    missing = await http.delete("/auth/keys/grafana", headers=admin)
    assert missing.status_code == 404


async def test_key_creation_is_validated(http: httpx.AsyncClient, api_keys: ApiKeys) -> None:
    response = await http.post(
        "/auth/keys", json={"name": "x y", "roles": ["root"]}, headers=api_keys.headers("admin")
    )
    assert response.status_code == 422
    assert "name: String should match pattern" in response.json()["message"]
    assert "roles[0]: Input should be" in response.json()["message"]
