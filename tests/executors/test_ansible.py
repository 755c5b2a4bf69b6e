"""The Ansible executor against real ansible-runner and ansible-playbook on localhost.

Activities run in `ActivityEnvironment`: heartbeats are captured, cancellation is `env.cancel()`.
Hosts are local connections with their own marker directories, plus `ghost`, an ssh host on a
closed port of 127.0.0.2, for the unreachable paths.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.testing import ActivityEnvironment

from activities.ansible.executor import AnsibleExecutor, play_hosts
from activities.ansible.inputs import target_host, untrusted_extravars
from activities.config import Settings
from activities.preview_slots import PreviewSlots
from tests.chaos.harness import ProcessTree, process_tree, wait_gone
from workflows.actions import AnsibleAction
from workflows.plans import ActionOutcome, ActionRequest

pytestmark = pytest.mark.ansible

ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")
INJECTION = "{{ lookup('pipe', 'touch %s') }}"
# No `{{` at all: a template header that redefines the markers (the old marker check let it through).
HEADER_INJECTION = (
    "#jinja2:variable_start_string:'[[', variable_end_string:']]'\n[[ lookup('pipe', 'touch %s') ]]"
)

PLAYBOOKS = {
    "line.yml": """
- hosts: all
  gather_facts: false
  tasks:
    - name: add the line
      ansible.builtin.lineinfile:
        path: "{{ target }}"
        line: "hello {{ service }}"
        create: true
""",
    "undo.yml": """
- hosts: all
  gather_facts: false
  tasks:
    - name: remove the line
      ansible.builtin.lineinfile:
        path: "{{ target }}"
        line: "hello {{ service }}"
        state: absent
""",
    # Not idempotent on purpose: only the markers stand between a repeat and a second line.
    "append.yml": """
- hosts: all
  gather_facts: false
  tasks:
    - name: append a line
      ansible.builtin.shell: "echo applied >> {{ target | quote }}"
""",
    "hosts.yml": """
- hosts: web:ghost
  gather_facts: false
  tasks:
    - name: check the disk
      ansible.builtin.fail:
        msg: "disk full on {{ inventory_hostname }}"
      when: explode | default(false)
    - name: write the host file
      ansible.builtin.copy:
        dest: "{{ target }}.{{ inventory_hostname }}"
        content: done
""",
    "flaky.yml": """
- ansible.builtin.import_playbook: line.yml
- hosts: all
  gather_facts: false
  tasks:
    - name: check the flag
      ansible.builtin.command: "test ! -e {{ flag }}"
      changed_when: false
""",
    "slow.yml": """
- hosts: all
  gather_facts: false
  tasks:
    - name: start
      ansible.builtin.file:
        path: "{{ started }}"
        state: touch
    - name: hold still
      ansible.builtin.command: sleep 60
""",
    "echo.yml": """
- hosts: all
  gather_facts: false
  tasks:
    - name: write what the alert said
      ansible.builtin.copy:
        dest: "{{ target }}"
        content: "service={{ service }} note={{ note | default('') }}"
