"""What the `dev` console prints: commands that work when pasted, phase lines, one-line failures."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import ApplicationError

from api.cli.dev_console import (
    FOLLOW_QUERIES,
    LOG_FORMAT,
    OneLine,
    PhaseFollower,
    current_phase_start,
    phase_changes,
    remediator_command,
)
from tests.api.support import wait_for
from tests.workflows.fakes import Fakes, make_alert, start, wait_phase, worker
from worker.devserver import DevServer, free_port
from workflows.decisions import Decision
from workflows.incident import IncidentWorkflow
from workflows.incident_models import TimelineEntry
from workflows.phases import Phase

BIN = Path(sys.executable).parent


def test_commands_use_the_bare_name_only_when_path_finds_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}/usr/bin{os.pathsep}/bin")
    assert remediator_command() == "remediator"

    monkeypatch.setenv("PATH", f"/usr/bin{os.pathsep}/bin")  # as after `make run`, .venv/bin not on PATH
    for cwd in (BIN.parent.parent, tmp_path):  # the checkout (.venv/bin/remediator), anywhere else
        monkeypatch.chdir(cwd)
        printed = remediator_command()
        assert printed != "remediator"
        run = subprocess.run([printed, "--help"], capture_output=True, text=True, timeout=60, cwd=cwd)
        assert run.returncode == 0 and "remediator" in run.stdout, run.stderr


def record_of_a_failure() -> logging.LogRecord:
    try:
        raise ApplicationError("probe of http://127.0.0.1:9/health failed: connection refused")
    except ApplicationError:
        return logging.LogRecord(
            "temporalio.activity",
            logging.WARNING,
            __file__,
            1,
            "Completing activity as failed",
            (),
            sys.exc_info(),
        )


def test_a_failure_is_one_line_without_verbose() -> None:
    line = OneLine(LOG_FORMAT).format(record_of_a_failure())
    assert "\n" not in line and "Traceback" not in line
    assert line.endswith(
        "WARNING temporalio.activity: Completing activity as failed: "
        "ApplicationError: probe of http://127.0.0.1:9/health failed: connection refused"
    )
    verbose = logging.Formatter(LOG_FORMAT).format(record_of_a_failure())
    assert "Traceback (most recent call last)" in verbose


def entry(phase: Phase, event: str) -> TimelineEntry:
    return TimelineEntry(at=datetime.now(UTC), phase=phase, event=event)


def test_one_line_per_phase_change() -> None:
    timeline = [
        entry(Phase.RECEIVED, "alert received"),
        entry(Phase.GATHERING, "gathering evidence"),
        entry(Phase.GATHERING, "probe failed"),
        entry(Phase.AWAITING_APPROVAL, "awaiting approval"),
        entry(Phase.AWAITING_APPROVAL, "approval by alice"),
    ]
    assert [e.event for e in phase_changes(timeline, 0)] == [
        "alert received",
        "gathering evidence",
        "awaiting approval",
    ]
    assert [e.event for e in phase_changes(timeline, 4)] == []  # AwaitingApproval was shown already
    assert [e.event for e in phase_changes([*timeline, entry(Phase.EXECUTING, "executing")], 5)] == [
        "executing"
    ]
    assert current_phase_start(timeline) == 3


@pytest.fixture(scope="module")
async def console_client(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Client]:
    """A dev server of the console tests' own: the console lists every incident on its server."""
    server = DevServer(
        port=free_port(), ui_port=free_port(), log_file=tmp_path_factory.mktemp("console") / "log"
    )
    client = await server.start()
    yield client
    server.stop()


async def visible(client: Client, phase: Phase, n: int, *queues: str) -> None:
    """Wait until visibility lists `n` incidents of `queues` in `phase` (it lags the workflows a little)."""
    queue_list = ", ".join(f"'{q}'" for q in queues)
    query = f"WorkflowType='IncidentWorkflow' AND IncidentPhase='{phase}' AND TaskQueue IN ({queue_list})"

    async def listed() -> bool:
        return (await client.count_workflows(query)).count == n

    await wait_for(listed, timeout=10, every=0.1)


async def look_until_printed(follower: PhaseFollower, capsys: pytest.CaptureFixture[str]) -> str:
    async def printed() -> str:
        await follower.look()
        return capsys.readouterr().out

    out: str = await wait_for(printed, timeout=30, every=0.1)
    return out


async def approve_and_resolve(handle: WorkflowHandle[Any, Any], client: Client, queue: str) -> None:
    await handle.signal(IncidentWorkflow.approve, Decision(approver="alice", reason="test"))
    await handle.result()  # closed while its worker runs: none is left open on the module's server
    await visible(client, Phase.RESOLVED, 1, queue)


async def test_a_storm_is_one_tally_line_and_each_incident_is_followed_again_after(
    console_client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    client, queue = console_client, f"console-{uuid.uuid4().hex[:8]}"
    async with worker(client, Fakes(), queue):
        handles = [await start(client, make_alert(), queue=queue) for _ in range(FOLLOW_QUERIES + 2)]
        try:
            for handle in handles:
                await wait_phase(handle, Phase.AWAITING_APPROVAL)
            await visible(client, Phase.AWAITING_APPROVAL, len(handles), queue)
            follower = PhaseFollower(client, datetime.now(UTC))
            storm = await look_until_printed(follower, capsys)
            n = len(handles)
            assert re.fullmatch(
                rf"\S+ {n} incidents moved at once, too many to follow one by one "
                rf"\(`\S*remediator incidents` lists them\); now {n} AwaitingApproval\n",
                storm,
            ), storm
            # One approved: it alone moves, so it is followed again, from the phase it is in now.
            await approve_and_resolve(handles[0], client, queue)
            after = await look_until_printed(follower, capsys)
            [line] = after.splitlines()
            assert f" {handles[0].id} (ServiceDown, demo) is Resolved: " in line, after
        finally:
            for handle in handles[1:]:
                await handle.terminate("test over")


async def test_an_incident_no_worker_answers_for_holds_up_no_other(
    console_client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    client, since = console_client, datetime.now(UTC)
    gone, live = f"console-gone-{uuid.uuid4().hex[:8]}", f"console-live-{uuid.uuid4().hex[:8]}"
    async with worker(client, Fakes(), gone):
        orphan = await start(client, make_alert(), queue=gone)
        await wait_phase(orphan, Phase.AWAITING_APPROVAL)
    async with worker(client, Fakes(), live):
        answered = await start(client, make_alert(), queue=live)
        try:
            await wait_phase(answered, Phase.AWAITING_APPROVAL)
            await visible(client, Phase.AWAITING_APPROVAL, 2, gone, live)
            follower = PhaseFollower(client, since)
            printed = await look_until_printed(follower, capsys)  # the orphan's query times out
            assert f" {answered.id} (ServiceDown, demo) is AwaitingApproval: " in printed, printed
            assert orphan.id not in printed
        finally:
            await answered.terminate("test over")
    # Its worker back and the incident moved on: followed from the phase it is in, not from the start.
    async with worker(client, Fakes(), gone):
        await approve_and_resolve(orphan, client, gone)
        printed = await look_until_printed(follower, capsys)
    assert f" {orphan.id} (ServiceDown, demo) is Resolved: " in printed and "AwaitingApproval" not in printed
    # Closed, it is listed for CLOSED_MARGIN more, then forgotten (here a margin of none: two looks).
    follower.closed_margin = timedelta(0)
    await follower.look()
    assert await follower.look() == 0 and not follower.seen
