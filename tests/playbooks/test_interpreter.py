"""The interpreter on the time-skipping server: a tiny host workflow, activities faked by name."""

from __future__ import annotations

import asyncio
from datetime import time, timedelta
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from tests.playbooks.builders import alert, ansible, pin, playbook, probe_verify, scale
from tests.playbooks.host import Fakes, HostInput, HostReport, PlaybookTestHost, Run, detail, events, find
from worker.sandbox import SANDBOX_RUNNER
from workflows.decisions import Decision
from workflows.diagnosis import Diagnosis
from workflows.evidence import Evidence
from workflows.phases import Phase
from workflows.playbook_host import Cause
from workflows.policy import Policy, Usage, Window

DEV = {"environment": "dev", "service": "web"}
PROD = {"environment": "prod", "service": "web"}


async def run_to_end(time_env: WorkflowEnvironment, fakes: Fakes, inp: HostInput) -> HostReport:
    run = Run(time_env.client, fakes)
    async with run.worker():
        handle = await run.start(inp)
        return await handle.result()


async def restart_under(
    time_env: WorkflowEnvironment, policy: Policy, **inp: Any
) -> tuple[HostReport, Fakes]:
    """The one-action playbook RESTART in dev under `policy`, run to its end."""
    fakes = Fakes()
    report = await run_to_end(
        time_env, fakes, HostInput(pinned=RESTART, alert=alert(**DEV), policy=policy, **inp)
    )
    return report, fakes


async def approved(
    time_env: WorkflowEnvironment, inp: HostInput, step: str, *people: str
) -> tuple[HostReport, Fakes]:
    """Run until the host waits for approval of `step`, approve as each of `people`, run to the end."""
    fakes = Fakes()
    run = Run(time_env.client, fakes)
    async with run.worker():
        handle = await run.start(inp)
        await waiting_for(handle, step)
        for person in people:
            await handle.signal(PlaybookTestHost.approve, Decision(approver=person))
        return await handle.result(), fakes


async def waiting_for(handle: WorkflowHandle[Any, HostReport], step: str) -> None:
    for _ in range(200):
        if await handle.query(PlaybookTestHost.waiting_for) == step:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the host never waited for approval of {step}")


# With a verify step: a change auto-approves only when the playbook can verify the fix.
RESTART = pin(playbook([ansible("restart"), probe_verify()]))
CHECK_DECIDE_ACT = playbook(
    [
        {"id": "probe", "kind": "check", "check": {"type": "probe", "url": "http://svc/health"}},
        {
            "id": "down",
            "kind": "decide",
            "when": {"equals": ["${steps.probe.ok}", False]},
            "else": [{"id": "healed", "kind": "stop", "outcome": "resolved", "reason": "answers again"}],
        },
        ansible("restart", extravars={"service": "${params.service}"}),
        probe_verify(),
    ],
    params={"service": {"label": "service", "pattern": "[a-z]+"}},
)


async def test_check_decide_act_verify(time_env: WorkflowEnvironment) -> None:
    # Down at first; healthy on the third poll of the verify step.
    fakes = Fakes(probes=[False, False, False, True])
    report = await run_to_end(time_env, fakes, HostInput(pinned=pin(CHECK_DECIDE_ACT), alert=alert(**DEV)))

    assert report.result.outcome == "resolved"
    assert fakes.calls == [
        "probe.http",
        "ansible.preview:restart",
        "ansible.snapshot:restart",
        "ansible.apply:restart",
        "probe.http",
        "probe.http",
        "probe.http",
    ]
    # The decision is recorded with the values it compared; the policy verdict with its reason.
    assert detail(report, "decide down: then") == "equals(${steps.probe.ok}=false, false) -> true"
    assert (
        detail(report, "policy for restart") == "allowed: dev auto-approves change action 'restart-service'"
    )
    assert "attempt 3" in detail(report, "verify healthy passed")
    assert report.phases == [Phase.EXECUTING, Phase.VERIFYING]
    assert report.result.outputs["restart"]["summary"] == "apply restart-service"
    assert [(r.step, r.status) for r in report.result.path] == [
        ("probe", "ok"),
        ("down", "ok"),
        ("restart", "ok"),
        ("healthy", "ok"),
    ]


