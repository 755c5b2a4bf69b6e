"""An incident that waits for approval while its alert re-fires continues as new before its history
nears Temporal's limits, and keeps its approvals, timeline, re-fire count and pinned playbook/policy.

The threshold is IncidentConfig.continue_after_events, set low here; the re-fires are full alerts with
a large annotation and slim notices (`Alert.notice`), as the API now sends them.

The tests whose re-fires race the continue-as-new run on the real dev server: on the time-skipping
server that race now and then left the run that continued open with a task no worker takes, and
with it a clock that no longer skips (seen under load; tests/conftest.py::time_env).
"""

from __future__ import annotations

from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from tests.workflows import fakes as wf
from tests.workflows.fakes import CONFIG, Fakes, make_alert, shipped, start, wait_phase, worker
from workflows.alerts import Alert
from workflows.decisions import Decision
from workflows.diagnosis import Diagnosis
from workflows.incident import IncidentWorkflow
from workflows.incident_models import Continuation, IncidentInput, IncidentState, JournalEntry
from workflows.phases import Phase
from workflows.playbook import PinnedPlaybook, Playbook
from workflows.policy import Policy

QUEUE = "incident-continue"
TWO_APPROVERS = Policy.model_validate({"environments": {"prod": {"approvers_required": 2}}})
LOW = CONFIG.model_copy(update={"continue_after_events": 80})


async def last_event(handle: WorkflowHandle[Any, Any]) -> EventType.ValueType:
    history = await handle.fetch_history()
    return history.events[-1].event_type


async def refire(handle: WorkflowHandle[Any, Any], alert: Alert, times: int) -> None:
    big = alert.model_copy(update={"annotations": {**alert.annotations, "description": "x" * 50_000}})
    for i in range(times):
        await handle.signal(IncidentWorkflow.alert, big.notice() if i % 2 else big)


async def approved_then_refired(
    client: Client, alert: Alert, queue: str = QUEUE
) -> tuple[WorkflowHandle[Any, Any], WorkflowHandle[Any, Any], IncidentState]:
    """ServiceDown with two approvers: alice approves, then 40 large re-fires continue it as new.
    Returns its first run, a handle on whichever run is current, and the state once all counted."""
    first = await start(client, alert, LOW, shipped("service_down.yaml"), TWO_APPROVERS, queue)
    latest = client.get_workflow_handle(alert.workflow_id, result_type=IncidentState)  # any run
    await wait_phase(latest, Phase.AWAITING_APPROVAL)
    await latest.signal(IncidentWorkflow.approve, Decision(approver="alice", reason="before"))
    await refire(latest, alert, 40)
    state = await wf.wait_state(latest, lambda s: s.alert_updates == 41, "counted every re-fire")
    return first, latest, state


async def test_refires_continue_the_incident_as_new_keeping_approvals_and_timeline(
    dev_client: Client,
) -> None:
    fakes = Fakes(reads={"probe.http": [{"ok": False}, {"ok": True, "status": 200}]})
    alert = make_alert(environment="prod")
    async with worker(dev_client, fakes, QUEUE):
        first, latest, state = await approved_then_refired(dev_client, alert)
        run_id = first.result_run_id
        first_run = dev_client.get_workflow_handle(alert.workflow_id, run_id=run_id)
        assert await last_event(first_run) == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
        assert (await latest.describe()).run_id != run_id
        assert state.phase == Phase.AWAITING_APPROVAL
        assert [a.approver for a in state.approvals] == ["alice"], "the approval given before is kept"
        assert wf.events(state).count("awaiting approval") == 1, "asked once, not again after continuing"
        assert wf.events(state).count("alert re-fired") == 40 and "approval by alice" in wf.events(state)
        await latest.signal(IncidentWorkflow.approve, Decision(approver="alice", reason="again"))
        await latest.signal(IncidentWorkflow.approve, Decision(approver="bob", reason="after"))
        final: IncidentState = await latest.result()
    assert final.phase == Phase.RESOLVED, wf.events(final)[-5:]
    assert final.playbook is not None and final.playbook.name == "ServiceDown"
    assert [(a.approver, a.reason) for a in final.approvals] == [("alice", "before"), ("bob", "after")]
    assert "ignored approval" in wf.events(final), "alice's second approval did not count twice"
    # Nothing ran twice: one probe before approval (the continued run replayed it), one preview, one apply.
    assert fakes.calls.count("ansible.preview") == 1 and fakes.applied() == ["restart"]
    assert fakes.calls.count("probe.http") == 2  # the check before approval, and the verify after
    assert wf.events(final).count("playbook") == 1 and final.alert_updates == 41


