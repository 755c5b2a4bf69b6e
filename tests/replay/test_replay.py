"""Every recorded IncidentWorkflow history must replay on today's code (determinism guard)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.incident import IncidentWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


CATALOGUE_ENDINGS = {"resolved", "rolled_back", "failed", "rejected", "cancelled_by_resolve", "escalated"}
PLAYBOOK_ENDINGS = {
    "playbook_resolved",
    "playbook_two_approvers",
    "policy_denied",
    "dry_run",
    "rate_limited_wait",
}


def endings(version: str) -> set[str]:
    return {path.stem.split("-", 1)[1] for path in HISTORIES if path.stem.startswith(f"{version}-")}


def test_histories_cover_every_ending() -> None:
    # v1: before playbooks (incidents started then replay the catalogue path); v2: playbooks and policy.
    assert endings("v1") >= CATALOGUE_ENDINGS
    assert endings("v2") >= CATALOGUE_ENDINGS | PLAYBOOK_ENDINGS
    # v3: Kubernetes checks call the registered kube_* reads (workflows/playbook_host.KUBE_READ_NAMES).
    assert "playbook_crashloop" in endings("v3")
    # v5: an incident that continued as new while waiting (workflows/continuation.py), both runs.
    assert {"continued_as_new", "continued_as_new-first"} <= endings("v5")


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_replay(path: Path) -> None:
    history = WorkflowHistory.from_json(f"replay-{path.stem}", json.loads(path.read_text()))
    replayer = Replayer(workflows=[IncidentWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name} no longer replays: {result.replay_failure}"
