"""The API's `/metrics` for Prometheus: alerts received, incidents by phase, and the process' own.

Open like /healthz (api/auth/middleware.py): every label comes from a closed set (source, outcome,
phase), never from alert text, service names or principals, so a scrape learns volumes, not contents.
Incidents by phase are counted in Temporal's visibility store, the one place that knows every
incident whichever API or worker handled it, at most once per REMEDIATOR_METRICS_COUNT_INTERVAL
however often anyone scrapes. The worker's own metrics (approvals, actions, time to approvable, the SDK's) are served by the
worker (REMEDIATOR_WORKER_METRICS_PORT, worker/telemetry.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable

from fastapi import APIRouter, Response
from fastapi.exceptions import RequestValidationError
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    disable_created_metrics,
    generate_latest,
)
from temporalio.client import Client
from temporalio.service import RPCError

from activities.config import Settings
from api.deps import ClientDep, SettingsDep
from api.ingest import WORKFLOW_TYPE
from api.schemas import IngestOutcome
from workflows.phases import Phase

# A `_created` twin of every counter series doubles what Prometheus stores and no panel reads it.
disable_created_metrics()
ALERTS = Counter(
    "remediator_alerts_received",
    "Alerts received, by source (alertmanager, grafana, generic) and outcome "
    "(started, signalled, grouped, ignored, refused, failed)",
    ["source", "outcome"],
)
INCIDENTS = Gauge(
    "remediator_incidents",
    "IncidentWorkflow executions in Temporal's visibility (open, and closed within the namespace's "
    "retention) by IncidentPhase",
    ["phase"],
)
log = logging.getLogger(__name__)
router = APIRouter(tags=["metrics"])


async def counted(source: str, alerts: int, delivery: Awaitable[list[IngestOutcome]]) -> list[IngestOutcome]:
    """`delivery`'s outcomes, counted by `source`; when it raises, all `alerts` of the request count."""
    try:
        outcomes = await delivery
    except RequestValidationError:
        ALERTS.labels(source, "refused").inc(alerts)  # not one valid alert in the request
        raise
    except Exception:
        ALERTS.labels(source, "failed").inc(alerts)  # a 503: the sender retries the whole request
        raise
    for outcome in outcomes:
        ALERTS.labels(source, outcome.outcome).inc()
    return outcomes


class PhaseCounts:
    """Refreshes `INCIDENTS` from Temporal, at most once per REMEDIATOR_METRICS_COUNT_INTERVAL."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._counted_at: float | None = None

    async def refresh(self, client: Client, settings: Settings) -> None:
        async with self._lock:
            interval = settings.metrics_count_interval.total_seconds()
            if self._counted_at is not None and time.monotonic() - self._counted_at < interval:
                return
            self._counted_at = time.monotonic()
            try:
                counts = await asyncio.gather(*(self._count(client, settings, phase) for phase in Phase))
            except (RuntimeError, RPCError) as err:  # RuntimeError: a lazy client's failed connect
                # No number beats a stale one: the series vanish until Temporal answers again.
                log.warning("incidents by phase not counted: %s", err)
                INCIDENTS.clear()
                return
            for phase, count in zip(Phase, counts, strict=True):
                INCIDENTS.labels(phase.value).set(count)

    @staticmethod
    async def _count(client: Client, settings: Settings, phase: Phase) -> int:
        # One query per phase: Temporal groups counts by ExecutionStatus only.
        query = f'WorkflowType="{WORKFLOW_TYPE}" AND IncidentPhase="{phase.value}"'
        result = await client.count_workflows(query, rpc_timeout=settings.api_temporal_timeout)
        return result.count


PHASE_COUNTS = PhaseCounts()


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
async def metrics(client: ClientDep, settings: SettingsDep) -> Response:
    """Prometheus' text format: remediator_alerts_received_total, remediator_incidents, process_*."""
    await PHASE_COUNTS.refresh(client, settings)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
