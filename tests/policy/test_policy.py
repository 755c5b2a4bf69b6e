"""Policy evaluation: a pure function of the action, the time and the blast-radius counts."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from workflows.policy import ActionContext, Policy, Usage, Verdict, Window, evaluate

MONDAY_NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a Monday


def verdict(policy: Policy | None = None, **overrides: Any) -> Verdict:
    ctx = {
        "action": "restart-service",
        "risk": "change",
        "service": "web",
        "environment": "prod",
        "now": MONDAY_NOON,
    }
    return evaluate(policy or Policy(), ActionContext.model_validate({**ctx, **overrides}))


def test_defaults_dev_auto_approves_change_and_prod_asks() -> None:
    dev = verdict(environment="dev")
    assert (dev.allowed, dev.needs_approval, dev.approvers_required) == (True, False, 0)
    assert dev.reason == "dev auto-approves change action 'restart-service'"
    prod = verdict()
    assert (prod.allowed, prod.needs_approval, prod.approvers_required) == (True, True, 1)
    assert prod.reason == "prod needs approval for change actions"
    assert verdict(risk="read").needs_approval is False


@pytest.mark.parametrize("environment", ["dev", "prod", "staging"])
def test_destructive_needs_two_distinct_approvers_everywhere(environment: str) -> None:
    result = verdict(environment=environment, risk="destructive")
    assert result.approvers_required == 2
    assert "destructive actions need 2 distinct approvers" in result.reason


def test_the_two_approver_rule_cannot_be_configured_away() -> None:
    with pytest.raises(ValidationError, match="greater than or equal to 2"):
        Policy(destructive_approvers=1)
    with pytest.raises(ValidationError, match="cannot auto-approve"):
        Policy(environments={"dev": {"auto_approve": ["destructive"]}, "prod": {}})
    # An environment may ask for more, never fewer.
    strict = Policy(environments={"prod": {"approvers_required": 3}})
    assert verdict(strict, risk="destructive").approvers_required == 3


def test_confidence_threshold_auto_approves_only_when_sure() -> None:
    policy = Policy(
        environments={
            "prod": {
                "auto_approve": [{"risks": ["change"], "actions": ["restart-*"], "min_confidence": 0.85}]
            }
        }
    )
    assert verdict(policy, confidence=0.9).needs_approval is False
    unsure = verdict(policy, confidence=0.7)
    assert unsure.needs_approval and unsure.approvers_required == 1
    assert (
        "confidence 0.70 is below the 0.85 that prod needs to auto-approve 'restart-service'" in unsure.reason
    )
    assert verdict(policy, confidence=None).needs_approval  # no diagnosis: a human decides
    assert (
        verdict(policy, action="scale-out", confidence=0.99).reason
        == "prod needs approval for change actions"
    )


def test_unknown_environment_gets_the_default_rules() -> None:
    result = verdict(environment="staging")
    assert result.needs_approval
    assert result.reasons[0] == "environment 'staging' is not in the policy; prod rules apply"
    with pytest.raises(ValidationError, match="default_environment 'qa' is not in environments"):
        Policy(default_environment="qa")


def test_service_deny_wins_over_allow() -> None:
    policy = Policy(services={"allow": ["web*", "api"], "deny": ["web-payments"]})
    assert verdict(policy, service="web-shop").allowed
    denied = verdict(policy, service="web-payments")
    assert (denied.allowed, denied.reason) == (False, "service 'web-payments' is denied (web-payments)")
    outside = verdict(policy, service="db")
    assert (outside.allowed, outside.reason) == (False, "service 'db' is not in the allow list")


WEEKNIGHTS = Window(name="weeknights", days=["mon", "tue", "wed", "thu"], start=time(22), end=time(4))


@pytest.mark.parametrize(
    ("now", "open_"),
    [
        (datetime(2026, 3, 2, 23, 0, tzinfo=UTC), True),  # Monday night
        (datetime(2026, 3, 3, 3, 59, tzinfo=UTC), True),  # Tuesday early: Monday's window still open
        (datetime(2026, 3, 3, 4, 0, tzinfo=UTC), False),
        (datetime(2026, 3, 6, 23, 0, tzinfo=UTC), False),  # Friday night: not a window day
        (datetime(2026, 3, 6, 2, 0, tzinfo=UTC), True),  # Friday early: Thursday's window
    ],
)
def test_windows_cross_midnight(now: datetime, open_: bool) -> None:
    assert WEEKNIGHTS.is_open(now) is open_


def test_outside_its_window_an_action_waits_for_the_next_opening() -> None:
    policy = Policy(maintenance_windows=[WEEKNIGHTS])
    result = verdict(policy, environment="dev")
    assert result.allowed and result.wait_until == datetime(2026, 3, 2, 22, 0, tzinfo=UTC)
    assert "outside maintenance window weeknights" in result.reason
    friday = verdict(policy, environment="dev", now=datetime(2026, 3, 6, 12, 0, tzinfo=UTC))
    assert friday.wait_until == datetime(2026, 3, 9, 22, 0, tzinfo=UTC)  # next Monday
    inside = verdict(policy, environment="dev", now=datetime(2026, 3, 2, 23, 0, tzinfo=UTC))
    assert inside.wait_until is None and inside.needs_approval is False


def test_windows_apply_only_where_they_say() -> None:
    prod_only = Window(name="w", start=time(22), end=time(4), environments=["prod"], services=["db*"])
    policy = Policy(maintenance_windows=[prod_only])
    assert verdict(policy, service="db-1").wait_until is not None
    assert verdict(policy, service="web").wait_until is None
    assert verdict(policy, service="db-1", environment="dev").wait_until is None
    assert verdict(policy, service="db-1", risk="read").wait_until is None


def test_a_window_with_override_asks_for_a_human_instead_of_waiting() -> None:
    window = WEEKNIGHTS.model_copy(update={"outside": "override"})
    result = verdict(Policy(maintenance_windows=[window]), environment="dev")
    assert result.wait_until is None
    assert (result.needs_approval, result.approvers_required) == (True, 1)
    assert "an approver may override" in result.reason


def test_actions_per_service_per_hour() -> None:
    policy = Policy(limits={"actions_per_service_per_hour": 3})
    oldest = MONDAY_NOON - timedelta(minutes=45)
    assert (
        verdict(policy, usage=Usage(service_actions_last_hour=2, oldest_service_action_at=oldest)).wait_until
        is None
    )
    full = verdict(policy, usage=Usage(service_actions_last_hour=3, oldest_service_action_at=oldest))
    assert full.wait_until == oldest + timedelta(hours=1)
    assert "3 action(s) on 'web' in the last hour reach the limit of 3" in full.reason
    assert verdict(policy, risk="read", usage=Usage(service_actions_last_hour=9)).wait_until is None


def test_concurrent_remediations_and_deny_mode() -> None:
    waiting = Policy(limits={"concurrent_remediations": 2, "recheck": "2m"})
    busy = Usage(concurrent_remediations=2)
    assert verdict(waiting, usage=busy).wait_until == MONDAY_NOON + timedelta(minutes=2)
    assert verdict(waiting, usage=Usage(concurrent_remediations=1)).wait_until is None
    denying = Policy(limits={"concurrent_remediations": 2, "on_exceed": "deny"})
    result = verdict(denying, usage=busy)
    assert (result.allowed, result.reason) == (False, "2 remediation(s) running reach the limit of 2")


def test_dry_run_globally_or_per_environment() -> None:
    assert verdict(Policy(dry_run=True)).dry_run
    per_env = Policy(environments={"dev": {"dry_run": True}, "prod": {}})
    assert verdict(per_env, environment="dev").dry_run and not verdict(per_env).dry_run
    assert "dry-run: plan, preview and record only" in verdict(Policy(dry_run=True)).reason
    assert verdict(Policy(dry_run=True)).text().startswith("dry-run, needs 1 approver(s): ")


def test_approvers_come_from_groups_per_risk_class() -> None:
    policy = Policy(
        groups={"sre": ["alice", "bob"], "leads": ["carol"]},
        approvers={"change": ["sre", "dave"], "destructive": ["leads", "sre"]},
    )
    assert verdict(policy).eligible_approvers == ["alice", "bob", "dave"]
    assert verdict(policy, risk="destructive").eligible_approvers == ["alice", "bob", "carol"]
    assert verdict(policy, environment="dev").eligible_approvers == []  # nobody is asked
    assert verdict(Policy()).eligible_approvers == []  # no list: anyone may approve


def test_every_rule_that_applied_is_in_the_reason() -> None:
    policy = Policy(maintenance_windows=[WEEKNIGHTS], limits={"actions_per_service_per_hour": 1})
    result = verdict(policy, risk="destructive", usage=Usage(service_actions_last_hour=1))
    text = result.text()
    assert text.startswith("wait until ") and "needs 2 approver(s)" in text
    assert len(result.reasons) == 3
