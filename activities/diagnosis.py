"""The heuristic diagnoser: rules over gathered evidence, the default when no LLM is configured."""

from __future__ import annotations

from temporalio import activity

from workflows.models import DiagnoseRequest, Diagnosis


def heuristic_diagnosis(request: DiagnoseRequest) -> Diagnosis:
    probe = request.evidence.probe
    name = request.alert.name
    if probe is not None and not probe.ok:
        refused = "ConnectError" in probe.error or "refused" in probe.error.lower()
        if refused:
            return Diagnosis(
                category="service_down",
                confidence=0.8,
                explanation=f"{probe.url} refuses connections: the process is not listening",
            )
        return Diagnosis(
            category="service_unhealthy",
            confidence=0.6,
            explanation=f"{probe.url} answers but unhealthy: {probe.error}",
        )
    return Diagnosis(category="unknown", confidence=0.2, explanation=f"no rule matched the evidence for {name}")


class DiagnosisActivities:
    @activity.defn(name="diagnose")
    async def diagnose(self, request: DiagnoseRequest) -> Diagnosis:
        return heuristic_diagnosis(request)
