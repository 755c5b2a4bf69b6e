"""The catalogue fallback is a generated playbook that the interpreter runs (issue 11: one engine)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import yaml
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from tests.workflows.fakes import (
    CONFIG,
    PLAYBOOKS,
    Fakes,
    awaiting,
    detail,
    events,
    make_alert,
    start,
    worker,
)
from worker.playbooks import load_playbook
from workflows.actions import AnsibleAction
from workflows.alerts import Alert
from workflows.catalogue import plan_for
from workflows.catalogue_playbook import as_playbook
from workflows.decisions import DecisionRequest
from workflows.incident import CATALOGUE_PLAYBOOK_PATCH, PLAN_STEP, IncidentWorkflow
from workflows.incident_models import Continuation, IncidentState, JournalEntry
from workflows.phases import Phase
from workflows.plans import ActionOutcome, Plan, PlannedAction
from workflows.playbook import ActionStep, PinnedPlaybook, VerifyStep
from workflows.policy import Policy, Usage, Window
from workflows.templating import render

AUTO = CONFIG.model_copy(update={"auto_approve": True})


def generated(alert: Alert) -> PinnedPlaybook:
    """The playbook the fallback runs for `alert`, with the fakes' diagnosis."""
    plan = plan_for(alert, Fakes().diagnosis)
    assert plan is not None
    return as_playbook(plan, alert, CONFIG.verify_timeout)


def test_the_generated_playbook_loads_and_validates_as_a_shipped_one(tmp_path: Path) -> None:
    alert = make_alert()
    pinned = generated(alert)
    written = tmp_path / "catalogue.yaml"
    written.write_text(yaml.safe_dump(pinned.playbook.model_dump(mode="json")))

    loaded = load_playbook(written, PLAYBOOKS / "ansible")  # the shipped playbooks' loader and rules
    assert loaded.playbook == pinned.playbook
    assert [(s.id, s.kind) for s in loaded.playbook.steps] == [("restart", "action"), ("healthy", "verify")]
    assert loaded.playbook.match.matches(alert.labels)


def test_alert_text_stays_literal_in_the_generated_playbook() -> None:
    # A value holding template syntax is the value itself, never a reference the interpreter resolves.
    action = AnsibleAction(
        name="restart-service", playbook="restart_service.yml", extravars={"x": "${params.a}"}
    )
    plan = Plan(summary="s", actions=[PlannedAction(step="restart", action=action)])
    alert = make_alert().model_copy(update={"annotations": {"probe_url": "http://h/$${x}${y}"}})
    act, verify = as_playbook(plan, alert, timedelta(minutes=5)).playbook.steps
    assert isinstance(act, ActionStep) and isinstance(verify, VerifyStep)

    assert render(act.action, {}) == action.model_dump(mode="json")
    assert render(verify.check, {}) == {"type": "health", "probe_url": "http://h/$${x}${y}"}


async def test_the_fallback_runs_the_same_calls_as_its_playbook_pinned(time_env: WorkflowEnvironment) -> None:
    alert = make_alert()
    fallback, pinned = Fakes(), Fakes()
    playbook = generated(alert)
    async with worker(time_env.client, fallback, "catalogue-fallback"):
        state: IncidentState = await (
            await start(time_env.client, alert, AUTO, queue="catalogue-fallback")
        ).result()
    async with worker(time_env.client, pinned, "catalogue-pinned"):
        twin = make_alert()  # the same labels under another fingerprint
        as_yaml: IncidentState = await (
            await start(time_env.client, twin, AUTO, playbook, queue="catalogue-pinned")
        ).result()

    assert state.phase == as_yaml.phase == Phase.RESOLVED
    assert fallback.calls == pinned.calls
    assert fallback.calls[-4:] == ["ansible.preview", "ansible.snapshot", "ansible.apply", "verify"]
    # The interpreter ran it: the generated playbook is named, with its hash, as a pinned one is.
    assert detail(state, "playbook") == f"catalogue (sha256 {playbook.sha256[:12]}, workflows/catalogue.py)"
    assert state.playbook is None and state.plan is not None
    assert state.plan.summary.startswith("restart service 'demo'")
    assert events(state)[-1] == "verified healthy"


async def test_a_policy_wait_hands_the_plan_over_before_anyone_is_asked(
    time_env: WorkflowEnvironment,
) -> None:
    now = await time_env.get_current_time()  # server time runs ahead of the clock: timers skip
    opens = (now + timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
    window = Window(name="soon", start=opens.time(), end=(opens + timedelta(hours=1)).time())
    fakes = Fakes()
    async with worker(time_env.client, fakes, "catalogue-wait"):
        handle = await start(
            time_env.client, make_alert(), policy=Policy(maintenance_windows=[window]), queue="catalogue-wait"
        )
        state: IncidentState = await handle.result()

    assert state.phase == Phase.ESCALATED
    assert state.timeline[-1].event == "policy asks to wait"
    assert state.timeline[-1].detail == f"until {window.next_opening(now):%Y-%m-%d %H:%M}Z"
    assert "awaiting approval" not in events(state) and fakes.applied() == []
    history = await handle.fetch_history()
    markers = [
        e.marker_recorded_event_attributes.details["patch-data"].payloads[0].data
        for e in history.events
        if e.HasField("marker_recorded_event_attributes")
    ]
    assert any(CATALOGUE_PLAYBOOK_PATCH.encode() in m for m in markers)


async def test_a_run_continued_from_the_old_engine_carries_on_with_it(time_env: WorkflowEnvironment) -> None:
    # It waited for the old engine's approval of the whole plan when it continued as new: its journal
    # holds that engine's calls, so it finishes on that engine, and nothing runs twice.
    fakes = Fakes()
    alert = make_alert()
    state = awaiting(alert, fakes.diagnosis)
    preview = ActionOutcome(ok=True, summary="preview done").model_dump(mode="json")
    carried = Continuation(
        state=state,
        journal=[
            JournalEntry(kind="usage", step="demo", output=Usage().model_dump(mode="json")),
            JournalEntry(kind="preview", step="restart", output=preview),
        ],
        approval_step=PLAN_STEP,
        asked_at=await time_env.get_current_time(),
        phase_before=Phase.DIAGNOSING,
    )
    async with worker(time_env.client, fakes, "catalogue-continued"):
        handle = await start(time_env.client, alert, queue="catalogue-continued", continued=carried)
        for _ in range(200):  # refused until the resumed approval is open again
            try:
                await handle.execute_update(
                    IncidentWorkflow.decide, DecisionRequest(approve=True, approver="alice")
                )
                break
            except WorkflowUpdateFailedError:
                await asyncio.sleep(0.05)
        final: IncidentState = await handle.result()

    assert final.phase == Phase.RESOLVED
    assert fakes.calls == ["ansible.snapshot", "ansible.apply", "verify"]
    assert "verification passed" in events(final) and "playbook" not in events(final)
