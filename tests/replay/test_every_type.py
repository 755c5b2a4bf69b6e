"""Every workflow type we run has recorded histories, and every recorded history replays on today's code.

The types are the real worker's (`worker.main.WORKFLOWS`) plus the dry run of `remediator playbook
test`; a new type without a history fails here. IncidentWorkflow's and the operations' histories have
their own recorders (tests/replay/record.py, tests/operations/record.py); the rest come from
tests/replay/record_types.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from worker.main import WORKFLOWS
from worker.plugins import _workflow_name
from worker.sandbox import SANDBOX_RUNNER
from workflows.dry_run import PlaybookDryRunWorkflow

TESTS = Path(__file__).parents[1]
TYPES = {_workflow_name(cls): cls for cls in [*WORKFLOWS, PlaybookDryRunWorkflow]}
HISTORIES = sorted(
    [
        *(TESTS / "replay" / "histories").glob("*.json"),
        *(TESTS / "replay" / "histories_by_type").glob("*.json"),
        *(TESTS / "operations" / "histories").glob("*.json"),
    ]
)


def workflow_type(path: Path) -> str:
    first = json.loads(path.read_text())["events"][0]
    return str(first["workflowExecutionStartedEventAttributes"]["workflowType"]["name"])


def test_every_workflow_type_has_a_recorded_history() -> None:
    recorded = {workflow_type(path) for path in HISTORIES}
    assert set(TYPES) - recorded == set(), "record a history for each (see this module's docstring)"


@pytest.mark.parametrize(
    "path", [p for p in HISTORIES if "histories_by_type" in p.parts], ids=lambda p: p.stem
)
async def test_replay(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, json.loads(path.read_text()))
    replayer = Replayer(
        workflows=[TYPES[workflow_type(path)]],
        data_converter=pydantic_data_converter,
        workflow_runner=SANDBOX_RUNNER,
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name} no longer replays: {result.replay_failure}"
