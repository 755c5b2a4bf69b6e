"""Board fixtures: the API tests' live stack (real dev server, real worker, real Ansible, our API on
uvicorn) and a real headless Chromium (Debian's `chromium`, from Makefile APT_PACKAGES) driven by
Playwright, which downloads nothing here."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, async_playwright

# The live stack of tests/api, shared rather than copied.
from tests.api.conftest import live_api, live_service, live_settings, live_worker  # noqa: F401


def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        raise FileNotFoundError("chromium is not installed; run `make test`, which installs it")
    return found


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    # Chromium's sandbox refuses to run as root (CI runs as root); the pages are our own board.
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium(), args=args)
        yield launched
        await launched.close()
