"""HTTP health probes of an alert's target."""

from __future__ import annotations

import time

import httpx
from temporalio import activity

from worker.settings import Settings
from workflows.investigation_models import ProbeRequest
from workflows.models import ProbeResult


async def probe(client: httpx.AsyncClient, url: str) -> ProbeResult:
    """One GET; healthy means a 2xx answer. Connection errors are results, not exceptions."""
    started = time.perf_counter()
    try:
        response = await client.get(url)
    except httpx.HTTPError as err:
        return ProbeResult(url=url, ok=False, error=f"{type(err).__name__}: {err}".rstrip(": "))
    latency = (time.perf_counter() - started) * 1000
    ok = response.is_success
    error = "" if ok else f"HTTP {response.status_code}"
    return ProbeResult(url=url, ok=ok, status=response.status_code, latency_ms=round(latency, 1), error=error)


class ProbeActivities:
    """One HTTP probe as a read-only tool of the LLM investigation."""

    def __init__(self, settings: Settings) -> None:
        self._http = httpx.AsyncClient(timeout=settings.probe_timeout_seconds)

    @activity.defn(name="probe.http")
    async def probe(self, request: ProbeRequest) -> ProbeResult:
        return await probe(self._http, request.url)
