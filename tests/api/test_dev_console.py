"""What the `dev` console prints: commands that work when pasted, phase lines, one-line failures."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError

from api.cli.dev_console import LOG_FORMAT, OneLine, current_phase_start, phase_changes, remediator_command
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
