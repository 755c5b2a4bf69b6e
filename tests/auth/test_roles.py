"""Each role against each route: allowed or refused with 403 naming the permission; 401 without a key.

Each request is invalid in a way the route would report (422) or needs Temporal (503, unreachable
here), so "allowed" means the request got past authorization, and nothing is changed anywhere.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from activities.config import Settings
from api.app import create_app
from api.auth.principal import GRANTS, Permission, Role
from tests.credentials import ApiKeys

# (method, path, JSON body or None, the permission the route needs)
ROUTES: list[tuple[str, str, Any, Permission]] = [
    ("POST", "/alerts", {}, Permission.SEND),
    ("POST", "/alerts/alertmanager", {}, Permission.SEND),
    ("POST", "/alerts/grafana", {}, Permission.SEND),
    ("GET", "/incidents?limit=0", None, Permission.READ),
    ("GET", "/incidents/bad%20id", None, Permission.READ),
    ("POST", "/incidents/abc/approve", {"reason": 7}, Permission.DECIDE),
    ("POST", "/incidents/abc/reject", {"reason": 7}, Permission.DECIDE),
    ("POST", "/logs/analyze?max_templates=0", None, Permission.READ),
    ("POST", "/operations", {}, Permission.OPERATE),
    ("GET", "/operations?limit=0", None, Permission.READ),
    ("GET", "/operations/bad", None, Permission.READ),
    ("GET", "/history?limit=0", None, Permission.READ),
    ("POST", "/schedules", {}, Permission.OPERATE),
    ("GET", "/schedules", None, Permission.READ),
    ("DELETE", "/schedules/bad%20name", None, Permission.OPERATE),
    ("POST", "/schedules/bad%20name/trigger", None, Permission.OPERATE),
    ("GET", "/auth/keys", None, Permission.MANAGE_KEYS),
    ("POST", "/auth/keys", {}, Permission.MANAGE_KEYS),
    ("DELETE", "/auth/keys/bad%20name", None, Permission.MANAGE_KEYS),
]
PUBLIC = ["/healthz", "/metrics", "/docs", "/redoc", "/openapi.json"]
CASES = [(role, *route) for role in Role for route in ROUTES]


def test_the_table_covers_every_route() -> None:
    """A route added later without a row here fails this test instead of going unchecked."""
    documented = {
        (method.upper(), path)
        for path, operations in create_app(Settings()).openapi()["paths"].items()
        for method in operations
    }
    templated = {(m, _template(p)) for m, p, _, _ in ROUTES}
    # Slack's clicks carry Slack's signature instead of a key (tests/notify/test_slack_endpoint.py).
    signed = {("POST", "/slack/interactions")}
    assert documented - {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")} - signed == templated


def _template(path: str) -> str:
    names = {"abc": "{incident_id}", "bad%20id": "{incident_id}", "bad": "{operation_id}"}
    parts = path.split("?")[0].split("/")
    if parts[1] == "schedules" and len(parts) > 2:
        parts[2] = "{name}"
    elif parts[1:3] == ["auth", "keys"] and len(parts) > 3:
        parts[3] = "{key}"
    else:
        parts = [names.get(p, p) for p in parts]
    return "/".join(parts)


@pytest.mark.parametrize(("role", "method", "path", "body", "permission"), CASES)
async def test_role_against_route(
    http: httpx.AsyncClient,
    api_keys: ApiKeys,
    role: Role,
    method: str,
    path: str,
    body: Any,
    permission: Permission,
) -> None:
    response = await http.request(method, path, json=body, headers=api_keys.headers(role.value))
    if permission in GRANTS[role]:
        assert response.status_code not in (401, 403), response.text
        assert response.status_code in (200, 404, 422, 503), response.text
    else:
        assert response.status_code == 403, response.text
        assert response.json() == {
            "error": "forbidden",
            "message": f"{role.value} {role.value!r} lacks permission {permission.value}",
            "permission": permission.value,
        }


@pytest.mark.parametrize(("method", "path", "body", "_permission"), ROUTES)
async def test_no_credential_is_401_with_a_challenge(
    http: httpx.AsyncClient, method: str, path: str, body: Any, _permission: Permission
) -> None:
    response = await http.request(method, path, json=body)
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "unauthenticated"
    assert "Authorization: Bearer" in response.json()["message"]
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="remediator", Basic realm="remediator"'


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer rmd_000000000000_not-the-secret",
        "Bearer not-a-key",
        "Basic bm90LWJhc2U2NA==",  # "not-base64" with no colon: no password
        "Basic !!!",
        "Token whatever",
        "Bearer",
    ],
)
async def test_bad_credentials_are_401(http: httpx.AsyncClient, authorization: str) -> None:
    response = await http.get("/incidents", headers={"Authorization": authorization})
    assert response.status_code == 401, response.text
    assert "WWW-Authenticate" in response.headers


async def test_a_key_with_a_wrong_secret_is_401(http: httpx.AsyncClient, api_keys: ApiKeys) -> None:
    key = api_keys.keys["admin"]
    response = await http.get("/auth/keys", headers={"Authorization": f"Bearer {key[:-2]}xx"})
    assert response.status_code == 401, response.text


@pytest.mark.parametrize("path", PUBLIC)
async def test_health_and_docs_need_no_credential(http: httpx.AsyncClient, path: str) -> None:
    assert (await http.get(path)).status_code == 200


async def test_readyz_needs_no_credential(http: httpx.AsyncClient) -> None:
    # Temporal is unreachable here: readiness says so, without asking who is asking.
    assert (await http.get("/readyz")).status_code == 503


async def test_an_unknown_path_without_a_credential_is_401_not_404(http: httpx.AsyncClient) -> None:
    assert (await http.get("/nosuch")).status_code == 401
