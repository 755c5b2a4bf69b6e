"""Evidence gathering and verification: Prometheus queries and HTTP probes of the alert's target."""

from __future__ import annotations

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.metrics import Prometheus
from activities.probe import probe
from worker.settings import Settings
from workflows.models import Alert, Evidence, MetricSample, VerifyRequest


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def queries_for(alert: Alert) -> list[str]:
    """PromQL that tells whether the alert is still firing and whether its job is up."""
    queries = [f'ALERTS{{alertname="{_quote(alert.name)}",alertstate="firing"}}']
    if job := alert.labels.get("job"):
        queries.append(f'up{{job="{_quote(job)}"}}')
    return queries


def probe_url(alert: Alert) -> str:
    return alert.lookup("probe_url") or alert.lookup("health_url")


class EvidenceActivities:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._http = httpx.AsyncClient(timeout=settings.probe_timeout_seconds)
        self._prometheus = (
            Prometheus(self._http, settings.prometheus_url) if settings.prometheus_url else None
        )

    @activity.defn(name="gather_evidence")
    async def gather_evidence(self, alert: Alert) -> Evidence:
        evidence = Evidence()
        if url := probe_url(alert):
            evidence.probe = await probe(self._http, url)
        if self._prometheus is None:
            evidence.notes.append("Prometheus not configured (REMEDIATOR_PROMETHEUS_URL)")
            return evidence
        for query in queries_for(alert):
            evidence.metrics.append(await self._prometheus.instant(query))
            evidence.metrics.append(await self._prometheus.range(query))
        return evidence

    @activity.defn(name="verify")
    async def verify(self, request: VerifyRequest) -> str:
        """Raise (retryably) while unhealthy: Temporal's retry policy is the polling loop."""
        checks: list[str] = []
        if request.probe_url:
            result = await probe(self._http, request.probe_url)
            if not result.ok:
                raise ApplicationError(
                    f"probe {request.probe_url} unhealthy: {result.error}", type="Unhealthy"
                )
            checks.append(f"probe {request.probe_url} answered {result.status}")
        if request.healthy_query:
            if self._prometheus is None:
                raise ApplicationError("healthy_query needs REMEDIATOR_PROMETHEUS_URL", non_retryable=True)
            sample: MetricSample = await self._prometheus.instant(request.healthy_query)
            if sample.error or not sample.value:
                raise ApplicationError(
                    f"{request.healthy_query} is {sample.error or sample.value}", type="Unhealthy"
                )
            checks.append(f"{request.healthy_query} = {sample.value:g}")
        if not checks:
            if self._prometheus is None:
                raise ApplicationError(
                    "nothing to verify with: no probe URL and no Prometheus", non_retryable=True
                )
            # With no explicit check, healthy means Prometheus no longer reports the alert firing.
            sample = await self._prometheus.instant(queries_for(request.alert)[0])
            if sample.error or sample.value:
                raise ApplicationError(f"{request.alert.name} still firing", type="Unhealthy")
            checks.append(f"{request.alert.name} no longer firing")
        return "; ".join(checks)
