"""Every recorded operation history must replay on today's code (determinism guard; see record.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from tests.operations.record import WORKFLOW_IDS
from worker.sandbox import SANDBOX_RUNNER
from workflows.operation import OperationTargetWorkflow, OperationWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_both_workflows_have_histories() -> None:
    assert {p.stem.split("-", 1)[1] for p in HISTORIES} >= {"operation", "target"}


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_replay(path: Path) -> None:
    workflow_id = WORKFLOW_IDS[path.stem.split("-", 1)[1]]
    history = WorkflowHistory.from_json(workflow_id, json.loads(path.read_text()))
    replayer = Replayer(
        workflows=[OperationWorkflow, OperationTargetWorkflow],
        data_converter=pydantic_data_converter,
        workflow_runner=SANDBOX_RUNNER,
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name} no longer replays: {result.replay_failure}"
