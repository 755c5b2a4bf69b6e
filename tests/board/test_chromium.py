"""A person in real headless Chromium logs in, finds the incident, clicks Approve, and it resolves.

Full stack: the real Temporal dev server, a real worker (real Ansible restarts the service), our API
on uvicorn, and Debian's Chromium driven by Playwright.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from playwright.async_api import Browser, Page

from tests.api.support import LiveService, wait_for_phase
from tests.api.test_live import fire
from tests.board.test_pages import hostile
from tests.credentials import ApiKeys, ByRoute
from workflows.phases import Phase

pytestmark = [pytest.mark.integration, pytest.mark.ansible]


async def phase_shown(page: Page, *phases: Phase, timeout: float = 60.0) -> str:
    """Reload the incident page (as a person would) until it shows one of `phases`."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        shown = await page.inner_text("#phase")
        if shown in phases or asyncio.get_running_loop().time() > deadline:
            return shown
        await asyncio.sleep(0.5)
        await page.reload()


async def test_approve_on_the_board_resolves_the_incident(
    browser: Browser, live_api: str, live_service: LiveService, api_keys: ApiKeys
) -> None:
    async with httpx.AsyncClient(base_url=live_api, timeout=60, auth=ByRoute(api_keys)) as http:
        incident_id = str((await fire(http, hostile(live_service)))["incident_id"])
        await wait_for_phase(http, incident_id, Phase.AWAITING_APPROVAL)

    context = await browser.new_context()
    try:
        page = await context.new_page()
        await page.goto(f"{live_api}/board")
        assert page.url == f"{live_api}/board/login"  # no session yet
        await page.fill("#credential", api_keys.keys["alice"])
        await page.click("#login")
        await page.wait_for_url(f"{live_api}/board")
        assert await page.inner_text("#principal") == "alice"

        [cookie] = await context.cookies()
        assert (cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (True, "Strict", "/board")
        assert await page.evaluate("document.cookie") == ""  # no script can read the session

        await page.click(f"a[href='/board/incidents/{incident_id}']")
        await page.wait_for_url(f"{live_api}/board/incidents/{incident_id}")
        title = await page.title()
        # The alert's script arrived as text, and ran nowhere.
        assert "<script>document.title='pwned'</script>" in await page.inner_text("#annotations")
        assert "pwned" not in title and await page.locator("#annotations img").count() == 0
        assert await page.inner_text("#phase") == Phase.AWAITING_APPROVAL

        await page.fill("#reason", "restart is safe")
        await page.click("#approve")
        await page.wait_for_url(f"{live_api}/board/incidents/{incident_id}?decided=approved")
        assert await page.inner_text("#notice") == "Your approval was recorded."
        assert "approved by alice via api: restart is safe" in " ".join(
            (await page.inner_text("#approvals")).split()
        )

        assert await phase_shown(page, Phase.RESOLVED, Phase.FAILED, Phase.ROLLED_BACK) == Phase.RESOLVED
        assert await page.locator("#approve").count() == 0  # nothing left to decide
        assert "verify healthy passed" in await page.inner_text("#timeline")
    finally:
        await context.close()
