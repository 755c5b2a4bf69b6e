"""The small remediation catalogue keyed by alert name (playbooks replace it later).

Arguments come from our own configuration, never from alert text: alert labels only select
which known service and host the fix applies to.
"""

from __future__ import annotations

from collections.abc import Callable

from workflows.actions import AnsibleAction
from workflows.models import Alert, Diagnosis, Plan, PlannedAction


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


def plan_for(alert: Alert, diagnosis: Diagnosis, proposals: bool = False) -> Plan | None:
    """The catalogue's plan for the alert; else, with `proposals`, for the first action it can build
    from those the diagnosis proposed."""
    make = CATALOGUE.get(alert.name)
    if make is None and proposals:
        make = next((PROPOSABLE[p.name] for p in diagnosis.proposed_actions if p.name in PROPOSABLE), None)
    return make(alert, diagnosis) if make else None
