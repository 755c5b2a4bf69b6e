"""A tiny workflow around `investigate`, the entry point IncidentWorkflow calls while diagnosing."""

from __future__ import annotations

from pydantic import BaseModel
from temporalio import workflow

from workflows.alerts import Alert
from workflows.diagnosis import Diagnosis
from workflows.evidence import Evidence
from workflows.investigation import investigate
from workflows.investigation_models import InvestigationResult


class InvestigateInput(BaseModel):
    alert: Alert
    evidence: Evidence
    heuristic: Diagnosis


class InvestigateOutput(BaseModel):
    result: InvestigationResult
    timeline: list[str]


@workflow.defn(name="InvestigateTestWorkflow")
class InvestigateWorkflow:
    @workflow.run
    async def run(self, inp: InvestigateInput) -> InvestigateOutput:
        timeline: list[str] = []
        result = await investigate(
            inp.alert,
            inp.evidence,
            inp.heuristic,
            lambda event, detail: timeline.append(f"{event} | {detail}"),
        )
        return InvestigateOutput(result=result, timeline=timeline)
