"""Browsers: no cookie is ever a credential, and JSON routes refuse other content types (415).

A cross-site HTML form can send neither an Authorization header nor a JSON content type, so it
cannot act whatever cookies the browser holds.
"""

from __future__ import annotations

import httpx
import pytest

from tests.credentials import ApiKeys

JSON_ROUTES = ["/alerts", "/alerts/alertmanager", "/alerts/grafana", "/operations", "/schedules"]


@pytest.mark.parametrize("path", [*JSON_ROUTES, "/incidents/abc/approve"])
async def test_a_cross_site_form_post_is_refused(http: httpx.AsyncClient, path: str) -> None:
    response = await http.post(
        path,
        content=b"approver=mallory",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": "session=stolen"},
    )
    assert response.status_code == 401, response.text


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain", ""])
@pytest.mark.parametrize("path", JSON_ROUTES)
async def test_json_routes_refuse_other_bodies_with_415(
    http: httpx.AsyncClient, api_keys: ApiKeys, path: str, content_type: str
) -> None:
    headers = {"Authorization": f"Bearer {api_keys.keys['admin']}", "Content-Type": content_type}
    response = await http.post(path, content=b'{"alertname": "X"}', headers=headers)
    assert response.status_code == 415, response.text
    assert response.json()["error"] == "unsupported_media_type"
    assert "expected JSON sent with Content-Type: application/json" in response.json()["message"]


async def test_logs_accept_raw_text_with_a_credential(http: httpx.AsyncClient, api_keys: ApiKeys) -> None:
    response = await http.post(
        "/logs/analyze",
        content=b"ERROR disk full on /var\nERROR disk full on /tmp\n",
        headers={"Content-Type": "text/plain", **api_keys.headers("viewer")},
    )
    assert response.status_code == 200, response.text
