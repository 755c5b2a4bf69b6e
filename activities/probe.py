"""HTTP health probes of an alert's target, only to hosts the outbound allow-list lets through."""

from __future__ import annotations

import time

import httpx
from temporalio import activity

from activities.config import Settings
from activities.outbound import AllowList, Refused
from workflows.activity_names import PROBE_HTTP
from workflows.evidence import ProbeResult
from workflows.investigation_models import ProbeRequest

MAX_REDIRECTS = 5
REFUSED = "refused by allow-list"


def probe_client(settings: Settings) -> httpx.AsyncClient:
    # trust_env=False: an HTTP(S)_PROXY from the environment would resolve and connect for us,
    # past the addresses checked here.
    return httpx.AsyncClient(timeout=settings.probe_timeout_seconds, trust_env=False)


async def _get(client: httpx.AsyncClient, url: str, allow: AllowList) -> httpx.Response:
    """GET at the checked address with the name kept in Host and SNI; each redirect is checked anew."""
    target = httpx.URL(url)
    for _ in range(MAX_REDIRECTS + 1):
        if target.scheme not in ("http", "https"):
            raise Refused(f"{target.scheme or 'no'} scheme in {target}")
        address = await allow.resolve(target.host, target.port or (443 if target.scheme == "https" else 80))
        request = client.build_request(
            "GET",
            target.copy_with(host=address),
            headers={"Host": target.netloc.decode("ascii")},
            extensions={"sni_hostname": target.host} if target.scheme == "https" else {},
        )
        response = await client.send(request, follow_redirects=False)
        if not response.has_redirect_location:
            return response
        target = target.join(response.headers["location"])
    raise httpx.TooManyRedirects(f"more than {MAX_REDIRECTS} redirects", request=request)


async def probe(client: httpx.AsyncClient, url: str, allow: AllowList) -> ProbeResult:
    """One GET; healthy means a 2xx answer. Refusals and connection errors are results, not exceptions."""
    started = time.perf_counter()
    try:
        response = await _get(client, url, allow)
    except Refused as err:
        return ProbeResult(url=url, ok=False, error=f"{REFUSED}: {err}")
    except (httpx.HTTPError, httpx.InvalidURL, OSError) as err:  # OSError: the name does not resolve
        return ProbeResult(url=url, ok=False, error=f"{type(err).__name__}: {err}".rstrip(": "))
    latency = (time.perf_counter() - started) * 1000
    ok = response.is_success
    error = "" if ok else f"HTTP {response.status_code}"
    return ProbeResult(url=url, ok=ok, status=response.status_code, latency_ms=round(latency, 1), error=error)


class Prober:
    """The worker's probes: one client, the allow-list of its settings."""

    def __init__(self, settings: Settings) -> None:
        self._http = probe_client(settings)
        self._allow = AllowList.parse(settings.probe_allow)

    async def __call__(self, url: str) -> ProbeResult:
        return await probe(self._http, url, self._allow)


class ProbeActivities:
    """One HTTP probe as a read-only tool of the LLM investigation."""

    def __init__(self, settings: Settings) -> None:
        self._probe = Prober(settings)

    @activity.defn(name=PROBE_HTTP)
    async def probe(self, request: ProbeRequest) -> ProbeResult:
        return await self._probe(request.url)