""",
    "broken.yml": """- hosts: all
  tasks:
    - name: fine so far
      ansible.builtin.debug: msg=1
     bad: [
""",
}


@dataclasses.dataclass
class Lab:
    root: Path

    @property
    def playbooks(self) -> Path:
        return self.root / "playbooks"

    @property
    def target(self) -> Path:
        return self.root / "target.txt"

    def markers(self, host: str) -> list[str]:
        """The marker files on one host, as suffixes: ['.done', '.started']."""
        folder = self.root / "markers" / host
        return sorted(p.suffix for p in folder.iterdir()) if folder.exists() else []

    def host(self, name: str, **host_vars: Any) -> dict[str, Any]:
        return {
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            "ansible_pipelining": True,
            "remediator_marker_dir": str(self.root / "markers" / name),
            **host_vars,
        }

    def inventory(self) -> Path:
        """localhost, `good`, `bad` (whose disk check fails), group `web` of both, `ghost` (unreachable)."""
        path = self.root / "inventory.yml"
        hosts = {
            "localhost": self.host("localhost"),
            "good": self.host("good"),
            "bad": self.host("bad", explode=True),
            "ghost": {"ansible_host": "127.0.0.2", "ansible_port": 1, "ansible_connection": "ssh"},
        }
        groups = {"web": {"hosts": {"good": {}, "bad": {}}}}
        path.write_text(json.dumps({"all": {"hosts": hosts, "children": groups}}))
        return path

    def executor(self, inventory: bool = True, slots: PreviewSlots | None = None) -> AnsibleExecutor:
        return AnsibleExecutor(
            Settings(
                ansible_playbook_dir=self.playbooks,
                ansible_inventory=str(self.inventory()) if inventory else "",
                ansible_marker_dir=str(self.root / "markers" / "default"),
            ),
            slots,
        )

    def request(
        self,
        playbook: str,
        limit: str = "localhost",
        step: str = "fix",
        all_hosts: bool = False,
        **extravars: Any,
    ) -> ActionRequest:
        action = AnsibleAction(
            name="test",
            playbook=playbook,
            rollback_playbook="undo.yml",
            extravars={"service": "web", "target": str(self.target), **extravars},
            limit=limit,
            all_hosts=all_hosts,
        )
        return ActionRequest(incident_id=f"incident-{self.root.name}", step=step, action=action)


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    lab = Lab(tmp_path)
    lab.playbooks.mkdir()
    for name, text in PLAYBOOKS.items():
        (lab.playbooks / name).write_text(text)
    return lab


@dataclasses.dataclass
class Env:
    """An activity environment that records heartbeats and may react to them (`hook`)."""

    env: ActivityEnvironment
    heartbeats: list[str] = dataclasses.field(default_factory=list)
    hook: Callable[[], None] = lambda: None

    def __post_init__(self) -> None:
        self.env.on_heartbeat = self._record

    def _record(self, *details: Any) -> None:
        self.heartbeats.append(str(details[0]))
        self.hook()


def activity_env(seconds: float = 120, **info: Any) -> Env:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info,
        started_time=datetime.now(UTC),
        start_to_close_timeout=timedelta(seconds=seconds),
        **{"workflow_run_id": "run-1", **info},
    )
    return Env(env)


def failure(err: pytest.ExceptionInfo[ApplicationError]) -> ActionOutcome:
    return ActionOutcome.model_validate(err.value.details[0])


# --- preview, apply, rollback, idempotency ---------------------------------------------------------


def test_preview_shows_the_diff_and_changes_nothing(lab: Lab) -> None:
    outcome = activity_env().env.run(lab.executor().preview, lab.request("line.yml"))
    assert outcome.ok and outcome.changed
    assert "+hello web" in outcome.diff
    assert "would change 1 task(s)" in outcome.summary
    assert not lab.target.exists()
    assert lab.markers("localhost") == []  # check mode writes no marker either


def test_apply_changes_streams_progress_and_never_repeats_for_the_same_key(lab: Lab) -> None:
    executor, request = lab.executor(), lab.request("append.yml")
    run = activity_env()
    first = run.env.run(executor.apply, request)
    assert first.ok and first.changed and first.hosts["localhost"].changed == 1
    assert "localhost append a line" in run.heartbeats
    assert lab.target.read_text() == "applied\n"
    assert lab.markers("localhost") == [".done", ".started"]

    # A retry of the same action (same key, same workflow run): the host's marker says it is done.
    again = activity_env().env.run(executor.apply, request)
    assert again.ok and not again.changed
    assert again.details["already_applied"] == ["localhost"]
    assert f"already applied ({request.idempotency_key}) on localhost; nothing repeated" in again.summary
    assert lab.target.read_text() == "applied\n"

    # The same incident id in a later workflow run (the alert fired again next week) applies again.
    later = activity_env(workflow_run_id="run-2").env.run(executor.apply, request)
    assert later.changed and lab.target.read_text() == "applied\napplied\n"


def test_rollback_runs_the_rollback_playbook(lab: Lab) -> None:
    executor, request = lab.executor(), lab.request("line.yml")
    activity_env().env.run(executor.apply, request)
    assert lab.target.read_text() == "hello web\n"
    undone = activity_env().env.run(executor.rollback, request)
    assert undone.ok and undone.changed and "ansible run of undo.yml" in undone.summary
    assert lab.target.read_text() == ""

    nothing = request.model_copy(
        update={"action": request.action.model_copy(update={"rollback_playbook": ""})}
    )
    assert "nothing to undo" in activity_env().env.run(executor.rollback, nothing).summary


def test_a_failed_attempt_is_resumed_and_says_so(lab: Lab) -> None:
    executor, flag = lab.executor(), lab.root / "flag"
    flag.touch()
    request = lab.request("flaky.yml", flag=str(flag))
    with pytest.raises(ApplicationError) as err:
        activity_env().env.run(executor.apply, request)
    assert err.value.type == "AnsibleTaskFailed" and not err.value.non_retryable
    assert "localhost: task 'check the flag' failed: non-zero return code" in str(err.value)
    assert lab.markers("localhost") == [".started"]

    flag.unlink()
    retry = activity_env(attempt=2, heartbeat_details=["localhost check the flag"])
    outcome = retry.env.run(executor.apply, request)
    assert outcome.ok and outcome.details["resumed"] == ["localhost"]
    assert (
        "resumed after an interrupted attempt on localhost (it last reported 'localhost check the flag')"
        in outcome.summary
    )
    assert lab.target.read_text() == "hello web\n"  # the idempotent module did not add it twice
    assert lab.markers("localhost") == [".done", ".started"]


# --- previews in flight together share one run ----------------------------------------------------


def previews_while_one_runs(
    lab: Lab, executor: AnsibleExecutor, playbook: str, runs: list[str], **extravars: Any
) -> list[ActionOutcome]:
    """A preview (workflow run `first`) starts; once its ansible-playbook is under way, previews of the
    same action from the workflow runs `runs` arrive together. Their outcomes, in order."""
    request = lab.request(playbook, **extravars)
    first = activity_env(workflow_run_id="first")
    running = threading.Event()
    first.hook = running.set
    with ThreadPoolExecutor(len(runs) + 1) as pool:
        ahead = pool.submit(first.env.run, executor.preview, request)
        assert running.wait(60), "the first preview never reported progress"

        later = [
            pool.submit(activity_env(workflow_run_id=run_id).env.run, executor.preview, request)
            for run_id in runs
        ]
        assert ahead.result().details.get("shared_check_run") is None  # it ran alone, at once
        return [f.result() for f in later]


def test_identical_previews_arriving_during_a_run_share_the_next_one(lab: Lab) -> None:
    outcomes = previews_while_one_runs(lab, lab.executor(), "line.yml", ["a", "b", "c"])
    for outcome in outcomes:
        assert outcome.ok and outcome.changed and "+hello web" in outcome.diff
        assert outcome.details["shared_check_run"] == 3
    assert not lab.target.exists() and lab.markers("localhost") == []


def test_a_preview_whose_key_already_applied_never_takes_a_shared_result(lab: Lab) -> None:
    executor = lab.executor()
    activity_env(workflow_run_id="applied").env.run(executor.apply, lab.request("line.yml"))
    lab.target.unlink()  # so that a real preview would change the file again
    applied, new = previews_while_one_runs(lab, executor, "line.yml", ["applied", "new"])
    assert "nothing repeated" in applied.summary and not applied.changed
    assert new.changed and "+hello web" in new.diff


def test_a_playbook_that_pulls_in_other_files_is_previewed_alone(lab: Lab) -> None:
    # flaky.yml imports line.yml, which could read our per-request variables: no shared run.
    outcomes = previews_while_one_runs(lab, lab.executor(), "flaky.yml", ["a", "b"], flag=str(lab.root / "f"))
    for outcome in outcomes:
        assert outcome.ok and "+hello web" in outcome.diff and "shared_check_run" not in outcome.details


# --- per-host results and failure paths -----------------------------------------------------------


def test_per_host_results_with_a_failing_and_an_unreachable_host(lab: Lab) -> None:
    with pytest.raises(ApplicationError) as err:
        activity_env().env.run(lab.executor().apply, lab.request("hosts.yml", limit="", all_hosts=True))
    message = str(err.value)
    assert err.value.type == "AnsibleTaskFailed" and not err.value.non_retryable
    assert "bad: task 'check the disk' failed: disk full on bad" in message
    assert "ghost unreachable: " in message and "127.0.0.2 port 1" in message
    hosts = failure(err).hosts
    assert set(hosts) == {"good", "bad", "ghost"}  # the marker plays kept to the playbook's hosts too
    assert hosts["good"].model_dump() == {"ok": 1, "changed": 1, "failed": 0, "unreachable": 0, "skipped": 1}
    assert hosts["bad"].failed == 1 and hosts["bad"].changed == 0
    assert hosts["ghost"].unreachable == 1
    # Only hosts that got through carry the done marker; a retry resumes the failed one.
    assert lab.markers("good") == [".done", ".started"]
    assert lab.markers("bad") == [".started"]
    assert (lab.root / "target.txt.good").exists() and not (lab.root / "target.txt.bad").exists()


def test_an_unreachable_alert_host(lab: Lab) -> None:
    with pytest.raises(ApplicationError) as err:
        activity_env().env.run(lab.executor().apply, lab.request("line.yml", limit="ghost"))
    assert err.value.type == "AnsibleUnreachable" and not err.value.non_retryable
    assert "ghost unreachable: " in str(err.value) and "Connection refused" in str(err.value)
    assert failure(err).hosts["ghost"].unreachable == 1


@pytest.mark.parametrize("name", ["missing.yml", "../playbooks/../../etc/passwd"])
def test_a_playbook_that_does_not_exist_is_not_retried(lab: Lab, name: str) -> None:
    with pytest.raises(ApplicationError, match="not found in") as err:
        activity_env().env.run(lab.executor().apply, lab.request(name))
    assert err.value.type == "BadPlaybook" and err.value.non_retryable


def test_a_yaml_syntax_error_names_file_and_line(lab: Lab) -> None:
    with pytest.raises(ApplicationError) as err:
        activity_env().env.run(lab.executor().preview, lab.request("broken.yml"))
    assert err.value.type == "BadPlaybook" and err.value.non_retryable
    assert "YAML parsing failed" in str(err.value)
    assert f"{lab.playbooks / 'broken.yml'}:5:" in str(err.value)


def ansible_tree() -> ProcessTree:
    """What runs under this test's ansible-playbook (and its supervisor) now."""
    ours = [pid for pid, c in process_tree(os.getpid()).items() if "ansible-playbook" in c]
    return {pid: c for root in ours for pid, c in process_tree(root).items()}


def test_cancelling_stops_ansible_playbook_and_its_task(lab: Lab) -> None:
    seen: ProcessTree = {}
    run = activity_env()

    def cancel_once_sleeping() -> None:
        tree = ansible_tree()
        if not seen and any(c.startswith("sleep 60") for c in tree.values()):
            seen.update(tree)
            run.env.cancel()

    run.hook = cancel_once_sleeping
    with pytest.raises(
        CancelledError, match="cancelled during 'localhost hold still'; ansible-playbook stopped"
    ):
        run.env.run(lab.executor().apply, lab.request("slow.yml", started=str(lab.root / "started")))
    assert any("ansible-playbook" in c for c in seen.values()), seen
    assert wait_gone(seen, seconds=5) == {}


def test_a_run_past_its_start_to_close_is_stopped(lab: Lab) -> None:
    # Whatever ran at the last heartbeat before the deadline must be gone after it; how far the run
    # got in 10 s depends on the machine, so the test does not insist on `hold still`.
    seen: ProcessTree = {}
    run = activity_env(seconds=10)
    run.hook = lambda: seen.update(ansible_tree())
    with pytest.raises(
        ApplicationError, match=r"timed out during 'localhost [^']+'; ansible-playbook stopped"
    ) as err:
        run.env.run(lab.executor().apply, lab.request("slow.yml", started=str(lab.root / "started")))
    assert err.value.type == "AnsibleTimeout" and not err.value.non_retryable
    assert any("ansible-playbook" in c for c in seen.values()), seen
    assert wait_gone(seen, seconds=5) == {}


# --- alert text is attacker-controlled ------------------------------------------------------------


@pytest.mark.parametrize("payload", [INJECTION, HEADER_INJECTION])
def test_template_injection_through_extravars_is_refused(lab: Lab, payload: str) -> None:
    pwned = lab.root / "pwned"
    for extravars in ({"service": payload % pwned}, {"options": {"names": ["ok", payload % pwned]}}):
        with pytest.raises(ApplicationError, match="Jinja template marker") as err:
            activity_env().env.run(lab.executor().apply, lab.request("echo.yml", **extravars))
        assert err.value.type == "UnsafeInput" and err.value.non_retryable
    assert not pwned.exists() and not lab.target.exists()


def test_ansible_never_templates_the_extravars_file(lab: Lab) -> None:
    """The second layer on its own: our extravars file, with both injections in it, through ansible-playbook."""
    pwned, header_pwned = lab.root / "pwned", lab.root / "header-pwned"
    values = {
        "service": INJECTION % pwned,
        "note": HEADER_INJECTION % header_pwned,
        "target": str(lab.target),
    }
    extravars = lab.root / "extravars.yml"
    extravars.write_text(untrusted_extravars(values))
    command = [
        ANSIBLE_PLAYBOOK,
        "-i",
        str(lab.inventory()),
        "-l",
        "localhost",
        str(lab.playbooks / "echo.yml"),
    ]
    subprocess.run([*command, "-e", f"@{extravars}"], check=True, capture_output=True)
    assert lab.target.read_text() == f"service={values['service']} note={values['note']}"
    assert not pwned.exists() and not header_pwned.exists()
    # Control: the same values as an inline -e, which ansible-runner makes of an extravars dict, run.
    subprocess.run([*command, "-e", json.dumps(values)], check=True, capture_output=True)
    assert pwned.exists() and header_pwned.exists()


def test_untrusted_extravars_keep_their_types() -> None:
    text = untrusted_extravars({"port": "123", "flag": "true", "empty": "", "count": 3, "tags": ["a"]})
    assert text.startswith("!unsafe")
    assert "port: '123'" in text and "flag: 'true'" in text and "empty: ''" in text and "count: 3" in text


@pytest.mark.parametrize(
    "name", ["ansible_ssh_common_args", "ansible_connection", "remediator_limit", "bad-name"]
)
def test_reserved_or_odd_extravar_names_are_refused(lab: Lab, name: str) -> None:
    with pytest.raises(ApplicationError, match=f"extravar name '{name}' is not allowed") as err:
        activity_env().env.run(lab.executor().apply, lab.request("echo.yml", **{name: "x"}))
    assert err.value.non_retryable


@pytest.mark.parametrize(
    ("label", "host"),
    [
        ("web1", "web1"),
        ("web-1.example.org", "web-1.example.org"),
        ("10.0.0.5", "10.0.0.5"),
        ("10.0.0.5:9100", "10.0.0.5"),
        ("node_exporter:9100", "node_exporter"),
        ("[::1]:9100", "::1"),
        ("fe80::1", "fe80::1"),
    ],
)
def test_alert_hosts_that_name_one_host(label: str, host: str) -> None:
    assert target_host(label) == host


@pytest.mark.parametrize(
    "label",
    [
        "all",
        "ungrouped",
        "web*",
        "web1,web2",
        "web1:web2",
        "-oProxyCommand=touch",
        "@/etc/hosts",
        "~web",
        "!web1",
        "web1 web2",
        "web1&web2",
        "a" * 64,
        "web..1",
        "",
    ],
)
def test_alert_hosts_that_are_patterns_are_refused(label: str) -> None:
    with pytest.raises(ApplicationError, match="is not a hostname or IP address") as err:
        target_host(label)
    assert err.value.type == "UnsafeInput" and err.value.non_retryable


def test_an_alert_host_naming_a_group_is_refused_before_anything_runs(lab: Lab) -> None:
    with pytest.raises(ApplicationError, match="web is not a single host of the inventory") as err:
        activity_env().env.run(lab.executor().apply, lab.request("hosts.yml", limit="web"))
    assert err.value.type == "UnsafeInput" and err.value.non_retryable
    assert not list(lab.root.glob("target.txt.*"))
    assert lab.markers("good") == [] and lab.markers("bad") == []


@pytest.mark.parametrize("activity", ["preview", "apply"])
def test_an_alert_host_outside_the_inventory_is_refused(lab: Lab, activity: str) -> None:
    run = getattr(lab.executor(), activity)
    with pytest.raises(
        ApplicationError, match="alert host 'elsewhere' is not a host of the inventory"
    ) as err:
        activity_env().env.run(run, lab.request("line.yml", limit="elsewhere"))
    assert err.value.type == "UnsafeInput" and err.value.non_retryable
    assert "no hosts to target" in str(err.value) and not lab.target.exists()


@pytest.mark.parametrize("limit", ["127.0.0.2:1", "localhost", ""])
def test_without_an_inventory_nothing_runs(lab: Lab, limit: str) -> None:
    # Before: the alert's host became a one-host inventory and an ssh target of its own.
    with pytest.raises(ApplicationError, match="no Ansible inventory is configured") as err:
        activity_env().env.run(lab.executor(inventory=False).apply, lab.request("line.yml", limit=limit))
    assert err.value.type == "NoInventory" and err.value.non_retryable
    assert not lab.target.exists() and not (lab.root / "markers").exists()


@pytest.mark.parametrize("activity", ["preview", "apply"])
def test_an_empty_limit_never_takes_every_host_as_one_action(lab: Lab, activity: str) -> None:
    run = getattr(lab.executor(), activity)
    with pytest.raises(ApplicationError, match="no host named: this per-host playbook would run on 4") as err:
        activity_env().env.run(run, lab.request("line.yml", limit=""))
    assert err.value.type == "UnsafeInput" and err.value.non_retryable
    assert not lab.target.exists()
    assert all(lab.markers(host) == [] for host in ("localhost", "good", "bad"))


def test_an_empty_limit_runs_when_the_playbook_has_one_host(lab: Lab) -> None:
    (lab.playbooks / "one.yml").write_text(PLAYBOOKS["line.yml"].replace("hosts: all", "hosts: localhost"))
    outcome = activity_env().env.run(lab.executor().apply, lab.request("one.yml", limit=""))
    assert outcome.ok and list(outcome.hosts) == ["localhost"]
    assert lab.target.read_text() == "hello web\n"


def test_marker_plays_cover_exactly_the_playbook_hosts(tmp_path: Path) -> None:
    cases = {
        "- hosts: web\n- hosts: web\n": "web",
        "- hosts: web\n- hosts: [db, cache]\n": "web,db,cache",
        "- hosts: web:&prod\n- hosts: db\n": "all",
        "- import_playbook: other.yml\n": "all",
        "- hosts: all\n  tasks: [\n": "all",
    }
    for text, expected in cases.items():
        (tmp_path / "p.yml").write_text(text)
        assert play_hosts(tmp_path / "p.yml") == expected, text
