"""Liveness and readiness for process supervisors and load balancers."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from temporalio.service import RPCError

from api.deps import ClientDep, SettingsDep
from api.errors import unavailable
from api.schemas import ErrorBody

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive (this says nothing about Temporal)."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=dict[str, str],
    responses={503: {"model": ErrorBody, "description": "Temporal unreachable"}},
)
async def readyz(client: ClientDep, settings: SettingsDep) -> dict[str, str] | JSONResponse:
    """200 only while Temporal answers its health check; 503 otherwise."""
    target = client.service_client.config.target_host
    try:
        serving = await client.service_client.check_health(timeout=settings.api_temporal_timeout)
    except (RuntimeError, RPCError) as err:  # RuntimeError: a lazy client's failed first connect
        return unavailable(f"Temporal at {target} is unreachable: {err}")
    if not serving:
        return unavailable(f"Temporal at {target} answers but its workflow service is not serving")
    return {"status": "ready", "temporal": target}
