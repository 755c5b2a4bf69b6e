"""Small builders for playbooks and alerts in tests."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from workflows.alerts import Alert, label_fingerprint
from workflows.playbook import PinnedPlaybook, Playbook


def playbook(
    steps: list[dict[str, Any]], params: dict[str, Any] | None = None, name: str = "Test"
) -> Playbook:
    return Playbook.model_validate(
        {"name": name, "match": {"matchers": [f'alertname="{name}"']}, "params": params or {}, "steps": steps}
    )


def pin(book: Playbook) -> PinnedPlaybook:
    digest = hashlib.sha256(json.dumps(book.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()
    return PinnedPlaybook(name=book.name, sha256=digest, source="test", playbook=book)


def alert(annotations: dict[str, str] | None = None, **labels: str) -> Alert:
    labels = {"alertname": "Test", **labels}
    return Alert(fingerprint=label_fingerprint(labels), labels=labels, annotations=annotations or {})


def ansible(
    step_id: str, name: str = "restart-service", risk: str = "change", **extra: Any
) -> dict[str, Any]:
    action = {"executor": "ansible", "name": name, "risk": risk, "playbook": "restart_service.yml", **extra}
    return {"id": step_id, "kind": "action", "action": action}


def scale(step_id: str, replicas: Any = 4) -> dict[str, Any]:
    action = {
        "executor": "kubernetes",
        "name": "scale-out",
        "operation": "scale",
        "namespace": "shop",
        "args": {"deployment": "web", "replicas": replicas},
    }
    return {"id": step_id, "kind": "action", "action": action}


def probe_verify(step_id: str = "healthy", timeout: str = "5m", interval: str = "10s") -> dict[str, Any]:
    return {
        "id": step_id,
        "kind": "verify",
        "check": {"type": "probe", "url": "http://svc/health"},
        "until": {"equals": [f"${{steps.{step_id}.ok}}", True]},
        "interval": interval,
        "timeout": timeout,
    }
