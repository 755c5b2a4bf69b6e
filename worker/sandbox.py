"""The workflow sandbox: workflow logic runs inside it; only the data models are passed through.

Temporal's sandbox imports each workflow's module graph afresh and makes non-deterministic calls
(`datetime.now()`, `random`, file and network I/O) fail the workflow task, so a workflow that would
not replay is caught at once. Passing a module through skips both: it is the worker's own import,
shared by every run. So only modules of pure data are passed through, for speed, and every module
of workflow logic (the interpreter, the runtime, approvals, the workflows themselves) is sandboxed.

A passed-through module brings its imports along as the worker's own, so `MODEL_MODULES` must hold
every `workflows` module the listed ones import, or a sandboxed module would get a second copy of a
class (an `isinstance` against a playbook step would then fail). The playbook and policy languages
(their conditions, templates, matchers, static validation), the guardrails over a model's answer and
the memory record are pure functions over those models and pass through with them. A pydantic model
defined in a sandboxed module would be built again for every run, about 1.5 ms and 10 KB a class,
so the models of sandboxed workflows live in modules of their own (`limiter_models`).
tests/workflows/test_sandbox.py checks these rules on a real worker.

Sandboxed modules are still executed afresh for every run, but from code compiled once per
process (`SharedCodeSandboxRunner`).

The SDK also enters the sandbox (an `exec` under its import hook) to ask a run for the serialization
context of every payload sequence it encodes or decodes, about a sixth of a busy worker's time.
Our converter and codec ignore that context, so `for_converter` answers for the run without entering
(`ContextFreeRunner`); a converter that does use it keeps the SDK's own path.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec, PathFinder, SourceFileLoader
from types import CodeType
from typing import ClassVar

from temporalio.bridge.proto.workflow_activation import WorkflowActivation
from temporalio.bridge.proto.workflow_completion import WorkflowActivationCompletion
from temporalio.converter import (
    DataConverter,
    SerializationContext,
    StorageDriverStoreContext,
    WorkflowSerializationContext,
)
from temporalio.worker import WorkflowInstance, WorkflowInstanceDetails, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions
from temporalio.workflow import Info, _Definition

MODEL_MODULES = frozenset(
    {
        "workflows.actions",
        "workflows.activity_names",
        "workflows.activity_options",
        "workflows.alerts",
        "workflows.checks",
        "workflows.conditions",
        "workflows.decisions",
        "workflows.diagnosis",
        "workflows.durations",
        "workflows.error_types",
        "workflows.evidence",
        "workflows.guardrails",
        "workflows.incident_memory",
        "workflows.incident_models",
        "workflows.investigation_models",
        "workflows.investigation_tools",
        "workflows.kube_reads",
        "workflows.limiter_models",
        "workflows.matching",
        "workflows.notifications",
        "workflows.operation_models",
        "workflows.phases",
        "workflows.plans",
        "workflows.playbook",
        "workflows.playbook_host",
        "workflows.policy",
        "workflows.regex",
        "workflows.spec_errors",
        "workflows.templating",
        "workflows.validation",
    }
)


class _SharedCodeLoader(SourceFileLoader):
    """Loads a workflows module with the code object compiled the first time.

    The sandbox executes every sandboxed module afresh for each workflow run (a new module object
    and new globals), which is the isolation it is for. A code object is immutable, so all the runs
    can execute the same one: without this each run unmarshals (or, with no bytecode cache, compiles)
    every module again, about 0.3 MB and from 8 to 35 ms per cached incident.
    """

    _code: ClassVar[dict[str, CodeType]] = {}

    def get_code(self, fullname: str) -> CodeType | None:
        code = self._code.get(fullname) or super().get_code(fullname)
        if code is not None:
            self._code[fullname] = code
        return code


class _SharedCodeFinder(MetaPathFinder):
    def find_spec(self, fullname: str, path: object = None, target: object = None) -> ModuleSpec | None:
        if not fullname.startswith("workflows."):
            return None
        spec = PathFinder.find_spec(fullname, path)  # type: ignore[arg-type]
        if spec is not None and type(spec.loader) is SourceFileLoader and spec.origin:
            spec.loader = _SharedCodeLoader(fullname, spec.origin)
        return spec


@dataclass(frozen=True)
class SharedCodeSandboxRunner(SandboxedWorkflowRunner):
    """The SDK's sandbox, with workflow modules compiled once per process (`_SharedCodeLoader`)."""

    def prepare_workflow(self, defn: _Definition) -> None:
        # Every worker and replayer prepares its workflow types before the first run.
        if not any(isinstance(finder, _SharedCodeFinder) for finder in sys.meta_path):
            sys.meta_path.insert(0, _SharedCodeFinder())
        super().prepare_workflow(defn)


SANDBOX_RUNNER = SharedCodeSandboxRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules(*MODEL_MODULES)
)


@dataclass(frozen=True)
class _ContextFreeInstance(WorkflowInstance):
    """A run whose payloads need no serialization context: the SDK asks, this answers None at once."""

    run: WorkflowInstance

    def activate(self, act: WorkflowActivation) -> WorkflowActivationCompletion:
        return self.run.activate(act)

    def get_serialization_context(self, command_info: object) -> SerializationContext | None:
        return None  # the SDK then uses the worker's converter as it is

    def get_external_store_context(self, command_info: object) -> StorageDriverStoreContext:
        return StorageDriverStoreContext(target=None)  # unused: the converter stores nothing externally

    def get_info(self) -> Info:
        return self.run.get_info()

    def get_thread_id(self) -> int | None:
        return self.run.get_thread_id()  # the deadlock detector reads the stuck thread's frames


@dataclass(frozen=True)
class ContextFreeRunner(WorkflowRunner):
    runner: WorkflowRunner

    def prepare_workflow(self, defn: _Definition) -> None:
        self.runner.prepare_workflow(defn)

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return _ContextFreeInstance(self.runner.create_instance(det))

    def set_worker_level_failure_exception_types(self, types: Sequence[type[BaseException]]) -> None:
        self.runner.set_worker_level_failure_exception_types(types)


def for_converter(converter: DataConverter, runner: WorkflowRunner = SANDBOX_RUNNER) -> WorkflowRunner:
    """`runner`, skipping the serialization-context lookups when `converter` would ignore them.

    `with_context` returns the converter itself when no part of it takes a context (the SDK's own
    test), whatever the context; nothing is stored outside history without external storage.
    """
    sample = WorkflowSerializationContext(namespace="", workflow_id="")
    if converter.external_storage is None and converter.with_context(sample) is converter:
        return ContextFreeRunner(runner)
    return runner
