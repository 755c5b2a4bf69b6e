"""What incident memory keeps of a closed incident: only what a later diagnosis needs.

The alert's name, service, severity and environment, the diagnosis (category, confidence and its
summary), the actions with their one-line results, and the outcome. Never the raw annotations
(attacker text, possibly large), the evidence, diffs or model transcripts: memory outlives the
incident's history and is searched by every later diagnosis, so it holds the least that helps.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from workflows.incident_models import IncidentState

DIAGNOSIS_CHARS = 500
RESULT_CHARS = 200


class ActionMemory(BaseModel):
    step: str
    action: str
    result: str = ""  # the executor's one-line summary, capped; "not run" when it never applied


class IncidentMemory(BaseModel):
    """Input of `memory.record_incident`, built in the workflow from its state (`of`)."""

    incident_id: str
    closed_at: datetime | None = None
    alertname: str
    service: str = ""
    severity: str = ""
    environment: str = ""
    category: str = ""
    confidence: float | None = None
    diagnosis: str = ""
    plan: str = ""
    actions: list[ActionMemory] = []
    outcome: str

    @classmethod
    def of(cls, state: IncidentState) -> IncidentMemory:
        alert, diagnosis, plan = state.alert, state.diagnosis, state.plan
        return cls(
            incident_id=state.incident_id,
            closed_at=state.timeline[-1].at if state.timeline else None,
            alertname=alert.name,
            service=alert.service,
            severity=alert.severity,
            environment=state.environment or alert.environment,
            category=diagnosis.category if diagnosis else "",
            confidence=diagnosis.confidence if diagnosis else None,
            diagnosis=_cap(
                (diagnosis.summary or diagnosis.explanation) if diagnosis else "", DIAGNOSIS_CHARS
            ),
            plan=_cap(plan.summary, DIAGNOSIS_CHARS) if plan else "",
            actions=[
                ActionMemory(
                    step=p.step,
                    action=p.action.name,
                    result=_cap(p.result.summary, RESULT_CHARS) if p.result else "not run",
                )
                for p in (plan.actions if plan else [])
            ],
            outcome=str(state.phase),
        )


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
