"""What a check-mode preview cannot know: shell and command tasks are skipped by `--check`, so the
preview says how many it could not predict instead of claiming they change nothing."""

from __future__ import annotations

import pytest

from tests.executors import test_ansible
from tests.executors.test_ansible import Lab, activity_env

lab = test_ansible.lab  # the executor tests' fixture: a lab of hosts, playbooks and markers

pytestmark = pytest.mark.ansible

MIXED = """
- hosts: all
  gather_facts: false
  tasks:
    - name: restart with a command
      ansible.builtin.shell: "touch {{ target }}.restarted"
    - name: a command whose condition is false (skipped for that reason, not for check mode)
      ansible.builtin.command: "touch {{ target }}.never"
      when: false
    - name: add the line
      ansible.builtin.lineinfile:
        path: "{{ target }}"
        line: "hello {{ service }}"
        create: true
"""


def test_preview_counts_the_tasks_check_mode_cannot_predict(lab: Lab) -> None:
    (lab.playbooks / "mixed.yml").write_text(MIXED)
    outcome = activity_env().env.run(lab.executor().preview, lab.request("mixed.yml"))
    assert outcome.ok, outcome.summary
    assert "1 task(s) cannot be predicted in check mode (shell); would change 1 other task(s)" in (
        outcome.summary
    )
    assert not lab.target.exists() and not lab.target.with_name(lab.target.name + ".restarted").exists()


def test_a_preview_with_nothing_unpredictable_says_only_what_changes(lab: Lab) -> None:
    outcome = activity_env().env.run(lab.executor().preview, lab.request("line.yml"))
    assert "cannot be predicted" not in outcome.summary
    assert "would change 1 task(s)" in outcome.summary
