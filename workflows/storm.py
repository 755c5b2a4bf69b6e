"""StormWorkflow: one storm incident per alert name, environment and storm window.

When more new incidents arrive than storm control allows (api/storm.py), the API does not refuse
them: it signals each one here instead (`absorb`). The storm records every alert it absorbed
(how many notifications, which fingerprints, from whom, first and last) and takes no action, so
nothing is lost and people see one incident, phase Escalated, instead of hundreds. It closes when its
window ends; later alerts of the same name open the next window's storm.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, Field
from temporalio import workflow

from workflows.alerts import Alert
from workflows.incident_models import IncidentState, TimelineEntry
from workflows.phases import Phase

STORM_WORKFLOW = "StormWorkflow"


class Absorbed(BaseModel):
    """One alert a storm took in: enough to find it again, not its text."""

    fingerprint: str
    service: str = ""
    severity: str = ""
    sender: str = ""
    repeats: int = Field(default=1, ge=1)  # identical notifications it stands for


class StormInput(BaseModel):
    alertname: str
    environment: str
    window_start: datetime
    window_end: datetime


class StormState(BaseModel):
    """The `storm` query."""

    storm_id: str
    alertname: str
    environment: str
    window_start: datetime
    window_end: datetime
    count: int = 0  # notifications absorbed, coalesced re-fires included
    fingerprints: dict[str, int] = {}  # fingerprint -> notifications, in the order first seen
    senders: list[str] = []
    first_at: datetime | None = None
    last_at: datetime | None = None


@workflow.defn(name=STORM_WORKFLOW)
class StormWorkflow:
    @workflow.init
    def __init__(self, inp: StormInput) -> None:
        self._storm = StormState(
            storm_id=workflow.info().workflow_id,
            alertname=inp.alertname,
            environment=inp.environment,
            window_start=inp.window_start,
            window_end=inp.window_end,
        )
        self._timeline: list[TimelineEntry] = []

    @workflow.signal
    def absorb(self, alerts: list[Absorbed]) -> None:
        now = workflow.now()
        storm = self._storm
        storm.first_at = storm.first_at or now
        storm.last_at = now
        for alert in alerts:
            storm.count += alert.repeats
            storm.fingerprints[alert.fingerprint] = (
                storm.fingerprints.get(alert.fingerprint, 0) + alert.repeats
            )
            if alert.sender and alert.sender not in storm.senders:
                storm.senders.append(alert.sender)
        listed = ", ".join(
            f"{a.fingerprint} x{a.repeats}" if a.repeats > 1 else a.fingerprint for a in alerts
        )
        self._timeline.append(
            TimelineEntry(
                at=now,
                phase=Phase.ESCALATED,
                event="alerts absorbed",
                detail=f"{sum(a.repeats for a in alerts)} (total {storm.count}): {listed}",
            )
        )

    @workflow.query
    def storm(self) -> StormState:
        return self._storm

    @workflow.query
    def state(self) -> IncidentState:
        """The storm as an incident, so `remediator show` and GET /incidents/{id} read it like any other."""
        storm = self._storm
        return IncidentState(
            incident_id=storm.storm_id,
            phase=Phase.ESCALATED,
            alert=Alert(
                fingerprint=storm.storm_id.removeprefix("incident-"),
                labels={"alertname": storm.alertname, "storm": "true"},
                starts_at=storm.first_at,
            ),
            environment=storm.environment,
            opened_by="storm control",
            evidence_summary=(
                f"storm: {storm.count} notifications of {storm.alertname} from {len(storm.fingerprints)} "
                f"alerts (first {storm.first_at}, last {storm.last_at}); over the new-incident cap, so "
                "grouped here instead of opening one incident each"
            ),
            alert_updates=storm.count,
            timeline=self._timeline,
        )

    @workflow.run
    async def run(self, inp: StormInput) -> StormState:
        remaining = inp.window_end - workflow.now()
        if remaining > timedelta(0):
            await workflow.sleep(remaining)
        return self._storm
