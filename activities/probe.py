"""HTTP health probes of an alert's target."""

from __future__ import annotations

import time

import httpx

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
