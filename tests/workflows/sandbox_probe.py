"""A workflow that reports what the sandbox made of our modules, loaded as IncidentWorkflow's are."""

from __future__ import annotations

import sys

from pydantic import BaseModel
from temporalio import workflow
from temporalio.worker.workflow_sandbox import RestrictedWorkflowAccessError

import workflows.incident  # noqa: F401  (the whole module graph an incident loads)
from workflows.approvals import datetime as logic_datetime  # a sandboxed module's `datetime`
from workflows.decisions import datetime as model_datetime  # a passed-through module's
from workflows.interpreter import PlaybookInterpreter


class SandboxReport(BaseModel):
    modules: dict[str, int]  # every `workflows` module the run sees, by the id of its module object
    logic_clock_refused: bool  # `datetime.now()` from workflows/approvals.py
    model_clock_refused: bool  # `datetime.now()` from workflows/decisions.py
    interpreter_code: int  # the id of a code object of the run's (sandboxed) workflows/interpreter.py


def _clock_refused(read: object) -> bool:
    try:
        read.now()  # type: ignore[attr-defined]
    except RestrictedWorkflowAccessError:
        return True
    return False


@workflow.defn(name="SandboxProbe")
class SandboxProbe:
    def __init__(self) -> None:
        self._released = False

    @workflow.run
    async def run(self, hold: bool = False) -> SandboxReport:
        # Held open, so the module objects of two runs are alive at once and their ids cannot repeat.
        await workflow.wait_condition(lambda: self._released or not hold)
        return self.report()

    @workflow.query
    def report(self) -> SandboxReport:
        loaded = {name: id(module) for name, module in sys.modules.items() if name.startswith("workflows.")}
        return SandboxReport(
            modules=loaded,
            logic_clock_refused=_clock_refused(logic_datetime),
            model_clock_refused=_clock_refused(model_datetime),
            interpreter_code=id(PlaybookInterpreter.__init__.__code__),
        )

    @workflow.signal
    def release(self) -> None:
        self._released = True