async def test_healthy_at_first_check_stops_without_acting(time_env: WorkflowEnvironment) -> None:
    fakes = Fakes(probes=[True])
    report = await run_to_end(time_env, fakes, HostInput(pinned=pin(CHECK_DECIDE_ACT), alert=alert(**DEV)))
    assert report.result.outcome == "resolved"
    assert report.result.reason == "healed: answers again"
    assert fakes.applied() == []


async def test_failed_verify_compensates_in_reverse(time_env: WorkflowEnvironment) -> None:
    book = playbook(
        [
            ansible("first"),
            scale("second"),
            {
                "id": "scale_back",
                "kind": "rollback",
                "undo": "second",
                "action": {
                    "executor": "kubernetes",
                    "name": "scale-back",
                    "operation": "scale",
                    "namespace": "shop",
                    "args": {"deployment": "web", "replicas": 2},
                },
            },
            probe_verify(timeout="2m", interval="30s"),
        ]
    )
    fakes = Fakes(probes=[False])
    report = await run_to_end(time_env, fakes, HostInput(pinned=pin(book), alert=alert(**DEV)))

    assert report.result.outcome == "rolled_back"
    # The explicit rollback step runs for `second` (as an apply of its own action), then the
    # executor's own rollback undoes `first`: newest first.
    assert find(fakes.calls, "kubernetes.apply") == ["kubernetes.apply:second", "kubernetes.apply:scale_back"]
    assert fakes.calls[-1] == "ansible.rollback:first"
    assert fakes.calls.index("kubernetes.apply:scale_back") < fakes.calls.index("ansible.rollback:first")
    polls = fakes.calls.count("probe.http")
    assert polls == 5  # at 0, 30, 60, 90 and 120 seconds: durable timers, skipped in server time
    verify_failed = next(e for e in report.timeline if e.event == "verify healthy failed")
    verify_started = next(e for e in report.timeline if e.event == "phase Verifying")
    assert verify_failed.at - verify_started.at >= timedelta(minutes=2)


async def test_failed_action_is_compensated_and_nothing_after_it_runs(time_env: WorkflowEnvironment) -> None:
    book = playbook([ansible("first"), ansible("second"), ansible("third"), probe_verify()])
    fakes = Fakes(failing={"second"})
    report = await run_to_end(time_env, fakes, HostInput(pinned=pin(book), alert=alert(**DEV)))

    assert report.result.outcome == "failed"
    assert "second broke" in report.result.reason
    assert fakes.applied() == ["first", "second"]
    assert find(fakes.calls, "ansible.rollback") == ["ansible.rollback:second", "ansible.rollback:first"]
    assert "probe.http" not in fakes.calls


async def test_prod_change_waits_for_a_human_and_runs_once_approved(time_env: WorkflowEnvironment) -> None:
    fakes = Fakes(probes=[False, True])
    run = Run(time_env.client, fakes)
    async with run.worker():
        handle = await run.start(HostInput(pinned=pin(CHECK_DECIDE_ACT), alert=alert(**PROD)))
        await waiting_for(handle, "restart")
        assert fakes.applied() == []
        await handle.signal(PlaybookTestHost.approve, Decision(approver="alice"))
        report = await handle.result()

    assert report.result.outcome == "resolved"
    request = report.requests[0]
    assert (request.approvers_required, request.reason) == (1, "prod needs approval for change actions")
    assert "preview restart-service" in request.summary  # approvers see the preview
    assert detail(report, "approved restart") == "alice"


