"""The board over plain HTTP against the live stack: sessions, CSRF, roles, escaping, the decision path."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from activities.config import Settings
from api.app import create_app
from api.auth.keys import KeyStore
from api.auth.principal import ANY, Role
from api.board import routes as board
from api.board.sessions import COOKIE
from tests.api.support import LiveService, serve, wait_for_phase
from tests.api.test_live import fire, service_down
from tests.credentials import ApiKeys, ByRoute
from worker.devserver import DevServer
from workflows.phases import Phase

pytestmark = [pytest.mark.integration, pytest.mark.ansible]

SCRIPT = "<script>document.title='pwned'</script><img src=x onerror=\"document.title='pwned'\">"


def hostile(service: LiveService) -> dict[str, Any]:
    """A ServiceDown alert whose text tries to run script in whoever reads it."""
    alert = service_down(service)
    alert["annotations"]["summary"] = SCRIPT
    alert["labels"]["team"] = "<b>ops</b>"
    return alert


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


@asynccontextmanager
async def logged_in(api: str, key: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api, timeout=60) as http:
        response = await http.post("/board/login", data={"credential": key})
        assert response.status_code == 303, response.text
        assert response.headers["location"] == "/board"
        yield http


@pytest.fixture(scope="module")
async def opener_key(api_keys: ApiKeys) -> str:
    """A key that may both send alerts and approve: it opens an incident it then may not approve."""
    name = f"board-opener-{uuid.uuid4().hex[:6]}"
    return KeyStore(api_keys.path).create(name, [Role.SENDER, Role.APPROVER], environments=[ANY])[1]


@pytest.fixture(scope="module")
async def waiting(live_api: str, live_service: LiveService, opener_key: str) -> str:
    """An incident awaiting approval, opened by `opener_key`, whose alert text carries script."""
    async with httpx.AsyncClient(base_url=live_api, timeout=60) as http:
        http.headers["Authorization"] = f"Bearer {opener_key}"
        outcome = await fire(http, hostile(live_service))
        await wait_for_phase(http, outcome["incident_id"], Phase.AWAITING_APPROVAL)
    return str(outcome["incident_id"])


@pytest.fixture
async def alice(live_api: str, api_keys: ApiKeys) -> AsyncIterator[httpx.AsyncClient]:
    async with logged_in(live_api, api_keys.keys["alice"]) as http:
        yield http


def test_every_board_page_but_the_login_needs_a_session() -> None:
    routes = [r for r in board.router.routes if isinstance(r, APIRoute)]
    open_paths = {"/board/login", "/board/board.css"}
    assert {r.path for r in routes} >= open_paths | {
        "/board",
        "/board/incidents/{incident_id}",
        "/board/logout",
    }
    for route in routes:
        if route.path not in open_paths:
            assert "_viewer" in {d.call.__name__ for d in route.dependant.dependencies if d.call}, route.path


async def test_without_a_session_pages_send_you_to_the_login(live_api: str, waiting: str) -> None:
    async with httpx.AsyncClient(base_url=live_api, timeout=30) as http:
        for method, path in (
            ("GET", "/board"),
            ("GET", f"/board/incidents/{waiting}"),
            ("POST", f"/board/incidents/{waiting}/approve"),
        ):
            response = await http.request(
                method, path, headers={"Cookie": f"{COOKIE}=forged"}, data={"csrf": "x"}
            )
            assert response.status_code == 303, (path, response.text)
            assert response.headers["location"] == "/board/login"
        login = await http.get("/board/login")
        assert login.status_code == 200 and 'name="credential"' in login.text


async def test_login_gives_an_httponly_strict_cookie_that_the_json_api_ignores(
    live_api: str, api_keys: ApiKeys
) -> None:
    async with httpx.AsyncClient(base_url=live_api, timeout=30) as http:
        response = await http.post("/board/login", data={"credential": api_keys.keys["viewer"]})
        assert response.status_code == 303, response.text
        cookie = response.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE}=")
        for attribute in ("HttpOnly", "Path=/board", "SameSite=strict"):
            assert attribute.lower() in cookie.lower(), cookie
        assert api_keys.keys["viewer"] not in cookie  # the key stays on the server
        assert (await http.get("/board")).status_code == 200
        # The cookie is the board's only: the JSON API still wants a credential.
        session = http.cookies[COOKIE]
        api = await http.get("/incidents", headers={"Cookie": f"{COOKIE}={session}"})
        assert api.status_code == 401, api.text


async def test_a_bad_key_or_a_role_without_read_is_refused_at_login(live_api: str, api_keys: ApiKeys) -> None:
    async with httpx.AsyncClient(base_url=live_api, timeout=30) as http:
        bad = await http.post("/board/login", data={"credential": "rmd_000000000000_nope"})
        assert bad.status_code == 401 and "not an active API key" in bad.text
        sender = await http.post("/board/login", data={"credential": api_keys.keys["sender"]})
        assert sender.status_code == 403 and "lacks permission incidents:read" in sender.text
        assert COOKIE not in http.cookies


async def test_a_revoked_key_ends_its_session(live_api: str, api_keys: ApiKeys) -> None:
    name = f"board-revoked-{uuid.uuid4().hex[:6]}"
    store = KeyStore(api_keys.path)
    key = store.create(name, [Role.VIEWER], environments=[ANY])[1]
    async with logged_in(live_api, key) as http:
        assert (await http.get("/board")).status_code == 200
        store.revoke(name)
        after = await http.get("/board")
        assert after.status_code == 303 and after.headers["location"] == "/board/login"


async def test_alert_text_is_escaped(alice: httpx.AsyncClient, waiting: str) -> None:
    page = await alice.get(f"/board/incidents/{waiting}")
    assert page.status_code == 200, page.text
    assert "<script>" not in page.text and "<img src=x" not in page.text and "<b>ops" not in page.text
    assert "&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;" in page.text
    assert "&lt;b&gt;ops&lt;/b&gt;" in page.text
    assert "script-src" not in page.headers["content-security-policy"]  # default-src 'none' covers it
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert page.headers["x-frame-options"] == "DENY"


async def test_only_deciders_see_the_buttons(
    live_api: str, api_keys: ApiKeys, alice: httpx.AsyncClient, waiting: str
) -> None:
    assert 'id="approve"' in (await alice.get(f"/board/incidents/{waiting}")).text
    async with logged_in(live_api, api_keys.keys["viewer"]) as viewer:
        page = await viewer.get(f"/board/incidents/{waiting}")
        assert page.status_code == 200 and 'id="approve"' not in page.text and "AwaitingApproval" in page.text
        # A form posted anyway is refused by role, whatever the page showed.
        csrf = csrf_of(page.text)
        forced = await viewer.post(f"/board/incidents/{waiting}/approve", data={"csrf": csrf})
        assert forced.status_code == 403 and "lacks permission incidents:decide" in forced.text


async def test_a_post_without_the_session_csrf_token_or_from_another_site_is_refused(
    alice: httpx.AsyncClient, waiting: str
) -> None:
    page = await alice.get(f"/board/incidents/{waiting}")
    csrf = csrf_of(page.text)
    wrong = await alice.post(f"/board/incidents/{waiting}/approve", data={"csrf": "not-the-token"})
    assert wrong.status_code == 403 and "CSRF token does not match" in wrong.text
    missing = await alice.post(f"/board/incidents/{waiting}/approve", data={})
    assert missing.status_code == 422
    cross = await alice.post(
        f"/board/incidents/{waiting}/approve", data={"csrf": csrf}, headers={"Origin": "https://evil.example"}
    )
    assert cross.status_code == 403 and "cross-site form refused" in cross.text
    state = await alice.get(f"/board/incidents/{waiting}")
    assert "AwaitingApproval" in state.text and "approval by alice" not in state.text


async def test_the_opener_may_not_approve_on_the_board(live_api: str, opener_key: str, waiting: str) -> None:
    async with logged_in(live_api, opener_key) as opener:
        page = await opener.get(f"/board/incidents/{waiting}")
        refused = await opener.post(
            f"/board/incidents/{waiting}/approve", data={"csrf": csrf_of(page.text), "reason": "mine"}
        )
        assert refused.status_code == 409, refused.text
        assert "opened this incident and so may not approve it" in refused.text
        assert 'id="phase">AwaitingApproval<' in refused.text


@pytest.fixture(scope="module")
async def two_person_api(
    dev_server: DevServer,
    live_settings: Settings,
    live_worker: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[str]:
    """Another API on the live worker's queue, whose policy asks two distinct people in prod."""
    policy = tmp_path_factory.mktemp("board-policy") / "policy.yaml"
    policy.write_text("default_environment: prod\nenvironments:\n  prod: {approvers_required: 2}\n")
    async with serve(
        create_app(live_settings.model_copy(update={"policy_file": policy}), dev_server.address)
    ) as url:
        yield url


