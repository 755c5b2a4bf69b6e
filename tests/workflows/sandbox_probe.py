"""A workflow that reports what the sandbox made of our modules, loaded as IncidentWorkflow's are."""

from __future__ import annotations

import sys

from pydantic import BaseModel
from temporalio import workflow
from temporalio.worker.workflow_sandbox import RestrictedWorkflowAccessError

import workflows.incident  # noqa: F401  (the whole module graph an incident loads)
from workflows.approvals import datetime as logic_datetime  # a sandboxed module's `datetime`
from workflows.decisions import datetime as model_datetime  # a passed-through module's


class SandboxReport(BaseModel):
    modules: dict[str, int]  # every `workflows` module the run sees, by the id of its module object
    logic_clock_refused: bool  # `datetime.now()` from workflows/approvals.py
    model_clock_refused: bool  # `datetime.now()` from workflows/decisions.py


def _clock_refused(read: object) -> bool:
    try:
        read.now()  # type: ignore[attr-defined]
    except RestrictedWorkflowAccessError:
        return True
    return False


@workflow.defn(name="SandboxProbe")
class SandboxProbe:
    @workflow.run
    async def run(self) -> SandboxReport:
        loaded = {name: id(module) for name, module in sys.modules.items() if name.startswith("workflows.")}
        return SandboxReport(
            modules=loaded,
            logic_clock_refused=_clock_refused(logic_datetime),
            model_clock_refused=_clock_refused(model_datetime),
        )