async def test_a_decision_that_reaches_the_continued_run_first_is_held_for_its_wait(
    dev_client: Client,
) -> None:
    # A signal sent while a run continues as new can be the next run's first event, before that run
    # has replayed its way back to the approval it waits for. Starting a run with the continued input
    # and the approval as its start signal puts the decision exactly there.
    fakes = Fakes(reads={"probe.http": [{"ok": False}, {"ok": True, "status": 200}]})
    alert = make_alert(environment="prod")
    async with worker(dev_client, fakes, QUEUE):
        _, latest, _ = await approved_then_refired(dev_client, alert)
        started = (await latest.fetch_history()).events[0].workflow_execution_started_event_attributes
        [continued] = await dev_client.data_converter.decode(started.input.payloads, [IncidentInput])
        assert continued.continued is not None and continued.continued.asked_at is not None
        early = await dev_client.start_workflow(
            IncidentWorkflow.run,
            continued,
            id=f"{alert.workflow_id}-early",
            task_queue=QUEUE,
            start_signal="approve",
            start_signal_args=[Decision(approver="bob", reason="early")],
        )
        final: IncidentState = await early.result()
        await latest.terminate("test over")
    assert final.phase == Phase.RESOLVED, wf.events(final)[-5:]
    assert [(a.approver, a.reason) for a in final.approvals] == [("alice", "before"), ("bob", "early")]
    assert "approval by bob held" in wf.events(final) and "ignored approval" not in wf.events(final)
    assert fakes.applied() == ["restart"]


async def test_a_decision_wins_over_continuing(time_env: WorkflowEnvironment) -> None:
    # Past the threshold already, the approval that wakes the wait is acted on, not carried over.
    fakes = Fakes(reads={"probe.http": [{"ok": False}, {"ok": True, "status": 200}]})
    alert = make_alert(environment="prod")
    config = CONFIG.model_copy(update={"continue_after_events": 1})
    async with worker(time_env.client, fakes, QUEUE):
        handle = await start(time_env.client, alert, config, shipped("service_down.yaml"), queue=QUEUE)
        await wait_phase(handle, Phase.AWAITING_APPROVAL)
        await handle.signal(IncidentWorkflow.approve, Decision(approver="alice"))
        final: IncidentState = await handle.result()
    assert final.phase == Phase.RESOLVED
    assert (await handle.describe()).run_id == handle.result_run_id, "one run only"
    assert await last_event(handle) == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED


async def test_slim_notices_resolve_and_a_foreign_digest_is_refused(time_env: WorkflowEnvironment) -> None:
    fakes = Fakes(reads={"probe.http": [{"ok": False}]})
    alert = make_alert(environment="prod")
    other = make_alert(environment="prod", service="payments")
    async with worker(time_env.client, fakes, QUEUE):
        handle = await start(time_env.client, alert, playbook=shipped("service_down.yaml"), queue=QUEUE)
        await wait_phase(handle, Phase.AWAITING_APPROVAL)
        foreign = other.model_copy(update={"fingerprint": alert.fingerprint, "status": "resolved"})
        await handle.signal(IncidentWorkflow.alert, foreign.notice())
        await handle.signal(IncidentWorkflow.alert, alert.model_copy(update={"status": "resolved"}).notice())
        final: IncidentState = await handle.result()
    refused = wf.detail(final, "refused resolved notification")
    assert refused == "its labels differ from this incident's (the labels' digest); not applied"
    assert final.phase == Phase.CANCELLED and final.resolved_at is not None
    assert final.alert == alert, "the incident keeps the alert it started with, annotations included"


