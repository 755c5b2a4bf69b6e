"""The small remediation catalogue keyed by alert name (playbooks replace it later).

Arguments come from our own configuration, never from alert text: alert labels only select
which known service and host the fix applies to, and `refusal` holds those label values to the
patterns of the action's contract in workflows/guardrails.py (the contract model proposals are held
to) before any executor sees them, `--check` previews included.
"""

from __future__ import annotations

from collections.abc import Callable

from workflows import regex
from workflows.actions import AnsibleAction
from workflows.alerts import Alert
from workflows.diagnosis import Diagnosis
from workflows.guardrails import ACTION_CONTRACTS
from workflows.plans import Plan, PlannedAction


def _restart_arguments(alert: Alert) -> dict[str, str]:
    """What the alert says restart-service acts on: the values its contract's patterns judge."""
    return {"service": alert.service or alert.lookup("service"), "host": alert.lookup("host")}


def _restart_service(alert: Alert, diagnosis: Diagnosis) -> Plan:
    service = alert.service or alert.lookup("service")
    action = AnsibleAction(
        name="restart-service",
        risk="change",
        playbook="restart_service.yml",
        rollback_playbook="rollback_restart_service.yml",
        extravars={"service": service, "incident_id": alert.workflow_id},
        limit=alert.lookup("host"),
    )
    return Plan(
        summary=f"restart service {service!r} with Ansible ({diagnosis.category})",
        actions=[PlannedAction(step="restart", action=action)],
    )


CATALOGUE: dict[str, Callable[[Alert, Diagnosis], Plan]] = {
    "ServiceDown": _restart_service,
    "InstanceDown": _restart_service,
    "TargetDown": _restart_service,
    "DemoServiceDown": _restart_service,
}


# Catalogue actions a diagnosis may propose, by the names in workflows/guardrails.py's ACTION_CONTRACTS
# (which already checked the proposal's arguments against the alert).
PROPOSABLE: dict[str, Callable[[Alert, Diagnosis], Plan]] = {"restart-service": _restart_service}


# The alert text each catalogue action takes, by contract name: what `refusal` checks.
ARGUMENTS: dict[str, Callable[[Alert], dict[str, str]]] = {"restart-service": _restart_arguments}


def refusal(plan: Plan, alert: Alert) -> str:
    """Why the plan must not reach an executor (an argument from alert text fails its pattern); empty if
    every argument passes. An empty optional argument (no `host` label) is left to the executor."""
    for planned in plan.actions:
        name = planned.action.name
        contract, arguments = ACTION_CONTRACTS.get(name), ARGUMENTS.get(name)
        if contract is None or arguments is None:
            return f"catalogue action {name!r} has no argument contract"
        for arg, value in arguments(alert).items():
            spec = contract.arguments[arg]
            if (value or arg == "service") and not regex.fullmatch(spec.pattern, value):
                return f"{name}: {arg}={value[:80]!r} does not match {spec.pattern!r} ({spec.description})"
    return ""


def plan_for(alert: Alert, diagnosis: Diagnosis, proposals: bool = False) -> Plan | None:
    """The catalogue's plan for the alert; else, with `proposals`, for the first action it can build
    from those the diagnosis proposed."""
    make = CATALOGUE.get(alert.name)
    if make is None and proposals:
        make = next((PROPOSABLE[p.name] for p in diagnosis.proposed_actions if p.name in PROPOSABLE), None)
    return make(alert, diagnosis) if make else None
