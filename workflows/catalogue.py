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


def plan_for(alert: Alert, diagnosis: Diagnosis) -> Plan | None:
    make = CATALOGUE.get(alert.name)
    return make(alert, diagnosis) if make else None