async def test_rejection_stops_and_compensates_what_ran(time_env: WorkflowEnvironment) -> None:
    book = playbook([ansible("dev_like", risk="read"), ansible("restart"), probe_verify()])
    fakes = Fakes()
    run = Run(time_env.client, fakes)
    async with run.worker():
        handle = await run.start(HostInput(pinned=pin(book), alert=alert(**PROD)))
        await waiting_for(handle, "restart")
        await handle.signal(PlaybookTestHost.reject, Decision(approver="bob", reason="not now"))
        report = await handle.result()

    assert report.result.outcome == "rejected"
    assert report.result.reason == "restart rejected: not now"
    assert fakes.applied() == ["dev_like"]
    assert find(fakes.calls, "ansible.rollback") == ["ansible.rollback:dev_like"]


DRAIN = {
    "id": "drain",
    "kind": "action",
    "action": {
        "executor": "kubernetes",
        "name": "drain-node",
        "operation": "drain",
        "args": {"node": "node-1"},
    },
}


async def test_destructive_needs_two_distinct_approvers_even_in_dev(time_env: WorkflowEnvironment) -> None:
    fakes = Fakes()
    run = Run(time_env.client, fakes)
    async with run.worker():
        handle = await run.start(HostInput(pinned=pin(playbook([DRAIN])), alert=alert(**DEV)))
        await waiting_for(handle, "drain")
        await handle.signal(PlaybookTestHost.approve, Decision(approver="alice"))
        await handle.signal(PlaybookTestHost.approve, Decision(approver="alice"))  # the same person again
        await asyncio.sleep(0.2)
        assert await handle.query(PlaybookTestHost.waiting_for) == "drain"
        assert fakes.applied() == []
        await handle.signal(PlaybookTestHost.approve, Decision(approver="bob"))
        report = await handle.result()

    assert report.result.outcome == "resolved"
    assert report.requests[0].approvers_required == 2
    assert "destructive actions need 2 distinct approvers" in report.requests[0].reason
    assert detail(report, "approved drain") == "alice, bob"
    assert fakes.applied() == ["drain"]


async def test_explicit_approval_covers_later_actions_but_only_for_eligible_people(
    time_env: WorkflowEnvironment,
) -> None:
    policy = Policy(groups={"sre": ["alice", "bob"]}, approvers={"destructive": ["sre"]})
    book = playbook([{"id": "ok_to_drain", "kind": "approval", "approvers": 2}, DRAIN])
    fakes = Fakes()
    run = Run(time_env.client, fakes)
    async with run.worker():
        handle = await run.start(HostInput(pinned=pin(book), alert=alert(**PROD), policy=policy))
        await waiting_for(handle, "ok_to_drain")
        await handle.signal(PlaybookTestHost.approve, Decision(approver="alice"))
        await handle.signal(PlaybookTestHost.approve, Decision(approver="mallory"))
        # Alice and Mallory approved the step; for the drain only sre members count, so one more.
        await waiting_for(handle, "drain")
        await handle.signal(PlaybookTestHost.approve, Decision(approver="mallory"))
        await handle.signal(PlaybookTestHost.approve, Decision(approver="bob"))
        report = await handle.result()

    assert report.result.outcome == "resolved"
    drain_request = report.requests[1]
    assert drain_request.eligible == ["alice", "bob"]
    assert drain_request.approved_by == ["alice"]
    assert detail(report, "approved drain") == "alice, bob"


async def test_covering_approval_is_not_asked_twice(time_env: WorkflowEnvironment) -> None:
    book = playbook([{"id": "go", "kind": "approval", "approvers": 2}, DRAIN])
    report, fakes = await approved(
        time_env, HostInput(pinned=pin(book), alert=alert(**PROD)), "go", "alice", "bob"
    )

    assert [r.step for r in report.requests] == ["go"]
    assert detail(report, "approval for drain") == "covered by earlier approval of alice, bob"
    assert fakes.applied() == ["drain"]


