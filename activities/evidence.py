"""Evidence gathering and verification: Prometheus, Kubernetes reads and HTTP probes of the alert's target.

Every source fails on its own: what cannot be read becomes a note in `Evidence.notes`, and the
diagnosis runs on whatever did arrive. Gathering never fails an incident.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime

import httpx
from temporalio import activity

from activities.config import Settings
from activities.errors import PermanentError, TemporaryError
from activities.evidence_kube import KubeEvidence, Workload
from activities.evidence_queries import EvidenceQuery, evidence_queries, firing_query
from activities.kubernetes.cluster import KubeCluster
from activities.kubernetes.reads import KubernetesReads
from activities.metrics import Prometheus
from activities.probe import REFUSED, Prober
from workflows.activity_names import GATHER_EVIDENCE, VERIFY
from workflows.alerts import Alert
from workflows.error_types import ErrorType
from workflows.evidence import Evidence, MetricSample
from workflows.plans import VerifyRequest


def probe_url(alert: Alert) -> str:
    return alert.lookup("probe_url") or alert.lookup("health_url")


async def _sample(prometheus: Prometheus, query: EvidenceQuery) -> MetricSample:
    if query.range_minutes:
        return await prometheus.range(query.promql, query.range_minutes, query.step)
    return await prometheus.instant(query.promql)


class EvidenceActivities:
    def __init__(self, settings: Settings, cluster: KubeCluster | None = None) -> None:
        """`cluster` is the worker's one Kubernetes connection, shared with the executor and read tools."""
        self._settings = settings
        self._prober = Prober(settings)
        self._prometheus = (
            Prometheus(httpx.AsyncClient(timeout=settings.probe_timeout_seconds), settings.prometheus_url)
            if settings.prometheus_url
            else None
        )
        self._kube = KubernetesReads(cluster or KubeCluster(settings)) if settings.kube_configured else None

    @activity.defn(name=GATHER_EVIDENCE)
    async def gather_evidence(self, alert: Alert) -> Evidence:
        evidence = Evidence(collected_at=datetime.now(UTC))
        await asyncio.gather(
            self._probe(alert, evidence), self._metrics(alert, evidence), self._k8s(alert, evidence)
        )
        return evidence

    async def _probe(self, alert: Alert, evidence: Evidence) -> None:
        if url := probe_url(alert):
            evidence.probe = await self._prober(url)

    async def _k8s(self, alert: Alert, evidence: Evidence) -> None:
        if (workload := Workload.of(alert)) is None:
            return
        if self._kube is None:
            evidence.notes.append("Kubernetes not configured (REMEDIATOR_KUBE_NAMESPACES)")
            return
        await KubeEvidence(self._kube, evidence).gather(workload)

    async def _metrics(self, alert: Alert, evidence: Evidence) -> None:
        prometheus = self._prometheus
        if prometheus is None:
            evidence.notes.append("Prometheus not configured (REMEDIATOR_PROMETHEUS_URL)")
            return
        queries = evidence_queries(alert)
        samples = await asyncio.gather(*(_sample(prometheus, q) for q in queries))
        # Series that do not exist say nothing and would only crowd the model's context.
        evidence.metrics = [s for s in samples if not s.error and (s.value is not None or s.points)]
        failed = Counter(s.error for s in samples if s.error)
        evidence.notes += [
            f"Prometheus: {error} ({n} of {len(queries)} queries)" for error, n in failed.items()
        ]
        if empty := sum(not s.error and s.value is None and not s.points for s in samples):
            evidence.notes.append(f"Prometheus: no data for {empty} of {len(queries)} queries")

    @activity.defn(name=VERIFY)
    async def verify(self, request: VerifyRequest) -> str:
        """Raise (retryably) while unhealthy: Temporal's retry policy is the polling loop."""
        checks: list[str] = []
        if request.probe_url:
            result = await self._prober(request.probe_url)
            if not result.ok:
                # A refusal stays one however often it is asked: no retries, the reason in the history.
                raise (PermanentError if result.error.startswith(REFUSED) else TemporaryError)(
                    f"probe {request.probe_url} unhealthy: {result.error}", type=ErrorType.UNHEALTHY
                )
            checks.append(f"probe {request.probe_url} answered {result.status}")
        if request.healthy_query:
            if self._prometheus is None:
                raise PermanentError(
                    "healthy_query needs REMEDIATOR_PROMETHEUS_URL", type=ErrorType.PROMETHEUS_NOT_CONFIGURED
                )
            sample: MetricSample = await self._prometheus.instant(request.healthy_query)
            if sample.error or not sample.value:
                raise TemporaryError(
                    f"{request.healthy_query} is {sample.error or sample.value}", type=ErrorType.UNHEALTHY
                )
            checks.append(f"{request.healthy_query} = {sample.value:g}")
        if not checks:
            if self._prometheus is None:
                raise PermanentError(
                    "nothing to verify with: no probe URL and no Prometheus",
                    type=ErrorType.PROMETHEUS_NOT_CONFIGURED,
                )
            # With no explicit check, healthy means Prometheus no longer reports the alert firing.
            sample = await self._prometheus.instant(firing_query(request.alert))
            if sample.error or sample.value:
                raise TemporaryError(f"{request.alert.name} still firing", type=ErrorType.UNHEALTHY)
            checks.append(f"{request.alert.name} no longer firing")
        return "; ".join(checks)
