"""Ansible executor: real ansible-runner, run as synchronous activities on the worker's thread pool.

preview is `--check --diff`, apply is the real run, rollback runs the action's `rollback_playbook`.
Events become heartbeats (the task name is the progress).

Idempotency lives on the TARGET hosts. Every run goes through wrapper.yml, which imports the action's
playbook between two plays of our own:
  * before it, each host's marker directory (inventory var `remediator_marker_dir`, else
    REMEDIATOR_ANSIBLE_MARKER_DIR) is read: `<sha>.done` means this key already applied there, so the
    host skips the playbook; `<sha>.started` without `.done` means an earlier attempt began and never
    finished, so the playbook runs again (Ansible's modules are idempotent) and the outcome says
    "resumed after an interrupted attempt". Then `.started` is written.
  * after it, `.done` is written on every host that got through without failing.
The key is the request's idempotency key plus the workflow run id, because an incident id (the
workflow id) comes back when the same alert fires again next week and must not look applied.

Alert text is attacker-controlled:
  * extravars reach Ansible as `!unsafe` YAML, so Ansible never templates them (ansible-core 2.19
    trusts `-e '{json}'` and `-e @file` as templates otherwise); Jinja markers and reserved names
    (`ansible_*` would set connection options, `remediator_*` are ours) are refused before that;
  * targets come from the inventory only (REMEDIATOR_ANSIBLE_INVENTORY; without one nothing runs):
    the alert's host only ever names ONE host, which must look like a hostname or IP (no pattern, no
    leading `-` that ssh would take as an option) and be a host of that inventory (`all` or a group
    name would widen the run; the wrapper's guard asks Ansible's own inventory);
  * an empty limit is refused unless the playbook's hosts are one inventory host or the action says
    `all_hosts: true`: a per-host playbook never takes every host as one action.

Stopping: ansible-playbook runs under `activities.ansible.supervisor`, which stops its whole process
tree on SIGTERM (ansible's workers call setsid, so killing a process group, as ansible-runner does,
would leave the running task behind) and gets that SIGTERM from the kernel when the worker dies. On
cancel or timeout we send it SIGTERM, and ansible-runner SIGKILLs only after `STOP_GRACE`.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import itertools
import json
import os
import re
import shlex
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import ansible_runner
import yaml
from temporalio import activity
from temporalio.exceptions import CancelledError

from activities.ansible.batches import Batches
from activities.ansible.inputs import check_extravars, target_host, untrusted_extravars
from activities.config import Settings
from activities.errors import PermanentError, TemporaryError
from activities.preview_slots import PreviewSlots, activity_deadline, wait_in_activity
from workflows.actions import AnsibleAction
from workflows.activity_names import ANSIBLE_APPLY, ANSIBLE_PREVIEW, ANSIBLE_ROLLBACK, ANSIBLE_SNAPSHOT
from workflows.error_types import ErrorType
from workflows.plans import ActionOutcome, ActionRequest, HostResult

STOP_GRACE = 10.0  # seconds between SIGTERM and SIGKILL when a run is cancelled or times out
_POLL_SECONDS = 1  # how often ansible-runner asks whether to stop; also the idle heartbeat cadence
_STAT_KEYS = {
    "ok": "ok",
    "changed": "changed",
    "failures": "failed",
    "dark": "unreachable",
    "skipped": "skipped",
}
# A playbook that names our variables or reads other files is never previewed in a shared run.
_SHARE_BLOCKERS = re.compile(r"remediator_|import_|include_|roles|vars_files")
_RC_PARSER_ERROR = 4  # ansible-playbook's exit code for a playbook it cannot parse

# Task names of wrapper.yml that the events are recognised by.
_GUARD_TASK = "remediator: refuse an alert host that is a group or not in the inventory"
_READ_TASK = "remediator: read the markers"
_WRAPPER = resources.files("activities.ansible").joinpath("wrapper.yml").read_text()


def play_hosts(playbook: Path) -> str:
    """The union of the playbook's host patterns, so the marker plays touch exactly its hosts."""
    try:
        plays = yaml.safe_load(playbook.read_text())
    except (OSError, yaml.YAMLError):
        return "all"  # Ansible itself reports the real problem, with file and line
    patterns: list[str] = []
    for play in plays if isinstance(plays, list) else []:
        hosts = play.get("hosts") if isinstance(play, dict) else None
        if isinstance(hosts, list):
            hosts = ",".join(str(h) for h in hosts)
        if not isinstance(hosts, str) or not hosts:
            return "all"  # an import_playbook or something we do not understand: be wide, not wrong
        patterns.append(hosts)
    unique = list(dict.fromkeys(patterns))
    if len(unique) == 1:
        return unique[0]
    # A union of patterns with intersections (&) or exclusions (!) would not mean what it says.
    if not unique or any(c in p for p in unique for c in "&!"):
        return "all"
    return ",".join(unique)


