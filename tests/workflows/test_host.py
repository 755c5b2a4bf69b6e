"""The pure parts of the shared host: which decisions count, the final phase, auto-approval withheld."""

from __future__ import annotations

from datetime import UTC, datetime

from workflows.approvals import ApprovalDesk
from workflows.decisions import Approval, Decision
from workflows.phases import Phase
from workflows.playbook_host import ApprovalRequest, PlaybookResult, StepRecord
from workflows.playbook_run import final_phase, without_auto_approval
from workflows.policy import ActionContext, Policy, evaluate

NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)


def test_only_distinct_eligible_decisions_made_while_asking_count() -> None:
    earlier = Approval(approver="alice", approved=True, at=NOW)
    desk = ApprovalDesk([earlier])
    assert desk.refusal("alice") == "nothing is waiting for approval"

    desk.open(
        ApprovalRequest(step="drain", summary="", reason="", approvers_required=2, eligible=["alice", "bob"])
    )
    assert desk.refusal("alice") == ""  # her approval of an earlier request does not count here
    desk.add(Decision(approver="alice"), approved=True, at=NOW)
    assert desk.refusal("alice") == "alice has already decided on this"
    assert desk.refusal("mallory") == "mallory may not decide on this (eligible: alice, bob)"
    assert not desk.satisfied()
    desk.add(Decision(approver="bob"), approved=True, at=NOW)
    assert desk.satisfied() and desk.approvers() == ["alice", "bob"] and desk.rejection() is None
    desk.close()
    assert desk.decisions == [] and len(desk.approvals) == 3


def test_earlier_approvals_the_interpreter_carries_over_count_towards_the_request() -> None:
    desk = ApprovalDesk([])
    desk.open(
        ApprovalRequest(step="drain", summary="", reason="", approvers_required=2, approved_by=["alice"])
    )
    desk.add(Decision(approver="bob"), approved=True, at=NOW)
    assert desk.satisfied()


def result(outcome: str, dry_run: bool, *path: tuple[str, str, str]) -> PlaybookResult:
    steps = [StepRecord(step=s, kind=k, status=st) for s, k, st in path]  # type: ignore[arg-type]
    return PlaybookResult(outcome=outcome, reason="why", dry_run=dry_run, path=steps)  # type: ignore[arg-type]


def test_final_phase_of_each_outcome_and_of_a_dry_run() -> None:
    assert final_phase(result("rolled_back", False)) == (Phase.ROLLED_BACK, "playbook rolled back", "why")
    assert final_phase(result("rejected", False))[0] == Phase.REJECTED
    acted = result("resolved", True, ("probe", "check", "ok"), ("restart", "action", "dry-run"))
    assert final_phase(acted) == (Phase.ESCALATED, "dry-run: nothing was executed", "why; a human must act")
    healed = result("resolved", True, ("probe", "check", "ok"), ("healed", "stop", "ok"))
    assert final_phase(healed)[0] == Phase.RESOLVED


def test_without_auto_approval_a_human_decides_every_change() -> None:
    ctx = ActionContext(action="restart-service", risk="change", service="web", environment="dev", now=NOW)
    assert not evaluate(Policy(), ctx).needs_approval
    verdict = evaluate(without_auto_approval(Policy()), ctx)
    assert verdict.needs_approval and verdict.reasons == ["dev needs approval for change actions"]
