"""Alerts into Temporal: one IncidentWorkflow per fingerprint, each alert of a request on its own.

A firing alert is a signal-with-start, so a re-fire signals the running incident and a closed
incident's fingerprint opens a new run. A resolved alert only ever signals: a resolution without a
running incident must not start one.

Every alert of a request is judged alone: a malformed or refused one (api/trust.py) is listed with its
reason and sends nothing, the others are delivered; only a request with no valid alert is a 422.
Oversized text is cut (api/alert_caps.py); new incidents past storm control's caps join a storm
incident (api/storm.py); identical notifications within REMEDIATOR_ALERT_COALESCE_WINDOW become one
signal that carries their count (api/coalesce.py). An alert is acknowledged only once the call that
carried it has returned, so the 202 means Temporal holds it; any failed call makes the request a 503.

A new incident is pinned to the playbook chosen for its alert (content and file hash) and to the
policy, both loaded and validated once when the API starts (`Pinning.load`), so a malformed file
stops the API at startup naming file:line: field, and editing a file never changes a running incident.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi.exceptions import RequestValidationError
from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from activities.config import Settings
from api.alert_caps import AlertCaps
from api.auth.principal import Principal
from api.coalesce import Batcher
from api.errors import field_path
from api.schemas import IngestOutcome, Outcome, Parsed
from api.storm import Reservation, StormControl, StormWindow, storm_window
from api.trust import Refused, check
from worker.playbooks import Catalogue, CatalogueError, load_catalogue
from worker.policy_file import policy_from_settings
from worker.telemetry import current_trace_id
from worker.yaml_source import SourceError
from workflows import search_attributes as sa
from workflows.alerts import Alert
from workflows.incident_models import IncidentInput
from workflows.phases import Phase
from workflows.policy import Policy
from workflows.storm import STORM_WORKFLOW, Absorbed, StormInput
from workflows.ui_details import static_details, static_summary

WORKFLOW_TYPE = "IncidentWorkflow"


class PinningError(Exception):
    """A playbook or the policy file is malformed: every problem as `file:line: field: message`."""


@dataclass(frozen=True)
class Pinning:
    """What new incidents are pinned to: the playbooks and the policy, as loaded at startup."""

    catalogue: Catalogue
    policy: Policy

    @classmethod
    def load(cls, settings: Settings) -> Pinning:
        try:
            catalogue = load_catalogue(settings.playbook_dir, settings.ansible_playbook_dir)
            policy = policy_from_settings(settings).policy
        except (CatalogueError, SourceError) as err:
            raise PinningError(str(err)) from None
        return cls(catalogue=catalogue, policy=policy)

    def input_for(
        self, alert: Alert, settings: Settings, sender: Principal, environment: str
    ) -> IncidentInput:
        chosen, _ = self.catalogue.select(alert)
        return IncidentInput(
            alert=alert,
            config=settings.incident_config(),
            playbook=chosen.pinned() if chosen else None,
            policy=self.policy,
            environment=environment,
            opened_by=sender.name,
            sender_services=list(sender.services),
            trace_id=current_trace_id(),
        )


def search_attributes(alert: Alert, environment: str, phase: Phase = Phase.RECEIVED) -> TypedSearchAttributes:
    """Set at start so the incident is filterable before its first workflow task runs."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(sa.ALERT_NAME, alert.name),
            SearchAttributePair(sa.SERVICE, alert.service),
            SearchAttributePair(sa.SEVERITY, alert.severity),
            SearchAttributePair(sa.ENVIRONMENT, environment),
            SearchAttributePair(sa.INCIDENT_PHASE, phase.value),
        ]
    )


def _started(handle: WorkflowHandle[Any, Any]) -> bool:
    # The server says whether signal-with-start started a run; the SDK keeps its response only here.
    response = getattr(handle, "_start_workflow_response", None)
    return bool(getattr(response, "started", False))


@dataclass(frozen=True)
class Delivery:
    """One vouched-for alert on its way, with the bound on its request's calls in flight."""

    alert: Alert
    environment: str
    sender: Principal
    gate: asyncio.Semaphore


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    incident_id: str
    reason: str = ""


IncidentKey = tuple[str, str, str, str, str]  # workflow id, status, sender, environment, content hash


