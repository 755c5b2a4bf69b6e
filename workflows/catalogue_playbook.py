"""The catalogue's plan as a playbook, so that the fallback runs on the one engine (workflows/interpreter.py).

`as_playbook` turns the plan `workflows/catalogue.py` chose into the model the YAML loader produces:
one `action` step per planned action, its spec exactly as the catalogue built it (literal: any `${` in
it is escaped, nothing in it is a template), then a `health` verify, the `verify` activity the plan
was always checked with, polled until `verify_timeout`. The interpreter does the rest as it does for
any playbook: policy, preview, approval, snapshot, apply, verify, compensation on failure.

What the catalogue asks beyond a playbook goes to the interpreter beside the playbook
(workflows/playbook_run.run_catalogue_plan): a person approves the plan unless REMEDIATOR_AUTO_APPROVE
is set (`human_reason`), and a policy wait hands the plan to a person rather than holding it. `ending` words the interpreter's result as
catalogue incidents always ended, so the timeline and phases read as they did.

A plan of several actions would ask (and approve) them one by one, as a playbook does; the catalogue's
plans have one action each.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from workflows.activity_options import ACTION_TIMEOUT
from workflows.alerts import Alert
from workflows.incident_models import IncidentConfig, IncidentState
from workflows.matching import Matcher
from workflows.phases import Phase
from workflows.plans import Plan
from workflows.playbook import PinnedPlaybook, Playbook
from workflows.playbook_host import Cause, PlaybookResult
from workflows.playbook_run import DRY_RUN_ENDING, PHASES, final_phase

NAME = "catalogue"
SOURCE = "workflows/catalogue.py"
VERIFY_STEP = "healthy"
# How often the verification asks again: the longest pause of the retry policy that polled it before.
VERIFY_EVERY = timedelta(seconds=15)

# The catalogue's wording of an escalation, by what caused it.
_ESCALATIONS = {
    "policy": "policy refused the plan",
    "executor": "{step} refused by the executor",
    "wait": "policy asks to wait",
    "timeout": "approval timed out",
}
_ENDINGS = {
    "resolved": "verified healthy",
    "cancelled": "alert resolved before any action ran",
    "rolled_back": "verification failed; compensations ran",
}


def probe_url(alert: Alert) -> str:
    """The URL the fix is verified with (from the alert's annotations or labels); empty: none."""
    return alert.lookup("probe_url") or alert.lookup("health_url")


def _literal(value: Any) -> Any:
    """`value` with every `${` written as `$${`: the interpreter renders it back to exactly `value`."""
    if isinstance(value, str):
        return value.replace("${", "$${")
    if isinstance(value, dict):
        return {key: _literal(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_literal(item) for item in value]
    return value


def as_playbook(plan: Plan, alert: Alert, verify_timeout: timedelta) -> PinnedPlaybook:
    """The playbook that does what `plan` says for `alert`, pinned (sha256 over its content)."""
    steps: list[dict[str, Any]] = [
        {
            "id": planned.step,
            "kind": "action",
            "timeout": ACTION_TIMEOUT,  # the preview's too: an Ansible --check run takes as long
            "action": _literal(planned.action.model_dump(mode="json")),
        }
        for planned in plan.actions
    ]
    steps.append(
        {
            "id": VERIFY_STEP,
            "kind": "verify",
            "check": {"type": "health", "probe_url": _literal(probe_url(alert))},
            "until": {"equals": [f"${{steps.{VERIFY_STEP}.ok}}", True]},
            "interval": VERIFY_EVERY,
            "timeout": verify_timeout,
            "retry": {"maximum_attempts": 1},  # the verify step's polling is the retry
        }
    )
    playbook = Playbook.model_validate(
        {
            "name": NAME,
            "description": plan.summary,
            "match": {"matchers": [Matcher(label="alertname", op="=", value=alert.name)]},
            "steps": steps,
        }
    )
    digest = hashlib.sha256(playbook.model_dump_json().encode()).hexdigest()
    return PinnedPlaybook(name=NAME, sha256=digest, source=SOURCE, playbook=playbook)


def unverifiable(alert: Alert, config: IncidentConfig) -> str:
    """Why nothing could tell that a fix worked (no probe URL and no Prometheus); empty if something can."""
    if probe_url(alert) or config.prometheus:
        return ""
    return "nothing to verify the fix with (no probe URL and no Prometheus)"


def human_reason(config: IncidentConfig, alert: Alert, requires_human: str) -> str:
    """Why the plan waits for a person even where the policy would auto-approve it; empty if it need not.

    A failed preview also withholds auto-approval; the interpreter sees to that itself.
    """
    if not config.auto_approve:
        return "a catalogue plan waits for a person unless REMEDIATOR_AUTO_APPROVE is set"
    return requires_human or unverifiable(alert, config)


def _escalation(cause: Cause) -> tuple[Phase, str, str]:
    return Phase.ESCALATED, _ESCALATIONS[cause.kind].format(step=cause.step), cause.detail


def ending(result: PlaybookResult, state: IncidentState) -> tuple[Phase, str, str]:
    """The phase, timeline event and detail the run ends in, worded as catalogue plans always ended."""
    if result.outcome == "escalated" and result.cause is not None:
        return _escalation(result.cause)
    if result.outcome == "resolved" and result.dry_run:
        return Phase.ESCALATED, DRY_RUN_ENDING, "plan, previews and verdicts recorded; a human must act"
    if result.outcome == "rejected" and state.approvals:
        return Phase.REJECTED, "remediation rejected", state.approvals[-1].reason
    if result.outcome == "failed":
        failed = next((r.detail for r in reversed(result.path) if r.status == "failed"), result.reason)
        return Phase.FAILED, "remediation failed", failed
    if event := _ENDINGS.get(result.outcome):
        return PHASES[result.outcome], event, ""
    return final_phase(result)