def act(step: str) -> dict[str, Any]:
    action = {"executor": "ansible", "name": f"restart-{step}", "playbook": "restart_service.yml"}
    return {"id": step, "kind": "action", "action": {**action, "limit": "web-1"}}


MID_APPROVAL = PinnedPlaybook(
    name="MidApproval",
    sha256="0" * 64,
    playbook=Playbook.model_validate(
        {
            "name": "MidApproval",
            "match": {"matchers": ['alertname="ServiceDown"']},
            "steps": [
                act("first"),
                {"id": "gate", "kind": "approval", "approvers": 2},
                act("second"),
                {
                    "id": "healthy",
                    "kind": "verify",
                    "check": {"type": "probe", "url": "http://demo/health"},
                    "until": {"equals": ["${steps.healthy.ok}", True]},
                    "interval": "1s",
                    "timeout": "3s",
                },
            ],
        }
    ),
)


async def test_a_continued_run_neither_repeats_an_apply_nor_loses_its_rollback(
    dev_client: Client,
) -> None:
    # `first` ran before the approval step; after continuing as new it is not applied again, the phase
    # goes back to Executing once approved, and the failed verify still rolls both actions back.
    fakes = Fakes(reads={"probe.http": [{"ok": False}]})
    alert = make_alert()
    async with worker(dev_client, fakes, QUEUE):
        first = await start(dev_client, alert, LOW, MID_APPROVAL, queue=QUEUE)
        latest = dev_client.get_workflow_handle(alert.workflow_id, result_type=IncidentState)
        await wait_phase(latest, Phase.AWAITING_APPROVAL)
        await latest.signal(IncidentWorkflow.approve, Decision(approver="alice"))
        await refire(latest, alert, 30)
        await wf.wait_state(latest, lambda s: s.alert_updates == 31, "counted every re-fire")
        assert (await latest.describe()).run_id != first.result_run_id
        await latest.signal(IncidentWorkflow.approve, Decision(approver="bob"))
        final = await wf.settled(latest, seconds=60)  # through the verify polls, in real time
    assert final.phase == Phase.ROLLED_BACK, wf.events(final)[-5:]
    assert fakes.applied() == ["first", "second"], "nothing applied twice"
    assert [s for s in fakes.steps if ".rollback:" in s] == [
        "ansible.rollback:second",
        "ansible.rollback:first",
    ]
    assert "approved; carrying on" in wf.events(final)
    carried_on = next(e for e in final.timeline if e.event == "approved; carrying on")
    assert carried_on.phase == Phase.EXECUTING and carried_on.detail == "alice, bob"


async def test_a_continued_run_that_takes_another_path_escalates(time_env: WorkflowEnvironment) -> None:
    # A journal that does not fit the run (here: it starts with a preview where the playbook probes)
    # is never guessed at: nothing runs, and a human takes over with the reason.
    fakes = Fakes()
    alert = make_alert()
    state = wf.awaiting(
        alert, Diagnosis(category="dependency_down", confidence=0.8, explanation="probe refused")
    )
    carried = Continuation(state=state, journal=[JournalEntry(kind="preview", step="restart")])
    async with worker(time_env.client, fakes, QUEUE):
        handle = await start(
            time_env.client, alert, playbook=shipped("service_down.yaml"), queue=QUEUE, continued=carried
        )
        final: IncidentState = await handle.result()
    assert final.phase == Phase.ESCALATED
    assert "asked for check 'probe' where it had preview 'restart'" in wf.detail(final, "continued incident")
    assert fakes.calls == [], "no activity ran: not the probe, not a gather or a diagnosis"