def _host_results(stats: dict[str, dict[str, int]] | None) -> dict[str, HostResult]:
    hosts: dict[str, HostResult] = {}
    for key, name in _STAT_KEYS.items():
        for host, count in (stats or {}).get(key, {}).items():
            setattr(hosts.setdefault(host, HostResult()), name, count)
    return hosts


def _diff_text(diff: dict[str, Any]) -> str:
    if prepared := diff.get("prepared"):
        return str(prepared)
    if "before" not in diff and "after" not in diff:
        return ""
    before, after = str(diff.get("before", "")), str(diff.get("after", ""))
    lines = difflib.unified_diff(
        before.splitlines(keepends=True),
        after.splitlines(keepends=True),
        fromfile=str(diff.get("before_header", "before")),
        tofile=str(diff.get("after_header", "after")),
    )
    return "".join(lines)


def _ansible_error(stdout: str) -> str:
    """Ansible's own error: the `[ERROR]` line through the next blank line (it names file and line)."""
    lines = stdout.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(("[ERROR]", "ERROR!")):
            return " ".join(part.strip() for part in itertools.takewhile(str.strip, lines[i:]))
    return stdout.strip()[-500:] or "no output"


# How Ansible reports a task check mode skipped instead of predicting it (command/shell/script, and
# any module without check-mode support), as opposed to a `when` that was false.
_CHECK_MODE_SKIP = re.compile(r"would have run if not in check mode|does not support check mode")


def _unpredictable(modules: list[str]) -> str:
    if not modules:
        return ""
    return f"{len(modules)} task(s) cannot be predicted in check mode ({'/'.join(sorted(set(modules)))}); "


