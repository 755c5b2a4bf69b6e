"""Terraform executor: real Terraform as synchronous activities on the worker's thread pool.

preview   copies the module into a working directory of its own for this incident step, writes the
          variables, runs `init` and `plan -out`, and records the plan with a hash of the configuration
          (module files + variables + workspace) and the state version it was planned against.
snapshot  copies the state and the variables last applied to it; written once per step.
apply     applies exactly the recorded plan file, after checking that the configuration hash and the
          state are still what the approver saw. Keyed by the request's idempotency key.
rollback  `previous`: plan and apply the module with the variables the snapshot recorded (or destroy
          everything if the state was empty); `destroy`: destroy what exists now but did not then.

Terraform runs in a detached child process (see runner.py for why); its `-json` messages
become heartbeats naming the resource in flight, and cancellation becomes SIGINT.

Under REMEDIATOR_TERRAFORM_WORK_DIR:
  <incident>/<step>/module/         working copy: module, terraform.tfvars.json, our two .tf.json files
  <incident>/<step>/tfplan          the plan the approver saw; preview.json records its sha256 and hash
  <incident>/<step>/snapshot/       the state before apply, and snapshot.json
  <incident>/<step>/runs/<name>/    one Terraform command each (apply and rollback-apply are keyed)
  <incident>/<step>/terraform.tfstate        state of a step without a workspace
  workspaces/<name>/terraform.tfstate       state shared by every incident naming that workspace
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from temporalio import activity
from temporalio.exceptions import CancelledError

from activities.config import Settings
from activities.errors import PermanentError, TemporaryError
from activities.preview_slots import PreviewSlots
from activities.terraform import report
from activities.terraform.files import (
    MARKER_OUTPUT,
    StateMeta,
    config_digest,
    file_sha256,
    prepare_workdir,
    read_json,
    read_state,
    safe_name,
    write_json,
)
from activities.terraform.runner import (
    Directive,
    RunDetached,
    RunResult,
    RunStatus,
    StopTimeout,
    TerraformRun,
    terraform_command,
)
from workflows.actions import TerraformAction
from workflows.activity_names import (
    TERRAFORM_APPLY,
    TERRAFORM_PREVIEW,
    TERRAFORM_ROLLBACK,
    TERRAFORM_SNAPSHOT,
)
from workflows.error_types import ErrorType
from workflows.plans import ActionOutcome, ActionRequest


@dataclass
class Step:
    """Where one incident step keeps its files and which state it works on."""

    request: ActionRequest
    action: TerraformAction
    dir: Path
    state_path: Path
    backend: dict[str, str]
    env: dict[str, str]

    @property
    def module_dir(self) -> Path:
        return self.dir / "module"

    @property
    def plan_file(self) -> Path:
        return self.dir / "tfplan"

    @property
    def applied_file(self) -> Path:
        """The variables last applied to this state, kept beside it; `previous` rollback needs them."""
        return self.state_path.with_name("remediator-applied.json")

    def run(self, name: str) -> TerraformRun:
        return TerraformRun(self.dir / "runs" / name)


class TerraformExecutor:
    def __init__(self, settings: Settings, slots: PreviewSlots | None = None) -> None:
        self._slots = slots or PreviewSlots(settings.worker_preview_runs)
        self._modules = settings.terraform_modules_dir.resolve()
        self._work = settings.terraform_work_path
        self._binary = settings.terraform_bin
        self._lock_timeout = f"-lock-timeout={settings.terraform_lock_timeout}"
        self._grace = settings.terraform_stop_grace.total_seconds()

    # --- plumbing -------------------------------------------------------------------------------

    def _step(self, request: ActionRequest) -> Step:
        action = request.action
        if not isinstance(action, TerraformAction):
            raise PermanentError(f"not a Terraform action: {action.executor}", type=ErrorType.WRONG_EXECUTOR)
        step_dir = self._work / safe_name(request.incident_id) / safe_name(request.step)
        if not action.workspace:
            state = step_dir / "terraform.tfstate"
            return Step(request, action, step_dir, state, {"path": str(state)}, {"TF_WORKSPACE": "default"})
        spaces = self._work / "workspaces"
        backend = {"path": str(spaces / "default" / "terraform.tfstate"), "workspace_dir": str(spaces)}
        state = spaces / action.workspace / "terraform.tfstate"
        return Step(request, action, step_dir, state, backend, {"TF_WORKSPACE": action.workspace})

    def _source(self, module: str) -> Path:
        path = (self._modules / module).resolve()
        if not path.is_relative_to(self._modules):
            raise PermanentError(
                f"module {module!r} resolves outside the modules directory {self._modules}",
                type=ErrorType.BAD_MODULE,
            )
        if not path.is_dir() or not (any(path.glob("*.tf")) or any(path.glob("*.tf.json"))):
            raise PermanentError(
                f"module {module!r} not found in {self._modules} (no .tf files there)",
                type=ErrorType.BAD_MODULE,
            )
        return path

    def _command(self) -> list[str]:
        if not self._binary:
            return terraform_command("")
        found = shutil.which(self._binary)
        if not found:
            raise PermanentError(
                f"REMEDIATOR_TERRAFORM_BIN={self._binary!r} is not an executable on PATH",
                type=ErrorType.TERRAFORM_MISSING,
            )
        return terraform_command(found)

    def _terraform(self, step: Step, name: str, args: list[str], cwd: Path) -> RunResult:
        """Run a read-only command and follow it to the end. Run names carry the attempt number, so a
        finished run of the same name is an earlier call's in this attempt and is simply replaced."""
        run = step.run(name)
        if run.status() in (RunStatus.FINISHED, RunStatus.DIED):
            shutil.rmtree(run.dir)
        run.launch([*self._command(), *args], cwd, step.env)
        return self._follow(run, name)

    def _follow(self, run: TerraformRun, what: str) -> RunResult:
        current: dict[str, Any] = {"run": what}

        def on_event(event: dict[str, Any]) -> None:
            if found := report.progress(event):
                current.update(found)
                activity.heartbeat(dict(current))

        def poll() -> Directive:
            activity.heartbeat(dict(current))
            details = activity.cancellation_details()
            if activity.is_worker_shutdown() or (details is not None and details.worker_shutdown):
                return Directive.DETACH
            return Directive.INTERRUPT if activity.is_cancelled() else Directive.CONTINUE

        try:
            result = run.follow(on_event, poll, self._grace)
        except RunDetached:
            # Graceful worker shutdown: Terraform carries on detached and the retry re-attaches.
            raise TemporaryError(
                f"worker shutting down; terraform {what} keeps running", type=ErrorType.WORKER_SHUTDOWN
            ) from None
        except StopTimeout:
            raise PermanentError(
                f"terraform {what} did not stop within {self._grace:g}s of SIGINT; see {run.dir}",
                type=ErrorType.STOP_TIMEOUT,
            ) from None
        if result.interrupted and activity.is_cancelled():
            raise CancelledError(f"terraform {what} interrupted by cancellation: {report.error_text(result)}")
        return result

    def _fail(self, what: str, step: Step, result: RunResult, retryable: bool) -> NoReturn:
        message = f"terraform {what} of module {step.action.module!r} failed: {report.error_text(result)}"
        if report.has_diagnostic(result, report.LOCK_ERROR):
            raise TemporaryError(
                message, type=ErrorType.STATE_LOCKED
            )  # the holder finishes; Temporal retries
        if report.has_diagnostic(result, report.STALE_PLAN):
            raise PermanentError(f"{message}; preview and approve again", type=ErrorType.STALE_PLAN)
        if what in ("init", "plan") and report.has_config_error(result):
            raise PermanentError(message, type=ErrorType.BAD_MODULE)
        raise (TemporaryError if retryable else PermanentError)(message, type=ErrorType.TERRAFORM_FAILED)

    def _resume(self, step: Step, run: TerraformRun, planned: dict[str, Any]) -> RunStatus:
        """Status of an earlier attempt's run. One that failed before changing anything (a lost race
        for the state lock, say) is set aside, so that this attempt checks and starts it afresh. One
        whose supervisor died counts as unchanged only if the state agrees."""
        status = run.status()
        if status in (RunStatus.NEW, RunStatus.RUNNING):
            return status
        result = run.result()
        if status is RunStatus.FINISHED and result.rc == 0:
            return status
        untouched = not report.started_changes(result)
        if untouched and (status is RunStatus.FINISHED or read_state(step.state_path).version == planned):
            run.dir.rename(run.dir.with_name(f"{run.dir.name}.failed-{activity.info().attempt}"))
            return RunStatus.NEW
        if status is RunStatus.DIED:
            raise PermanentError(
                f"the {run.dir.name} run of {step.request.idempotency_key} died mid-way without recording "
                f"how it ended; resources may be partly changed (state now {read_state(step.state_path).version}, "
                f"planned against {planned}). Inspect {run.dir}, then preview and approve again",
                type=ErrorType.INTERRUPTED,
            )
        return status

    def _apply_plan(self, step: Step, run: TerraformRun, plan: Path, cwd: Path) -> None:
        args = ["apply", "-input=false", "-json", "-auto-approve", self._lock_timeout, str(plan)]
        run.launch([*self._command(), *args], cwd, step.env)

    def _record_applied(self, step: Step, variables: dict[str, Any] | None, marker: str) -> StateMeta:
        """Keep the variables beside the state, but only while the state is still the one we wrote
        (its marker output says so): a late retry must not claim a newer apply's state."""
        state = read_state(step.state_path)
        ours = state.outputs.get(MARKER_OUTPUT) == marker
        if variables is not None and ours:
            record = {**state.version, "variables": variables, "module": step.action.module}
            write_json(step.applied_file, {**record, "by": marker})
        elif variables is None and (read_json(step.applied_file) or {}).get("by") in (
            step.request.idempotency_key,
            marker,
            None,
        ):
            step.applied_file.unlink(missing_ok=True)
        return state

    def _plan(self, step: Step, name: str, cwd: Path, plan: Path, extra: list[str]) -> RunResult:
        init = self._terraform(step, f"{name}-init", ["init", "-input=false", "-json"], cwd)
        if init.rc != 0:
            self._fail("init", step, init, retryable=False)
        args = ["plan", "-input=false", "-json", "-detailed-exitcode", self._lock_timeout, f"-out={plan}"]
        result = self._terraform(step, f"{name}-plan", [*args, *extra], cwd)
        if result.rc not in (0, 2):
            self._fail("plan", step, result, retryable=True)
        return result

    # --- activities -----------------------------------------------------------------------------

    @activity.defn(name=TERRAFORM_PREVIEW, no_thread_cancel_exception=True)
    def preview(self, request: ActionRequest) -> ActionOutcome:
        step = self._step(request)
        action = step.action
        if step.run("apply").status() is not RunStatus.NEW:
            raise PermanentError(
                f"{request.idempotency_key} was already applied; a new preview would replace its plan",
                type=ErrorType.APPLIED,
            )
        source = self._source(action.module)
        digest = config_digest(source, action.variables, action.workspace)
        prepare_workdir(step.module_dir, source, action.variables, step.backend, request.idempotency_key)
        before = read_state(step.state_path)
        name = f"preview-{activity.info().attempt}"
        with self._slots.held(f"terraform preview of {action.module}"):
            plan = self._plan(step, name, step.module_dir, step.plan_file, [])
            # Terraform renders the diff people know from `terraform plan`; the counts come from -json.
            show = ["show", "-no-color", str(step.plan_file)]
            text = self._terraform(step, f"{name}-show", show, step.module_dir)
        if text.rc != 0:
            self._fail("show", step, text, retryable=True)
        message, counts = report.change_summary(plan)
        record = {
            "config_hash": digest,
            "plan_sha256": file_sha256(step.plan_file),
            "planned_state": before.version,
            "resources": report.planned_resources(plan),
            "counts": counts,
            "workspace": action.workspace or f"(this step: {step.state_path})",
        }
        write_json(step.dir / "preview.json", record)
        warnings = report.diagnostics(plan, "warning")
        return ActionOutcome(
            ok=True,
            summary=f"{action.module}: {message or 'no changes'}",
            changed=any(counts.values()),
            diff=report.text(text),
            details={**record, "warnings": warnings} if warnings else record,
        )

    @activity.defn(name=TERRAFORM_SNAPSHOT, no_thread_cancel_exception=True)
    def snapshot(self, request: ActionRequest) -> dict[str, Any]:
        """The state and variables before apply. Written once: a retry must not snapshot our own apply."""
        step = self._step(request)
        record_file = step.dir / "snapshot" / "snapshot.json"
        if (recorded := read_json(record_file)) is not None:
            return dict(recorded)
        state = read_state(step.state_path)
        copy = step.dir / "snapshot" / "terraform.tfstate"
        copy.parent.mkdir(parents=True, exist_ok=True)
        if step.state_path.exists():
            shutil.copy2(step.state_path, copy)
        applied = read_json(step.applied_file) or {}
        # Variables count only when they belong to this very state version; anything else is a guess.
        known = applied.get("serial") == state.serial and applied.get("lineage") == state.lineage
        record = {
            **state.version,
            "resources": state.resources,
            "previous_variables": applied.get("variables") if known else None,
            "state_copy": str(copy) if step.state_path.exists() else "",
        }
        write_json(record_file, record)
        return record

    @activity.defn(name=TERRAFORM_APPLY, no_thread_cancel_exception=True)
    def apply(self, request: ActionRequest) -> ActionOutcome:
        step = self._step(request)
        preview = read_json(step.dir / "preview.json")
        if preview is None:
            raise PermanentError(
                f"{request.idempotency_key} has no recorded preview; preview and approve it first",
                type=ErrorType.NOT_PREVIEWED,
            )
        run = step.run("apply")
        status = self._resume(step, run, preview["planned_state"])
        if status is RunStatus.NEW:
            state = read_state(step.state_path)
            if state.outputs.get(MARKER_OUTPUT) == request.idempotency_key:
                # The run record is gone but Terraform's state says this very action applied it.
                return ActionOutcome(
                    ok=True,
                    summary=f"{step.action.module}: already applied ({request.idempotency_key}), "
                    f"recorded in the Terraform state at serial {state.serial}",
                )
            self._check_approved(step, preview, state)
            self._apply_plan(step, run, step.plan_file, step.module_dir)
        result = self._follow(run, "apply")
        if result.rc != 0:
            self._fail("apply", step, result, retryable=not report.started_changes(result))
        state = self._record_applied(step, step.action.variables, request.idempotency_key)
        note = {
            RunStatus.RUNNING: "re-attached to the earlier attempt's apply; ",
            RunStatus.FINISHED: "already applied; ",
        }.get(status, "")
        return self._outcome(step, result, f"{note}{report.change_summary(result)[0]}", state, preview)

    def _check_approved(self, step: Step, preview: dict[str, Any], state: StateMeta) -> None:
        action = step.action
        digest = config_digest(self._source(action.module), action.variables, action.workspace)
        if digest != preview["config_hash"]:
            raise PermanentError(
                f"the configuration of module {action.module!r} changed since the preview was approved "
                f"(hash {preview['config_hash'][:12]} -> {digest[:12]}); preview and approve again",
                type=ErrorType.CONFIGURATION_CHANGED,
            )
        if not step.plan_file.exists() or file_sha256(step.plan_file) != preview["plan_sha256"]:
            raise PermanentError(
                f"the plan file {step.plan_file} is not the one previewed; preview and approve again",
                type=ErrorType.PLAN_CHANGED,
            )
        if state.version != preview["planned_state"]:
            raise PermanentError(
                f"the Terraform state changed since the preview (planned against {preview['planned_state']}, "
                f"now {state.version}): another apply ran on it; preview and approve again",
                type=ErrorType.STALE_PLAN,
            )

    def _outcome(
        self, step: Step, result: RunResult, summary: str, state: StateMeta, extra: dict[str, Any]
    ) -> ActionOutcome:
        applied = report.applied_resources(result)
        _, counts = report.change_summary(result)
        lines = [f"{r['action']:>8} {r['address']} ({r['seconds']}s)" for r in applied]
        return ActionOutcome(
            ok=True,
            summary=f"{step.action.module}: {summary}",
            changed=any(counts.values()),
            diff="\n".join(lines),
            details={
                "resources": applied,
                "counts": counts,
                "outputs": report.outputs(result),
                "state": state.version,
                "idempotency_key": step.request.idempotency_key,
                **{k: extra[k] for k in ("config_hash", "plan_sha256") if k in extra},
            },
        )

    @activity.defn(name=TERRAFORM_ROLLBACK, no_thread_cancel_exception=True)
    def rollback(self, request: ActionRequest) -> ActionOutcome:
        step = self._step(request)
        snap = read_json(step.dir / "snapshot" / "snapshot.json")
        if snap is None:
            return ActionOutcome(
                ok=True, summary="no snapshot was taken, so nothing was applied to roll back"
            )
        snapped = {"serial": snap["serial"], "lineage": snap["lineage"]}
        run = step.run("rollback-apply")
        current = read_state(step.state_path)
        planned = (read_json(step.dir / "rollback.json") or {}).get("planned_state", current.version)
        status = self._resume(step, run, planned)
        if status is RunStatus.NEW:
            if current.version == snapped:
                return ActionOutcome(
                    ok=True, summary=f"state unchanged since the snapshot ({snapped}); nothing to undo"
                )
            if not step.module_dir.exists():
                raise PermanentError(
                    f"the working copy {step.module_dir} is gone; cannot roll back",
                    type=ErrorType.INTERRUPTED,
                )
            inputs = self._rollback_inputs(step, snap, current)
            if inputs is None:
                return ActionOutcome(
                    ok=True, summary="the incident created nothing that still exists; nothing to destroy"
                )
            variables, extra = inputs
            workdir = step.dir / "rollback" / "module"
            prepare_workdir(
                workdir, step.module_dir, variables, step.backend, f"{request.idempotency_key}/rollback"
            )
            plan_file = step.dir / "rollback.tfplan"
            self._plan(step, f"rollback-{activity.info().attempt}", workdir, plan_file, extra)
            record = {"variables": variables, "extra": extra, "planned_state": current.version}
            write_json(step.dir / "rollback.json", record)
            self._apply_plan(step, run, plan_file, workdir)
        result = self._follow(run, "rollback")
        if result.rc != 0:
            self._fail("rollback", step, result, retryable=not report.started_changes(result))
        return self._rollback_outcome(step, snap, result)

    def _rollback_inputs(
        self, step: Step, snap: dict[str, Any], current: StateMeta
    ) -> tuple[dict[str, Any], list[str]] | None:
        """The variables and extra plan flags that undo this step; None when there is nothing to undo."""
        variables = step.action.variables
        if step.action.rollback == "destroy":
            created = sorted(set(current.resources) - set(snap["resources"]))
            return (
                (variables, ["-destroy", *(f"-target={address}" for address in created)]) if created else None
            )
        if not snap["resources"]:
            return variables, ["-destroy"]  # the state was empty before: "previous" is nothing at all
        if snap["previous_variables"] is None:
            raise PermanentError(
                "rollback `previous` needs the variables the state was last applied with, and this state "
                "was not last written by Remediator; use rollback `destroy` or restore by hand from "
                f"{snap['state_copy']}",
                type=ErrorType.NO_PREVIOUS_VARIABLES,
            )
        return dict(snap["previous_variables"]), []

    def _rollback_outcome(self, step: Step, snap: dict[str, Any], result: RunResult) -> ActionOutcome:
        recorded = read_json(step.dir / "rollback.json") or {"variables": None, "extra": []}
        restores = step.action.rollback == "previous" and not recorded["extra"]
        marker = f"{step.request.idempotency_key}/rollback"
        state = self._record_applied(step, recorded["variables"] if restores else None, marker)
        before, after = set(snap["resources"]), set(state.resources)
        if step.action.rollback == "previous":
            ok, left = after == before, sorted(after ^ before)
            verdict = "state matches the snapshot" if ok else f"state differs from the snapshot in {left}"
        else:
            ok, left = after <= before, sorted(after - before)
            verdict = "nothing the incident created remains" if ok else f"still present: {left}"
        outcome = self._outcome(step, result, f"rollback ({step.action.rollback}): {verdict}", state, {})
        outcome.ok = ok
        outcome.details.update({"mode": step.action.rollback, "snapshot": snap, "matches_snapshot": ok})
        return outcome
