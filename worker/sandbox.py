"""The workflow sandbox: workflow logic runs inside it; only the data models are passed through.

Temporal's sandbox imports each workflow's module graph afresh and makes non-deterministic calls
(`datetime.now()`, `random`, file and network I/O) fail the workflow task, so a workflow that would
not replay is caught at once. Passing a module through skips both: it is the worker's own import,
shared by every run. So only modules of pure data are passed through, for speed, and every module
of workflow logic (the interpreter, the runtime, approvals, the workflows themselves) is sandboxed.

A passed-through module brings its imports along as the worker's own, so `MODEL_MODULES` must hold
every `workflows` module the listed ones import, or a sandboxed module would get a second copy of a
class (an `isinstance` against a playbook step would then fail). The playbook and policy languages
(their conditions, templates, matchers) are part of the models their validators build, and so are
passed through with them. tests/workflows/test_sandbox.py checks both rules on a real worker.
"""

from __future__ import annotations

from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

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
        "workflows.incident_models",
        "workflows.investigation_models",
        "workflows.investigation_tools",
        "workflows.kube_reads",
        "workflows.matching",
        "workflows.notifications",
        "workflows.operation_models",
        "workflows.phases",
        "workflows.plans",
        "workflows.playbook",
        "workflows.playbook_host",
        "workflows.policy",
        "workflows.regex",
        "workflows.templating",
    }
)

SANDBOX_RUNNER = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules(*MODEL_MODULES)
)
