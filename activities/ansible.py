"""Ansible executor: real ansible-runner, run as synchronous activities on the worker's thread pool.

preview is `--check --diff`, apply is the real run, rollback runs the action's rollback playbook.
Events become heartbeats (the task name is the progress) and cancellation reaches ansible-runner
through `cancel_callback`.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import ansible_runner
from temporalio import activity
from temporalio.exceptions import ApplicationError

from worker.settings import Settings
from workflows.actions import AnsibleAction
from workflows.models import ActionOutcome, ActionRequest, HostResult

# Alert labels reach extravars; Ansible would render these as Jinja, so they are refused.
_TEMPLATE_MARKERS = ("{{", "{%", "{#")
_STAT_KEYS = {"ok": "ok", "changed": "changed", "failures": "failed", "dark": "unreachable", "skipped": "skipped"}


def _local_inventory() -> dict[str, Any]:
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    return {"all": {"hosts": {"localhost": host}}}


def _host_results(stats: dict[str, dict[str, int]] | None) -> dict[str, HostResult]:
    hosts: dict[str, HostResult] = {}
    for key, field in _STAT_KEYS.items():
        for host, count in (stats or {}).get(key, {}).items():
            setattr(hosts.setdefault(host, HostResult()), field, count)
    return hosts


def _check_extravars(extravars: dict[str, Any]) -> None:
    for key, value in extravars.items():
        if isinstance(value, str) and any(m in value for m in _TEMPLATE_MARKERS):
            raise ApplicationError(
                f"extravar {key!r} contains a Jinja template marker; refusing to run it",
                type="UnsafeInput",
                non_retryable=True,
            )


class AnsibleExecutor:
    def __init__(self, settings: Settings) -> None:
        self._playbook_dir = settings.ansible_playbook_dir.resolve()
        self._inventory: str | dict[str, Any] = settings.ansible_inventory or _local_inventory()
        self._markers = (settings.state_dir / "ansible-applied").resolve()

    def _playbook(self, name: str) -> Path:
        path = (self._playbook_dir / name).resolve()
        if not path.is_relative_to(self._playbook_dir) or not path.is_file():
            raise ApplicationError(
                f"playbook {name!r} not found in {self._playbook_dir}", type="BadPlaybook", non_retryable=True
            )
        return path

    def _marker(self, request: ActionRequest) -> Path:
        digest = hashlib.sha256(request.idempotency_key.encode()).hexdigest()[:32]
        return self._markers / f"{digest}.json"

    def _run(self, request: ActionRequest, playbook: str, check: bool) -> ActionOutcome:
        action = request.action
        if not isinstance(action, AnsibleAction):
            raise ApplicationError(f"not an Ansible action: {action.executor}", non_retryable=True)
        _check_extravars(action.extravars)
        path = self._playbook(playbook)
        diffs: list[str] = []
        failures: list[str] = []

        def on_event(event: dict[str, Any]) -> bool:
            data = event.get("event_data", {})
            if task := data.get("task"):
                activity.heartbeat(f"{data.get('host', '')} {task}".strip())
            res = data.get("res", {})
            if event.get("event") == "runner_on_ok" and isinstance(res.get("diff"), list):
                diffs.extend(d.get("prepared", "") for d in res["diff"] if d.get("prepared"))
            if event.get("event") in ("runner_on_failed", "runner_on_unreachable"):
                failures.append(f"{data.get('host')}: {data.get('task')}: {res.get('msg', 'failed')}")
            return True

        extravars = {**action.extravars, "remediator_idempotency_key": request.idempotency_key}
        with tempfile.TemporaryDirectory(prefix="remediator-ansible-") as private_dir:
            runner = ansible_runner.run(
                private_data_dir=private_dir,
                playbook=str(path),
                inventory=self._inventory,
                extravars=extravars,
                limit=action.limit or None,
                cmdline="--check --diff" if check else "--diff",
                binary=str(Path(sys.executable).parent / "ansible-playbook"),
                event_handler=on_event,
                cancel_callback=activity.is_cancelled,
                quiet=True,
                suppress_env_files=True,
            )
        hosts = _host_results(runner.stats)
        changed = any(h.changed for h in hosts.values())
        mode = "check" if check else "run"
        if runner.status == "canceled":
            raise ApplicationError(f"ansible {mode} of {playbook} cancelled", type="Cancelled")
        if runner.status != "successful":
            detail = "; ".join(failures) or f"status {runner.status}, rc {runner.rc}"
            raise ApplicationError(f"ansible {mode} of {playbook} failed: {detail}", type="AnsibleFailed")
        counts = ", ".join(f"{h}: ok={r.ok} changed={r.changed}" for h, r in hosts.items())
        verb = "would change" if check else "changed"
        summary = f"{playbook} ({mode}): {verb} {sum(h.changed for h in hosts.values())} task(s); {counts}"
        return ActionOutcome(ok=True, summary=summary, changed=changed, hosts=hosts, diff="\n".join(diffs))

    @activity.defn(name="ansible.preview")
    def preview(self, request: ActionRequest) -> ActionOutcome:
        return self._run(request, request.action.playbook, check=True)

    @activity.defn(name="ansible.snapshot")
    def snapshot(self, request: ActionRequest) -> dict[str, Any]:
        """Ansible's undo is the action's rollback playbook; record which one and whether it applied."""
        marker = self._marker(request)
        return {"rollback_playbook": request.action.rollback_playbook, "already_applied": marker.exists()}

    @activity.defn(name="ansible.apply")
    def apply(self, request: ActionRequest) -> ActionOutcome:
        marker = self._marker(request)
        if marker.exists():
            # A retry after a crash that happened once the run had finished: do not apply twice.
            recorded = ActionOutcome.model_validate_json(marker.read_text())
            return recorded.model_copy(update={"summary": f"already applied ({request.idempotency_key}): "
                                                          f"{recorded.summary}"})
        outcome = self._run(request, request.action.playbook, check=False)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps(outcome.model_dump(mode="json")))
        return outcome

    @activity.defn(name="ansible.rollback")
    def rollback(self, request: ActionRequest) -> ActionOutcome:
        if not request.action.rollback_playbook:
            return ActionOutcome(ok=True, summary="no rollback playbook declared; nothing to undo")
        return self._run(request, request.action.rollback_playbook, check=False)