class Intake:
    """Alert delivery, with what it keeps between requests: storm control and the coalescing batchers."""

    def __init__(self, client: Client, settings: Settings, pinning: Pinning) -> None:
        self.client, self.settings, self.pinning = client, settings, pinning
        self.caps = AlertCaps.from_settings(settings)
        self.storm = StormControl(
            settings.alert_new_incidents_per_minute, settings.alert_sender_new_incidents_per_minute
        )
        window = settings.alert_coalesce_window.total_seconds()
        self._incidents: Batcher[IncidentKey, Delivery, Result] = Batcher(window, self._deliver)
        # A storm takes whatever arrived while its previous call ran, in one signal.
        self._storms: Batcher[StormWindow, tuple[Absorbed, Delivery], None] = Batcher(0.0, self._absorb)

    async def ingest(self, parsed: Sequence[Parsed], sender: Principal) -> list[IngestOutcome]:
        """Deliver every valid alert; RequestValidationError (a 422) if there is none."""
        gate = asyncio.Semaphore(self.settings.alert_concurrent_calls)
        outcomes: dict[int, IngestOutcome] = {}
        errors: list[dict[str, Any]] = []
        accepted: list[tuple[int, Delivery, list[str]]] = []
        for entry in parsed:
            problems = list(entry.errors)
            if entry.alert is not None:
                try:
                    environment = check(entry.alert, sender, self.pinning.policy)
                except Refused as err:
                    problems.append({"type": "refused", "loc": (*entry.loc, *err.field), "msg": str(err)})
                else:
                    alert, cut = self.caps.apply(entry.alert)
                    accepted.append((entry.index, Delivery(alert, environment, sender, gate), cut))
                    continue
            errors.extend(problems)
            outcomes[entry.index] = _refused(entry, problems)
        if not accepted:
            raise RequestValidationError(errors)
        results = await asyncio.gather(
            *(self._incidents.submit(_key(d), d) for _, d, _ in accepted), return_exceptions=True
        )
        for (index, delivery, cut), result in zip(accepted, results, strict=True):
            if isinstance(result, BaseException):
                raise result  # Temporal did not take it: a 503, and the sender retries the request
            alert = delivery.alert
            outcomes[index] = IngestOutcome(
                index=index,
                outcome=result.outcome,
                incident_id=result.incident_id,
                fingerprint=alert.fingerprint,
                alertname=alert.name,
                status=alert.status,
                reason=result.reason,
                truncated=cut,
            )
        return [outcomes[index] for index in sorted(outcomes)]

    async def _deliver(self, key: IncidentKey, batch: list[Delivery]) -> Result:
        first = batch[0]
        # The incident counts every notification of the batch; its input keeps the alert as sent.
        signal = first.alert.model_copy(update={"repeats": len(batch)}) if len(batch) > 1 else first.alert
        signal = signal.notice()  # status, timestamps and the labels' digest: the input has the text
        if first.alert.status == "firing":
            result = await self._fire(first, signal)
        else:
            result = await self._resolve(first, signal)
        if len(batch) == 1:
            return result
        coalesced = f"one signal for {len(batch)} identical notifications"
        return Result(result.outcome, result.incident_id, "; ".join(filter(None, (result.reason, coalesced))))

    async def _fire(self, delivery: Delivery, signal: Alert) -> Result:
        alert, settings = delivery.alert, self.settings
        slot = self.storm.reserve(delivery.sender.name)
        if isinstance(slot, Reservation):
            try:
                incident = self.pinning.input_for(alert, settings, delivery.sender, delivery.environment)
                async with delivery.gate:
                    handle = await self.client.start_workflow(
                        WORKFLOW_TYPE,
                        incident,
                        id=alert.workflow_id,
                        task_queue=settings.task_queue,
                        start_signal="alert",
                        start_signal_args=[signal],
                        search_attributes=search_attributes(alert, delivery.environment),
                        static_summary=static_summary(incident),
                        static_details=static_details(incident),
                        rpc_timeout=settings.api_temporal_timeout,
                    )
            except BaseException:
                self.storm.release(slot)
                raise
            if _started(handle):
                return Result("started", alert.workflow_id)
            self.storm.release(slot)  # a re-fire of a running incident opened nothing
            return Result("signalled", alert.workflow_id)
        # Over the cap: a running incident still hears its re-fire; a new one joins the storm.
        if await self._signal(delivery, signal):
            return Result("signalled", alert.workflow_id)
        window = storm_window(
            alert.name, delivery.environment, datetime.now(UTC), settings.alert_storm_window
        )
        absorbed = Absorbed(
            fingerprint=alert.fingerprint,
            service=alert.service,
            severity=alert.severity,
            sender=delivery.sender.name,
            repeats=signal.repeats,
        )
        await self._storms.submit(window, (absorbed, delivery))
        return Result("grouped", window.storm_id, f"grouped into storm incident {window.storm_id}: {slot}")

    async def _resolve(self, delivery: Delivery, signal: Alert) -> Result:
        if await self._signal(delivery, signal):
            return Result("signalled", delivery.alert.workflow_id)
        # No incident, or only a closed one: there is nothing left to resolve.
        return Result("ignored", delivery.alert.workflow_id)

    async def _signal(self, delivery: Delivery, signal: Alert) -> bool:
        """Signal the running incident; False when there is none."""
        handle = self.client.get_workflow_handle(delivery.alert.workflow_id)
        try:
            async with delivery.gate:
                await handle.signal("alert", signal, rpc_timeout=self.settings.api_temporal_timeout)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return True

    async def _absorb(self, window: StormWindow, batch: list[tuple[Absorbed, Delivery]]) -> None:
        absorbed = [a for a, _ in batch]
        first = batch[0][1]
        storm = StormInput(
            alertname=first.alert.name,
            environment=first.environment,
            window_start=window.start,
            window_end=window.end,
        )
        async with first.gate:
            await self.client.start_workflow(
                STORM_WORKFLOW,
                storm,
                id=window.storm_id,
                task_queue=self.settings.task_queue,
                start_signal="absorb",
                start_signal_args=[absorbed],
                search_attributes=search_attributes(first.alert, first.environment, Phase.ESCALATED),
                rpc_timeout=self.settings.api_temporal_timeout,
            )


def _key(delivery: Delivery) -> IncidentKey:
    alert = delivery.alert
    content = hashlib.sha256(alert.model_dump_json().encode()).hexdigest()
    return (alert.workflow_id, alert.status, delivery.sender.name, delivery.environment, content)


def _refused(entry: Parsed, problems: Sequence[dict[str, Any]]) -> IngestOutcome:
    alert = entry.alert
    return IngestOutcome(
        index=entry.index,
        outcome="refused",
        incident_id=alert.workflow_id if alert else None,
        fingerprint=alert.fingerprint if alert else None,
        alertname=alert.name if alert else None,
        status=alert.status if alert else None,
        reason="; ".join(f"{field_path(p['loc'])}: {p['msg']}" for p in problems),
    )
