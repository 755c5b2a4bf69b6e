"""Prometheus over its HTTP API: instant and range queries."""

from __future__ import annotations

import time
from typing import Any

import httpx
from temporalio import activity

from activities.config import Settings
from activities.errors import PermanentError
from workflows.activity_names import METRICS_QUERY
from workflows.error_types import ErrorType
from workflows.evidence import MetricSample
from workflows.investigation_models import PromQuery


class PrometheusError(Exception):
    """Prometheus answered, but not with data (bad PromQL, server error)."""


class Prometheus:
    def __init__(self, client: httpx.AsyncClient, base_url: str) -> None:
        self._client = client
        self._base = base_url.rstrip("/")

    async def _get(self, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
        response = await self._client.get(f"{self._base}{path}", params=params)
        body = (
            response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        )
        if response.status_code != 200 or body.get("status") != "success":
            raise PrometheusError(body.get("error") or f"HTTP {response.status_code}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    async def instant(self, query: str) -> MetricSample:
        try:
            result = await self._get("/api/v1/query", {"query": query})
        except (PrometheusError, httpx.HTTPError) as err:
            return MetricSample(query=query, kind="instant", error=str(err) or type(err).__name__)
        # Sum across series: the questions we ask ("how many are down?") aggregate naturally.
        value = sum(float(series["value"][1]) for series in result) if result else None
        return MetricSample(query=query, kind="instant", value=value)

    async def range(self, query: str, minutes: int = 30, step: str = "60s") -> MetricSample:
        end = time.time()
        params = {"query": query, "start": str(end - minutes * 60), "end": str(end), "step": step}
        try:
            result = await self._get("/api/v1/query_range", params)
        except (PrometheusError, httpx.HTTPError) as err:
            return MetricSample(query=query, kind="range", error=str(err) or type(err).__name__)
        points = [(float(ts), float(v)) for ts, v in result[0]["values"]] if result else []
        return MetricSample(query=query, kind="range", points=points)


class MetricsActivities:
    """PromQL as a read-only tool of the LLM investigation."""

    def __init__(self, settings: Settings) -> None:
        http = httpx.AsyncClient(timeout=settings.probe_timeout_seconds)
        self._prometheus = Prometheus(http, settings.prometheus_url) if settings.prometheus_url else None

    @activity.defn(name=METRICS_QUERY)
    async def query(self, request: PromQuery) -> MetricSample:
        if self._prometheus is None:
            raise PermanentError(
                "Prometheus is not configured (REMEDIATOR_PROMETHEUS_URL)",
                type=ErrorType.PROMETHEUS_NOT_CONFIGURED,
            )
        if request.range_minutes:
            return await self._prometheus.range(request.query, minutes=request.range_minutes)
        return await self._prometheus.instant(request.query)
