"""API test fixtures: our app served by a real uvicorn on a free port, against the real dev server.

Two apps on two task queues keep the tests apart: `idle` has no worker, so incidents stay exactly
as the API left them; `live` has a real worker, so incidents progress and answer queries. Both check
API keys from the session's key file; the HTTP clients sign each request with the key of the least
powerful role its route should accept (tests/credentials.py).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import httpx
import pytest
from temporalio.client import Client

from activities.config import Settings
from api.app import create_app
from tests.api import support
from tests.api.support import LiveService, serve, serve_directory
from tests.credentials import ApiKeys, ByRoute
from worker.devserver import DevServer
from worker.main import activity_pool, build_worker


@pytest.fixture(scope="session")
def idle_settings(api_keys: ApiKeys) -> Settings:
    return Settings(
        task_queue=f"api-idle-{uuid.uuid4().hex[:8]}",
        api_temporal_timeout=timedelta(seconds=2),
        api_keys_file=api_keys.path,
    )


@pytest.fixture(scope="session")
async def idle_api(dev_server: DevServer, idle_settings: Settings) -> AsyncIterator[str]:
    async with serve(create_app(idle_settings, dev_server.address)) as url:
        yield url


@pytest.fixture(scope="session")
async def idle_http(idle_api: str, api_keys: ApiKeys) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=idle_api, timeout=30, auth=ByRoute(api_keys)) as http:
        yield http


@pytest.fixture(scope="session")
def live_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    root = tmp_path_factory.mktemp("api-live-up")
    with serve_directory(root) as url:
        yield LiveService(url=url, root=root)


@pytest.fixture(scope="session")
def live_settings(
    tmp_path_factory: pytest.TempPathFactory, live_service: LiveService, api_keys: ApiKeys
) -> Settings:
    return support.live_settings(
        tmp_path_factory.mktemp("api-live"),
        live_service,
        task_queue=f"api-live-{uuid.uuid4().hex[:8]}",
        api_keys_file=api_keys.path,
    )


@pytest.fixture(scope="session")
async def live_worker(dev_client: Client, live_settings: Settings) -> AsyncIterator[None]:
    with activity_pool(live_settings) as pool:
        async with build_worker(dev_client, live_settings, pool):
            yield


@pytest.fixture(scope="session")
async def live_api(dev_server: DevServer, live_settings: Settings, live_worker: None) -> AsyncIterator[str]:
    async with serve(create_app(live_settings, dev_server.address)) as url:
        yield url


@pytest.fixture(scope="session")
async def live_http(live_api: str, api_keys: ApiKeys) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_api, timeout=60, auth=ByRoute(api_keys)) as http:
        yield http