@dataclass
class _Run:
    """What one ansible-runner invocation reported, fed by its events and polled for stopping."""

    wrapper: str
    deadline: float | None
    what: str  # "ansible check of x.yml", the start of every summary and error
    check: bool
    limit: str
    shared: int = 1  # how many previews this run serves
    progress: str = "starting ansible-playbook"
    pid: int | None = None
    stop_reason: str = ""
    stop_sent: float = 0.0
    diffs: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    guard_refused: bool = False
    task_failed: bool = False  # as opposed to hosts being unreachable
    found: dict[str, set[str]] = field(default_factory=dict)  # marker file names on each host
    bookkeeping: dict[str, HostResult] = field(default_factory=dict)
    unpredictable: list[str] = field(default_factory=list)  # modules check mode skipped, per task run
    status: str = ""
    rc: int | None = None
    stats: dict[str, dict[str, int]] | None = None
    stdout: str = ""

    def finish(self, runner: Any) -> None:
        """Keep what the outcome needs; ansible-runner reads it from artifacts that are deleted next."""
        self.status, self.rc, self.stats = runner.status, runner.rc, runner.stats
        self.stdout = runner.stdout.read()

    def on_event(self, event: dict[str, Any]) -> bool:
        self.pid = self.pid or event.get("pid")
        kind = event.get("event", "")
        data = event.get("event_data", {})
        host, task, res = data.get("host", ""), data.get("task", ""), data.get("res", {})
        ours = str(data.get("task_path", "")).startswith(self.wrapper)
        if task:
            self.progress = f"{host} {task}".strip()
            activity.heartbeat(self.progress)
        if kind == "runner_on_failed" and not data.get("ignore_errors"):
            self.guard_refused |= task == _GUARD_TASK
            self.task_failed = True
            detail = res.get("msg", "failed")
            if stderr := str(res.get("stderr", "")).strip():
                detail = f"{detail}: {stderr[:300]}"
            self.failures.append(f"{host}: task {task!r} failed: {detail}")
        elif kind == "runner_on_unreachable":
            self.failures.append(f"{host} unreachable: {res.get('msg', 'unreachable')}")
        elif kind == "runner_on_ok" and ours:
            if task == _READ_TASK:
                self.found[host] = {str(name).strip() for name in res.get("stdout_lines", [])}
            counts = self.bookkeeping.setdefault(host, HostResult())
            counts.ok += 1
            counts.changed += bool(res.get("changed"))
        elif (
            kind == "runner_on_skipped" and not ours and _CHECK_MODE_SKIP.search(str(event.get("stdout", "")))
        ):
            # shell/command (and modules without check mode) would run for real: no prediction.
            self.unpredictable.append(str(data.get("task_action", "?")).rpartition(".")[2])
        elif kind == "runner_on_skipped" and ours:
            self.bookkeeping.setdefault(host, HostResult()).skipped += 1
        elif kind == "runner_on_ok":
            diffs = res.get("diff", [])
            for diff in diffs if isinstance(diffs, list) else [diffs]:
                if isinstance(diff, dict) and (text := _diff_text(diff)):
                    self.diffs.append(text)
        return True

    def should_cancel(self) -> bool:
        """ansible-runner's cancel_callback: heartbeat, and stop gracefully on cancel or deadline."""
        activity.heartbeat(self.progress)
        if not self.stop_reason:
            if activity.is_cancelled():
                self.stop_reason = "cancelled"
            elif self.deadline is not None and time.monotonic() > self.deadline:
                self.stop_reason = "timed out"
            else:
                return False
            try:
                # The supervisor leads ansible-playbook's process group (ansible-runner gave it a session).
                supervisor = os.getpgid(self.pid) if self.pid else None
            except ProcessLookupError:
                supervisor = None
            if supervisor is None or supervisor == os.getpgrp():
                return True  # no event yet, so no ansible worker yet: ansible-runner's SIGKILL is enough
            os.kill(supervisor, signal.SIGTERM)
            self.stop_sent = time.monotonic()
        return time.monotonic() - self.stop_sent > STOP_GRACE

    def marked(self, marker: str, suffix: str) -> set[str]:
        """The hosts holding `<marker><suffix>`: `.done` (applied) or `.started` (attempted)."""
        return {host for host, names in self.found.items() if marker + suffix in names}

    def hosts(self) -> dict[str, HostResult]:
        """Per-host counts of the action's own tasks: our marker tasks' ok/changed/skipped removed."""
        hosts = _host_results(self.stats)
        for host, ours in self.bookkeeping.items():
            if counts := hosts.get(host):
                counts.ok = max(counts.ok - ours.ok, 0)
                counts.changed = max(counts.changed - ours.changed, 0)
                counts.skipped = max(counts.skipped - ours.skipped, 0)
        return hosts


def _marker(key: str) -> str:
    """The marker file stem of an idempotency key: a hash, so no key text reaches a path."""
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def _action(request: ActionRequest) -> AnsibleAction:
    if not isinstance(request.action, AnsibleAction):
        raise PermanentError(
            f"not an Ansible action: {request.action.executor}", type=ErrorType.WRONG_EXECUTOR
        )
    return request.action