async def test_the_board_counts_principals_for_the_two_person_rule(
    two_person_api: str, live_service: LiveService, api_keys: ApiKeys
) -> None:
    async with httpx.AsyncClient(base_url=two_person_api, timeout=60, auth=ByRoute(api_keys)) as http:
        incident = str((await fire(http, service_down(live_service)))["incident_id"])
        await wait_for_phase(http, incident, Phase.AWAITING_APPROVAL)
        page = f"/board/incidents/{incident}"

        async with logged_in(two_person_api, api_keys.keys["alice"]) as alice:
            csrf = csrf_of((await alice.get(page)).text)
            first = await alice.post(f"{page}/approve", data={"csrf": csrf}, follow_redirects=True)
            assert first.status_code == 200 and "Your approval was recorded." in first.text
            assert 'id="phase">AwaitingApproval<' in first.text  # one of two
            again = await alice.post(f"{page}/approve", data={"csrf": csrf})
            assert again.status_code == 409, again.text

        async with logged_in(two_person_api, api_keys.keys["bob"]) as bob:
            second = await bob.post(f"{page}/approve", data={"csrf": csrf_of((await bob.get(page)).text)})
            assert second.status_code == 303, second.text
        # The second principal's approval completes it: the plan runs (the Chromium test sees one resolve).
        moved = (Phase.EXECUTING, Phase.VERIFYING, Phase.RESOLVED, Phase.FAILED, Phase.ROLLED_BACK)
        state = await wait_for_phase(http, incident, *moved)
        assert state.phase != Phase.FAILED, state.timeline
        assert [(a.approver, a.via) for a in state.approvals] == [("alice", "api"), ("bob", "api")]
