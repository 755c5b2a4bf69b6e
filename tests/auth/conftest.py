"""Access-control fixtures: the real app (uvicorn on a free port) with Temporal unreachable.

Authentication and authorization are decided before any call to Temporal, so an allowed request
answers what the route answers without Temporal (503, 404, 422 ...) and a refused one 401 or 403.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from activities.config import Settings
from api.app import create_app
from tests.api.support import serve
from tests.credentials import ApiKeys
from worker.devserver import free_port


@pytest.fixture(scope="module")
async def api_url(api_keys: ApiKeys) -> AsyncIterator[str]:
    settings = Settings(api_keys_file=api_keys.path)
    async with serve(create_app(settings, f"127.0.0.1:{free_port()}")) as url:
        yield url


@pytest.fixture
async def http(api_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """No credential unless a request passes one."""
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as client:
        yield client
