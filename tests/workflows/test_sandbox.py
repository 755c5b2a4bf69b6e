"""The workflow sandbox as the worker runs it: only model modules pass through, logic is sandboxed."""

from __future__ import annotations

import ast
import sys
import uuid
from pathlib import Path

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

import workflows.incident  # noqa: F401  (the host side of every module the probe loads)
from tests.workflows.sandbox_probe import SandboxProbe, SandboxReport
from worker.sandbox import MODEL_MODULES, SANDBOX_RUNNER

WORKFLOWS_DIR = Path(__file__).parents[2] / "workflows"


async def test_only_model_modules_pass_through_and_logic_cannot_read_the_clock(
    time_env: WorkflowEnvironment,
) -> None:
    queue = f"sandbox-{uuid.uuid4().hex[:8]}"
    async with Worker(
        time_env.client, task_queue=queue, workflows=[SandboxProbe], workflow_runner=SANDBOX_RUNNER
    ):
        report = await time_env.client.execute_workflow(
            SandboxProbe.run, id=f"sandbox-{queue}", task_queue=queue, result_type=SandboxReport
        )
    # A passed-through module is the worker's own module object; a sandboxed one is a fresh copy.
    passed = {
        name
        for name, ident in report.modules.items()
        if sys.modules.get(name) is not None and id(sys.modules[name]) == ident
    }
    # (a model module only another passed-through one imports never enters the sandbox's modules)
    loaded = report.modules.keys()
    assert passed == MODEL_MODULES & loaded
    assert {"workflows.incident_models", "workflows.playbook", "workflows.policy"} <= passed
    assert {"workflows.incident", "workflows.interpreter", "workflows.runtime", "workflows.approvals"} <= (
        loaded - passed
    )
    # So a clock read in workflow logic fails the workflow task, where a model module's would not.
    assert report.logic_clock_refused
    assert not report.model_clock_refused


async def test_runs_get_their_own_modules_but_share_compiled_code(time_env: WorkflowEnvironment) -> None:
    queue = f"sandbox-{uuid.uuid4().hex[:8]}"
    async with Worker(
        time_env.client, task_queue=queue, workflows=[SandboxProbe], workflow_runner=SANDBOX_RUNNER
    ):
        handles = [
            await time_env.client.start_workflow(
                SandboxProbe.run, True, id=f"sandbox-{queue}-{i}", task_queue=queue
            )
            for i in range(2)
        ]
        first, second = [await h.query(SandboxProbe.report) for h in handles]
        for handle in handles:  # all released before awaiting one: awaiting skips time ahead
            await handle.signal(SandboxProbe.release)
        for handle in handles:
            await handle.result()
    # Each run executes workflows/interpreter.py into a module of its own (its globals are its own)...
    assert first.modules["workflows.interpreter"] != second.modules["workflows.interpreter"]
    # ...from the one code object compiled for the worker, not from a copy unmarshalled per run.
    assert first.interpreter_code == second.interpreter_code
    assert first.logic_clock_refused and second.logic_clock_refused


def test_model_modules_import_only_model_modules() -> None:
    """A passed-through module's imports are the worker's own too: a sandboxed copy of one of them
    would give the sandbox a second class of the same name."""
    for name in sorted(MODEL_MODULES):
        tree = ast.parse((WORKFLOWS_DIR / f"{name.removeprefix('workflows.')}.py").read_text())
        imported = {
            node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
        } | {
            f"workflows.{a.name}"
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == "workflows"
            for a in node.names
        }
        ours = {m for m in imported if m.startswith("workflows.")}
        assert ours <= MODEL_MODULES, f"{name} imports {sorted(ours - MODEL_MODULES)}"


def test_sandboxed_modules_define_no_dataclass() -> None:
    """The sandbox runs a sandboxed module's body for every run, and a dataclass costs a millisecond
    or more to build each time (a quarter of starting an incident's run, issue 12)."""
    for path in sorted(WORKFLOWS_DIR.glob("*.py")):
        if f"workflows.{path.stem}" in MODEL_MODULES:
            continue
        tree = ast.parse(path.read_text())
        decorated = [
            f"{path.name}:{node.lineno} {node.name}"
            for node in ast.walk(tree)
            if isinstance(node, ast.ClassDef)
            for d in node.decorator_list
            if "dataclass" in ast.unparse(d)
        ]
        assert not decorated, decorated
