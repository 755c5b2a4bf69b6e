"""Every recorded IncidentWorkflow history must replay on today's code (determinism guard)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from worker.sandbox import SANDBOX_RUNNER
from workflows.activity_names import LLM_POLICY
from workflows.incident import CATALOGUE_PLAYBOOK_PATCH, LLM_CONFIGURED_PATCH, IncidentWorkflow

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
    # v3: Kubernetes checks call the registered kube_* reads (workflows/runtime.KUBE_READ_NAMES).
    assert "playbook_crashloop" in endings("v3")
    # v5: an incident that continued as new while waiting (workflows/continuation.py), both runs.
    assert {"continued_as_new", "continued_as_new-first"} <= endings("v5")
    # v4: no model configured (IncidentConfig.llm false): the heuristic stands without an llm.policy.
    assert "playbook_heuristic_only" in endings("v4")
    # v6: the catalogue plan runs as a generated playbook on the interpreter (CATALOGUE_PLAYBOOK_PATCH).
    assert endings("v6") >= CATALOGUE_ENDINGS | {"policy_wait"}


def recorded(name: str) -> tuple[list[str], list[bytes]]:
    """(activity types scheduled, patch marker details) of one recorded history."""
    history = WorkflowHistory.from_json(
        name, json.loads((Path(__file__).parent / "histories" / name).read_text())
    )
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    markers = [
        p.data
        for e in history.events
        if e.HasField("marker_recorded_event_attributes")
        for p in e.marker_recorded_event_attributes.details["patch-data"].payloads
    ]
    return scheduled, markers


def test_no_llm_policy_activity_without_a_model() -> None:
    scheduled, markers = recorded("v4-playbook_heuristic_only.json")
    assert LLM_POLICY not in scheduled and "ansible.preview" in scheduled
    assert any(LLM_CONFIGURED_PATCH.encode() in m for m in markers)
    # The same playbook recorded before the patch did ask the worker for its LLM policy.
    assert LLM_POLICY in recorded("v2-playbook_resolved.json")[0]


@pytest.mark.parametrize("ending", sorted(CATALOGUE_ENDINGS))
def test_catalogue_histories_replay_both_engines(ending: str) -> None:
    # v6 ran the plan as a generated playbook (the patch's marker); v2 ran the engine kept beside it
    # for incidents started before. test_replay replays both.
    patch = CATALOGUE_PLAYBOOK_PATCH.encode()
    assert any(patch in m for m in recorded(f"v6-{ending}.json")[1])
    assert not any(patch in m for m in recorded(f"v2-{ending}.json")[1])


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_replay(path: Path) -> None:
    history = WorkflowHistory.from_json(f"replay-{path.stem}", json.loads(path.read_text()))
    replayer = Replayer(
        workflows=[IncidentWorkflow], data_converter=pydantic_data_converter, workflow_runner=SANDBOX_RUNNER
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name} no longer replays: {result.replay_failure}"