class AnsibleExecutor:
    def __init__(self, settings: Settings, slots: PreviewSlots | None = None) -> None:
        self._slots = slots or PreviewSlots(settings.worker_preview_runs)
        self._playbook_dir = settings.ansible_playbook_dir.resolve()
        self._inventory = settings.ansible_inventory
        self._marker_dir = settings.ansible_marker_dir
        self._ansible_playbook = str(Path(sys.executable).parent / "ansible-playbook")
        self._previews: Batches[_Run] = Batches()

    def _playbook(self, name: str) -> Path:
        path = (self._playbook_dir / name).resolve()
        if not path.is_relative_to(self._playbook_dir) or not path.is_file():
            raise PermanentError(
                f"playbook {name!r} not found in {self._playbook_dir}", type=ErrorType.BAD_PLAYBOOK
            )
        return path

    def _limit(self, limit: str) -> str:
        """--limit: one host of the configured inventory (the guard checks it is one), or none."""
        if not self._inventory:
            raise PermanentError(
                "no Ansible inventory is configured (REMEDIATOR_ANSIBLE_INVENTORY): Ansible runs only "
                "on inventory hosts, never on one an alert names",
                type=ErrorType.NO_INVENTORY,
            )
        return target_host(limit) if limit else ""

    def _run(self, request: ActionRequest, playbook: str, check: bool, marker_key: str) -> ActionOutcome:
        return self._outcome(request, self._execute(request, playbook, check, [marker_key]), marker_key)

    def _execute(self, request: ActionRequest, playbook: str, check: bool, marker_keys: list[str]) -> _Run:
        """One ansible-playbook run. The first key's marker decides whether the playbook is skipped
        as already applied; the markers of the other previews sharing the run are only read."""
        action = _action(request)
        check_extravars(action.extravars)
        path = self._playbook(playbook)
        limit = self._limit(action.limit)
        with tempfile.TemporaryDirectory(prefix="remediator-ansible-") as private_dir:
            wrapper = Path(private_dir, "remediator.yml")
            wrapper.write_text(_WRAPPER)
            Path(private_dir, "env").mkdir()
            ours = {
                "remediator_idempotency_key": request.idempotency_key,
                "remediator_marker_key": marker_keys[0],
                "remediator_marker": _marker(marker_keys[0]),
                "remediator_marker_patterns": [
                    _marker(k) + s for k in marker_keys for s in (".done", ".started")
                ],
                "remediator_playbook": str(path),
                "remediator_limit": limit,
                "remediator_all_hosts": action.all_hosts,
                "remediator_default_marker_dir": self._marker_dir,
            }
            Path(private_dir, "env", "extravars").write_text(
                untrusted_extravars({**action.extravars, **ours})
            )
            # A file, because ansible-runner drops a `settings=` dict when env/settings does not exist.
            Path(private_dir, "env", "settings").write_text(json.dumps({"pexpect_timeout": _POLL_SECONDS}))
            run = _Run(
                wrapper=str(wrapper),
                deadline=activity_deadline(STOP_GRACE),
                what=f"ansible {'check' if check else 'run'} of {playbook}",
                check=check,
                limit=limit,
                shared=len(marker_keys),
            )
            supervisor = [sys.executable, "-m", "activities.ansible.supervisor", str(os.getpid())]
            argv = [*supervisor, self._ansible_playbook, str(wrapper)]
            # The host pattern is copied from the operator's playbook, so Ansible may template it: an
            # inline -e is trusted, unlike the file above.
            argv += ["-e", json.dumps({"remediator_hosts": play_hosts(path)})]
            with self._slots.held(run.what) if check else contextlib.nullcontext():
                runner = ansible_runner.run(
                    private_data_dir=private_dir,
                    binary=argv[0],
                    # -v in check mode: a skipped task's result, which alone tells "check mode cannot run
                    # this" from a false `when`, is shown only then.
                    cmdline=shlex.join([*argv[1:], *(["--check", "--diff", "-v"] if check else ["--diff"])]),
                    inventory=self._inventory,
                    limit=limit or None,
                    event_handler=run.on_event,
                    cancel_callback=run.should_cancel,
                    envvars={
                        "ANSIBLE_NOCOLOR": "1",
                        # ansible-runner turns host key checking off; alert-named hosts need it on.
                        "ANSIBLE_HOST_KEY_CHECKING": os.environ.get("ANSIBLE_HOST_KEY_CHECKING", "True"),
                    },
                    quiet=True,
                    suppress_env_files=True,
                )
            run.finish(runner)
        return run

    def _outcome(self, request: ActionRequest, run: _Run, marker_key: str) -> ActionOutcome:
        what, check, limit, marker = run.what, run.check, run.limit, _marker(marker_key)
        hosts = run.hosts()
        done = run.marked(marker, ".done")
        fresh = sorted(set(hosts) - done)
        resumed = sorted(run.marked(marker, ".started") - done)
        details: dict[str, Any] = {"already_applied": sorted(done), "resumed": resumed}
        if run.shared > 1:
            details["shared_check_run"] = run.shared
        if resumed and (previous := activity.info().heartbeat_details):
            details["previous_attempt_progress"] = str(previous[0])
        changed = sum(hosts[h].changed for h in fresh)
        counts = ", ".join(
            f"{h}: ok={r.ok} changed={r.changed} failed={r.failed} unreachable={r.unreachable} skipped={r.skipped}"
            for h, r in hosts.items()
        )
        outcome = ActionOutcome(
            ok=True,
            summary=f"{what}: {_unpredictable(run.unpredictable)}{'would change' if check else 'changed'} "
            f"{changed} {'other ' if run.unpredictable else ''}task(s); {counts}",
            changed=changed > 0,
            hosts=hosts,
            diff="\n".join(run.diffs),
            details=details,
        )
        if run.stop_reason == "cancelled":
            raise CancelledError(f"{what} cancelled during {run.progress!r}; ansible-playbook stopped")
        if run.stop_reason:
            raise TemporaryError(
                f"{what} timed out during {run.progress!r}; ansible-playbook stopped",
                type=ErrorType.ANSIBLE_TIMEOUT,
            )
        failed = outcome.model_copy(update={"ok": False})
        if run.failures:
            shown = "; ".join(run.failures[:5]) + (
                f"; and {len(run.failures) - 5} more" if len(run.failures) > 5 else ""
            )
            if run.guard_refused:
                raise PermanentError(f"{what} refused: {shown}", failed, type=ErrorType.UNSAFE_INPUT)
            kind = ErrorType.ANSIBLE_TASK_FAILED if run.task_failed else ErrorType.ANSIBLE_UNREACHABLE
            raise TemporaryError(f"{what} failed: {shown}", failed, type=kind)
        if run.status != "successful" and run.rc != _RC_PARSER_ERROR and limit and not hosts:
            # Ansible found no host by that name: the alert named a host outside the inventory.
            raise PermanentError(
                f"{what} refused: alert host {limit!r} is not a host of the inventory "
                f"({_ansible_error(run.stdout)})",
                failed,
                type=ErrorType.UNSAFE_INPUT,
            )
        if run.status != "successful":
            # A parse error, or one before any host ran (inventory, options, no host to target), is
            # configuration: a retry would fail the same way.
            message = f"{what} failed (rc {run.rc}): {_ansible_error(run.stdout)}"
            if run.rc == _RC_PARSER_ERROR:
                raise PermanentError(message, failed, type=ErrorType.BAD_PLAYBOOK)
            raise (TemporaryError if hosts else PermanentError)(message, failed, type=ErrorType.ANSIBLE_ERROR)
        if not hosts:
            raise PermanentError(f"{what} matched no hosts", type=ErrorType.NO_HOSTS)
        key = request.idempotency_key
        if not fresh:
            outcome.summary = (
                f"{what}: already applied ({key}) on {', '.join(sorted(done))}; nothing repeated"
            )
            return outcome
        if done:
            outcome.summary += f"; already applied ({key}) on {', '.join(sorted(done))}, not repeated"
        if resumed:
            progress = details.get("previous_attempt_progress")
            outcome.summary += f"; resumed after an interrupted attempt on {', '.join(resumed)}" + (
                f" (it last reported {progress!r})" if progress else ""
            )
        return outcome

    def _marker_key(self, request: ActionRequest) -> str:
        return f"{request.idempotency_key}@{activity.info().workflow_run_id}"

    def _shared(self, request: ActionRequest) -> tuple[str, ...] | None:
        """What makes two previews the same run, or None when this one must run alone: a playbook
        that reads our per-request variables (the idempotency key) or pulls in other files (which
        might) would show the first preview's key in the others' diffs."""
        action = _action(request)
        if _SHARE_BLOCKERS.search(self._playbook(action.playbook).read_text(errors="replace")):
            return None
        return (
            action.playbook,
            json.dumps(action.extravars, sort_keys=True),
            action.limit,
            str(action.all_hosts),
        )

    def _wait(self, event: threading.Event) -> None:
        if not wait_in_activity(
            event.wait,
            "waiting for a shared ansible check-mode run",
            "ansible check cancelled while waiting for a shared run",
        ):
            raise TemporaryError(
                "ansible check timed out waiting for a shared run", type=ErrorType.ANSIBLE_TIMEOUT
            )

    @activity.defn(name=ANSIBLE_PREVIEW, no_thread_cancel_exception=True)
    def preview(self, request: ActionRequest) -> ActionOutcome:
        """Check mode. Identical previews in flight together share one run (activities.ansible.batches);
        each still gets its own outcome from its own markers."""
        playbook, marker_key = _action(request).playbook, self._marker_key(request)
        if (key := self._shared(request)) is None:
            return self._run(request, playbook, check=True, marker_key=marker_key)
        batch, owner = self._previews.join(key, marker_key)
        if owner:
            run = None
            try:
                run = self._execute(request, playbook, True, self._previews.start(key, batch, self._wait))
            finally:
                self._previews.end(key, batch, run)
            return self._outcome(request, run, marker_key)
        self._wait(batch.ended)
        run = batch.result
        # The owner's `.done` decided whether the playbook ran; this preview may use the run only if
        # its own marker would have decided the same (else, and after a failed run, it runs alone).
        if (
            run is None
            or run.stop_reason
            or run.marked(_marker(marker_key), ".done") != run.marked(_marker(batch.keys[0]), ".done")
        ):
            return self._run(request, playbook, check=True, marker_key=marker_key)
        return self._outcome(request, run, marker_key)

    @activity.defn(name=ANSIBLE_SNAPSHOT)
    def snapshot(self, request: ActionRequest) -> dict[str, Any]:
        """Ansible's undo is the action's rollback playbook; the target hosts hold what was applied."""
        return {"rollback_playbook": _action(request).rollback_playbook}

    @activity.defn(name=ANSIBLE_APPLY, no_thread_cancel_exception=True)
    def apply(self, request: ActionRequest) -> ActionOutcome:
        return self._run(
            request, _action(request).playbook, check=False, marker_key=self._marker_key(request)
        )

    @activity.defn(name=ANSIBLE_ROLLBACK, no_thread_cancel_exception=True)
    def rollback(self, request: ActionRequest) -> ActionOutcome:
        rollback = _action(request).rollback_playbook
        if not rollback:
            return ActionOutcome(ok=True, summary="no rollback playbook declared; nothing to undo")
        return self._run(request, rollback, check=False, marker_key=f"{self._marker_key(request)}/rollback")