async def test_action_outside_its_window_waits_for_it(time_env: WorkflowEnvironment) -> None:
    # A window of one hour that opens three hours from now (in server time) every day.
    now = await time_env.get_current_time()  # server time runs ahead of the clock: timers skip
    opens = (now + timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
    window = Window(name="soon", start=opens.time(), end=(opens + timedelta(hours=1)).time())
    report, _ = await restart_under(time_env, Policy(maintenance_windows=[window]))

    assert report.result.outcome == "resolved"
    applied = next(e for e in report.timeline if e.event == "step restart applied")
    assert window.is_open(applied.at)
    assert "outside maintenance window soon" in detail(report, "policy for restart")
    assert sum(1 for e in events(report) if e == "policy for restart") == 2  # asked again after the wait


async def test_window_with_override_asks_a_human_instead(time_env: WorkflowEnvironment) -> None:
    now = await time_env.get_current_time()  # server time runs ahead of the clock: timers skip
    start = (now + timedelta(hours=3)).time().replace(second=0, microsecond=0)
    window = Window(
        name="nights", start=start, end=time((start.hour + 1) % 24, start.minute), outside="override"
    )
    inp = HostInput(pinned=RESTART, alert=alert(**DEV), policy=Policy(maintenance_windows=[window]))
    report, _ = await approved(time_env, inp, "restart", "carol")
    assert report.result.outcome == "resolved"
    assert "an approver may override" in report.requests[0].reason


async def test_rate_limit_waits_until_a_slot_frees_with_fresh_counts(time_env: WorkflowEnvironment) -> None:
    policy = Policy(limits={"actions_per_service_per_hour": 2})
    oldest = await time_env.get_current_time() - timedelta(minutes=40)
    busy = Usage(service_actions_last_hour=2, oldest_service_action_at=oldest)
    report, _ = await restart_under(time_env, policy, usages=[busy, Usage(service_actions_last_hour=1)])
    assert report.result.outcome == "resolved"
    assert "reach the limit of 2" in detail(report, "policy for restart")
    applied = next(e for e in report.timeline if e.event == "step restart applied")
    assert applied.at >= oldest + timedelta(hours=1)


async def test_rate_limit_beyond_max_wait_escalates(time_env: WorkflowEnvironment) -> None:
    policy = Policy(limits={"concurrent_remediations": 1, "recheck": "10m"}, max_wait="35m")
    report, fakes = await restart_under(time_env, policy, usages=[Usage(concurrent_remediations=1)])
    assert report.result.outcome == "escalated"
    assert "would wait past max_wait" in report.result.reason
    # Asked now, +10m, +20m and +30m; the wait to +40m is past max_wait.
    assert sum(1 for e in events(report) if e == "policy for restart") == 4
    assert fakes.applied() == []


async def test_a_wait_past_max_wait_escalates_before_anyone_is_asked(time_env: WorkflowEnvironment) -> None:
    now = await time_env.get_current_time()  # server time runs ahead of the clock: timers skip
    opens = (now + timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
    window = Window(name="later", start=opens.time(), end=(opens + timedelta(hours=1)).time())
    # dev asks a human for changes here: without the early check the approval would come first.
    policy = Policy(
        environments={"dev": {}}, maintenance_windows=[window], max_wait="1h", default_environment="dev"
    )
    report, fakes = await restart_under(time_env, policy)
    assert report.result.outcome == "escalated" and report.requests == []
    assert "would wait past max_wait" in report.result.reason
    assert report.result.cause == Cause(
        kind="wait", step="restart", detail=f"until {window.next_opening(now):%Y-%m-%d %H:%M}Z"
    )
    assert fakes.applied() == []


async def test_denied_service_escalates_before_any_preview(time_env: WorkflowEnvironment) -> None:
    report, fakes = await restart_under(time_env, Policy(services={"deny": ["web*"]}))
    assert report.result.outcome == "escalated"
    assert report.result.reason == "policy refused restart: service 'web' is denied (web*)"
    assert fakes.calls == []


async def test_confidence_below_threshold_needs_a_human(time_env: WorkflowEnvironment) -> None:
    policy = Policy(
        environments={
            "prod": {
                "auto_approve": [{"risks": ["change"], "actions": ["restart-*"], "min_confidence": 0.85}]
            }
        }
    )
    confident = Diagnosis(category="unknown", confidence=0.9, explanation="sure")
    report = await run_to_end(
        time_env,
        Fakes(),
        HostInput(
            pinned=RESTART,
            alert=alert(**PROD),
            policy=policy,
            diagnosis=confident,
        ),
    )
    assert report.result.outcome == "resolved" and report.requests == []

    unsure = Diagnosis(category="unknown", confidence=0.7, explanation="maybe")
    inp = HostInput(pinned=RESTART, alert=alert(**PROD), policy=policy, diagnosis=unsure)
    report, _ = await approved(time_env, inp, "restart", "dave")
    assert "confidence 0.70 is below the 0.85" in report.requests[0].reason


async def test_dry_run_previews_and_records_but_applies_nothing(time_env: WorkflowEnvironment) -> None:
    fakes = Fakes(probes=[False])
    book = playbook(
        [
            {"id": "probe", "kind": "check", "check": {"type": "probe", "url": "http://svc/health"}},
            {"id": "go", "kind": "approval"},
            ansible("restart"),
            DRAIN,
            probe_verify(),
        ]
    )
    report = await run_to_end(
        time_env, fakes, HostInput(pinned=pin(book), alert=alert(**PROD), policy=Policy(dry_run=True))
    )

    assert report.result.dry_run and report.result.outcome == "resolved"
    assert fakes.applied() == [] and report.requests == []
    assert find(fakes.calls, "kubernetes.preview") == ["kubernetes.preview:drain"]
    assert detail(report, "policy for drain").startswith("dry-run, needs 2 approver(s)")
    assert [r.status for r in report.result.path] == ["ok", "dry-run", "dry-run", "dry-run", "dry-run"]


async def test_dry_run_of_one_environment_applies_nothing_there(time_env: WorkflowEnvironment) -> None:
    shadow = Policy(environments={"dev": {"auto_approve": ["change"], "dry_run": True}, "prod": {}})
    report, fakes = await restart_under(time_env, shadow)
    assert report.result.dry_run and fakes.applied() == []
    assert find(fakes.calls, "ansible.preview") == ["ansible.preview:restart"]


async def test_resolved_alert_cancels_the_pending_fix(time_env: WorkflowEnvironment) -> None:
    fakes = Fakes(probes=[False])
    run = Run(time_env.client, fakes)
    async with run.worker():
        handle = await run.start(HostInput(pinned=pin(CHECK_DECIDE_ACT), alert=alert(**PROD)))
        await waiting_for(handle, "restart")
        await handle.signal(PlaybookTestHost.resolve)
        report = await handle.result()
    assert report.result.outcome == "cancelled"
    assert fakes.applied() == []


async def test_missing_label_fails_at_run_time_naming_it(time_env: WorkflowEnvironment) -> None:
    book = playbook([ansible("restart", extravars={"host": "${alert.labels.host}"})])
    fakes = Fakes()
    report = await run_to_end(time_env, fakes, HostInput(pinned=pin(book), alert=alert(**DEV)))
    assert report.result.outcome == "failed"
    assert "step restart: ${alert.labels.host}: alert.labels has no 'host'" in report.result.reason
    assert fakes.calls == []


async def test_missing_param_label_fails_before_any_step(time_env: WorkflowEnvironment) -> None:
    fakes = Fakes()
    report = await run_to_end(
        time_env, fakes, HostInput(pinned=pin(CHECK_DECIDE_ACT), alert=alert(environment="dev"))
    )
    assert report.result.outcome == "failed"
    assert report.result.reason == "param service: no default and the alert has no 'service' label"
    assert fakes.calls == []


async def test_templates_keep_types_and_the_rendered_action_is_validated(
    time_env: WorkflowEnvironment,
) -> None:
    book = playbook([scale("out", replicas="${params.replicas}"), probe_verify()], params={"replicas": 3})
    fakes = Fakes()
    report = await run_to_end(time_env, fakes, HostInput(pinned=pin(book), alert=alert(**DEV, replicas="5")))
    assert report.result.outcome == "resolved"
    assert fakes.sent["out"]["args"]["replicas"] == 5  # the label overrode the default, as a number

    bad = await run_to_end(
        time_env, Fakes(), HostInput(pinned=pin(book), alert=alert(**DEV, replicas="5000"))
    )
    assert bad.result.outcome == "failed"
    assert bad.result.reason.startswith("step out: ")
    assert "replicas" in bad.result.reason and "less than or equal to 1000" in bad.result.reason


async def test_recent_rollout_decides_with_the_current_time(time_env: WorkflowEnvironment) -> None:
    book = playbook(
        [
            {"id": "ev", "kind": "check", "check": {"type": "evidence"}},
            {
                "id": "recent",
                "kind": "decide",
                "when": {
                    "and": [
                        {"exists": "${steps.ev.deployments.0.changed_at}"},
                        {"within": ["${steps.ev.deployments.0.changed_at}", "30m"]},
                    ]
                },
                "then": [scale("undo")],
                "else": [ansible("restart")],
            },
            probe_verify(),
        ]
    )
    now = await time_env.get_current_time()
    fresh = Evidence(deployments=[{"name": "web", "changed_at": now - timedelta(minutes=5)}])
    report = await run_to_end(
        time_env, Fakes(evidence=fresh), HostInput(pinned=pin(book), alert=alert(**DEV))
    )
    assert [r.step for r in report.result.path] == ["ev", "recent", "undo", "healthy"]

    old = Evidence(deployments=[{"name": "web", "changed_at": now - timedelta(days=2)}])
    report = await run_to_end(time_env, Fakes(evidence=old), HostInput(pinned=pin(book), alert=alert(**DEV)))
    assert [r.step for r in report.result.path] == ["ev", "recent", "restart", "healthy"]

    none = await run_to_end(time_env, Fakes(), HostInput(pinned=pin(book), alert=alert(**DEV)))
    assert "exists(${steps.ev.deployments.0.changed_at}) -> false" in detail(none, "decide recent: else")


async def test_invalid_pinned_playbook_fails_before_any_step(time_env: WorkflowEnvironment) -> None:
    book = playbook([ansible("restart", extravars={"x": "${params.nope}"})])
    fakes = Fakes()
    report = await run_to_end(time_env, fakes, HostInput(pinned=pin(book), alert=alert(**DEV)))
    assert report.result.outcome == "failed"
    assert report.result.reason.startswith("invalid playbook: steps[0].action.extravars.x")
    assert fakes.calls == []


async def test_history_replays_deterministically(time_env: WorkflowEnvironment) -> None:
    fakes = Fakes(probes=[False, False, True])
    run = Run(time_env.client, fakes)
    async with run.worker():
        handle = await run.start(HostInput(pinned=pin(CHECK_DECIDE_ACT), alert=alert(**DEV)))
        await handle.result()
    history = await handle.fetch_history()
    replayer = Replayer(
        workflows=[PlaybookTestHost], data_converter=pydantic_data_converter, workflow_runner=SANDBOX_RUNNER
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None


async def test_unanswered_explicit_approval_escalates(time_env: WorkflowEnvironment) -> None:
    book = playbook([{"id": "go", "kind": "approval", "timeout": "2h"}, ansible("restart")])
    fakes = Fakes()
    report = await run_to_end(time_env, fakes, HostInput(pinned=pin(book), alert=alert(**DEV)))
    assert report.result.outcome == "escalated"
    assert report.result.reason == "nobody approved go in time"
    assert report.requests[0].timeout == timedelta(hours=2)
    assert fakes.applied() == []
