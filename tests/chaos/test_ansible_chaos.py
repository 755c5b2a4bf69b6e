"""A worker SIGKILLed in the middle of an Ansible apply: the retry on a new worker finishes the job,
the effect happens exactly once, and no ansible-playbook of the dead worker keeps running."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client

from tests.chaos.harness import KillScenario, ProcessTree, run_kill_scenario
from worker.devserver import DevServer
from workflows.actions import AnsibleAction
from workflows.plans import ActionRequest

pytestmark = [pytest.mark.chaos, pytest.mark.ansible]

# The effect is recorded with an idempotent module; the attempt that made it then holds still far longer
# than the harness waits for the killed worker's processes to go, so a survivor cannot hide.
PLAYBOOK = """
- hosts: all
  gather_facts: false
  tasks:
    - name: record the effect
      ansible.builtin.lineinfile:
        path: "{{ counter }}"
        line: "applied {{ remediator_idempotency_key }}"
        create: true
      register: effect
    - name: hold still
      ansible.builtin.command: sleep 120
      when: effect is changed
"""


async def test_killed_worker_mid_apply_resumes_once(
    dev_server: DevServer, dev_client: Client, tmp_path: Path
) -> None:
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir()
    (playbooks / "slow_effect.yml").write_text(PLAYBOOK)
    markers = tmp_path / "markers"
    counter = tmp_path / "counter"
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(
        "all:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
        f"      ansible_python_interpreter: {sys.executable}\n      remediator_marker_dir: {markers}\n"
    )
    action = AnsibleAction(name="chaos", playbook="slow_effect.yml", extravars={"counter": str(counter)})
    request = ActionRequest(incident_id=f"incident-{uuid.uuid4().hex[:12]}", step="fix", action=action)

    def ready_to_kill(tree: ProcessTree) -> bool:
        return counter.exists() and any(c.startswith("sleep 120") for c in tree.values())

    result = await run_kill_scenario(
        dev_server,
        dev_client,
        KillScenario(
            request=request,
            env={
                "REMEDIATOR_ANSIBLE_PLAYBOOK_DIR": str(playbooks),
                "REMEDIATOR_ANSIBLE_INVENTORY": str(inventory),
                "REMEDIATOR_STATE_DIR": str(tmp_path / "state"),
            },
            ready_to_kill=ready_to_kill,
        ),
        tmp_path,
    )

    # The kill hit ansible-playbook mid-task, and it did not outlive its worker (PR_SET_PDEATHSIG).
    assert any("ansible-playbook" in c for c in result.killed.values()), result.killed
    assert not result.survivors, f"still running after the worker died: {result.survivors}"
    # Exactly one effect, and the outcome says honestly that this was a resumed attempt.
    assert counter.read_text().splitlines() == [f"applied {request.idempotency_key}"]
    assert result.outcome.ok
    assert result.outcome.details["resumed"] == ["localhost"]
    assert "resumed after an interrupted attempt on localhost" in result.outcome.summary
    # Heartbeats are throttled, so the last one the server kept may name any earlier task.
    assert (
        f"(it last reported {result.outcome.details['previous_attempt_progress']!r})"
        in result.outcome.summary
    )
    assert [p.suffix for p in sorted(markers.iterdir())] == [".done", ".started"]
