"""Alerts into Temporal: one IncidentWorkflow per fingerprint.

A firing alert is a signal-with-start, so a re-fire signals the running incident and a closed
incident's fingerprint opens a new run. A resolved alert only ever signals: a resolution without a
running incident must not start one.

A new incident is pinned to the playbook chosen for its alert (content and file hash) and to the
policy, both loaded and validated once when the API starts (`Pinning.load`), so a malformed file
stops the API at startup naming file:line: field, and editing a file never changes a running incident.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from api.auth.principal import Principal
from api.schemas import IngestOutcome, Outcome
from api.trust import vouch
from worker.playbooks import Catalogue, CatalogueError, load_catalogue
from worker.policy_file import policy_from_settings
from worker.settings import Settings
from worker.telemetry import current_trace_id
from worker.yaml_source import SourceError
from workflows import search_attributes as sa
from workflows.models import Alert, IncidentInput, Phase
from workflows.policy import Policy
from workflows.ui_details import static_details, static_summary

WORKFLOW_TYPE = "IncidentWorkflow"
# Enough to keep a large Alertmanager group quick without flooding the frontend with RPCs.
MAX_CONCURRENT_CALLS = 16


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


def search_attributes(alert: Alert, environment: str) -> TypedSearchAttributes:
    """Set at start so the incident is filterable before its first workflow task runs."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(sa.ALERT_NAME, alert.name),
            SearchAttributePair(sa.SERVICE, alert.service),
            SearchAttributePair(sa.SEVERITY, alert.severity),
            SearchAttributePair(sa.ENVIRONMENT, environment),
            SearchAttributePair(sa.INCIDENT_PHASE, Phase.RECEIVED.value),
        ]
    )


def _started(handle: WorkflowHandle[Any, Any]) -> bool:
    # The server says whether signal-with-start started a run; the SDK keeps its response only here.
    response = getattr(handle, "_start_workflow_response", None)
    return bool(getattr(response, "started", False))


async def _fire(
    client: Client, settings: Settings, pinning: Pinning, alert: Alert, sender: Principal, environment: str
) -> Outcome:
    incident = pinning.input_for(alert, settings, sender, environment)
    handle = await client.start_workflow(
        WORKFLOW_TYPE,
        incident,
        id=alert.workflow_id,
        task_queue=settings.task_queue,
        start_signal="alert",
        start_signal_args=[alert.notice()],  # the input carries the alert's text
        search_attributes=search_attributes(alert, environment),
        static_summary=static_summary(incident),
        static_details=static_details(incident),
        rpc_timeout=settings.api_temporal_timeout,
    )
    return "started" if _started(handle) else "signalled"


async def _resolve(client: Client, settings: Settings, alert: Alert) -> Outcome:
    handle = client.get_workflow_handle(alert.workflow_id)
    try:
        await handle.signal("alert", alert.notice(), rpc_timeout=settings.api_temporal_timeout)
    except RPCError as err:
        # No incident, or only a closed one: there is nothing left to resolve.
        if err.status == RPCStatusCode.NOT_FOUND:
            return "ignored"
        raise
    return "signalled"


async def ingest(
    client: Client, settings: Settings, pinning: Pinning, alerts: Sequence[Alert], *, sender: Principal
) -> list[IngestOutcome]:
    """Deliver every alert; raise if Temporal did not accept all of them (the sender retries)."""
    environments = vouch(alerts, sender, pinning.policy)
    gate = asyncio.Semaphore(MAX_CONCURRENT_CALLS)

    async def deliver(alert: Alert, environment: str) -> IngestOutcome:
        async with gate:
            if alert.status == "firing":
                outcome = await _fire(client, settings, pinning, alert, sender, environment)
            else:
                outcome = await _resolve(client, settings, alert)
        return IngestOutcome(
            fingerprint=alert.fingerprint,
            incident_id=alert.workflow_id,
            alertname=alert.name,
            status=alert.status,
            outcome=outcome,
        )

    # Every call finishes before we answer, so a failure never leaves a half-noticed background task.
    results = await asyncio.gather(
        *(deliver(alert, env) for alert, env in zip(alerts, environments, strict=True)),
        return_exceptions=True,
    )
    outcomes: list[IngestOutcome] = []
    for result in results:
        if isinstance(result, BaseException):
            raise result
        outcomes.append(result)
    return outcomes
