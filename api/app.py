"""The HTTP API: a small factory that wires settings, the Temporal client and the routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from temporalio.service import RetryConfig

from activities.config import Settings
from api import (
    errors,
    metrics,
    routes_alerts,
    routes_health,
    routes_incidents,
    routes_keys,
    routes_logs,
    routes_operations,
    routes_slack,
)
from api.auth.credentials import Authenticator
from api.auth.middleware import Authenticate
from api.board import routes as board
from api.body_limit import BodyLimit
from api.ingest import Intake, Pinning
from worker.client import connect
from worker.telemetry import tracer_provider as process_tracer_provider

# A Temporal blip gets two seconds of the SDK's retries; past that the sender (Alertmanager, Grafana,
# the CLI) gets a 503 at once and retries on its own schedule instead of holding a request open.
API_RETRY = RetryConfig(max_elapsed_time_millis=2_000, max_interval_millis=500)


def create_app(
    settings: Settings, temporal_address: str | None = None, tracer_provider: TracerProvider | None = None
) -> FastAPI:
    """`temporal_address` overrides Temporal's environment configuration (used by `remediator dev`).

    Requests are traced when `tracer_provider` is given or OTEL_* configure one (worker/telemetry.py),
    and the trace continues through the Temporal client into workflows and activities.
    """
    tracer_provider = tracer_provider or process_tracer_provider()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Once per start: a malformed playbook or policy fails here (PinningError, file:line: field),
        # never per request, and every incident is pinned to what was validated.
        app.state.pinning = Pinning.load(settings)
        # Refuses to start with nothing to authenticate anyone (AuthConfigError), or warns that
        # REMEDIATOR_AUTH=disabled leaves the door open; a malformed policy `access:` section fails too.
        app.state.authenticator = Authenticator(settings)
        app.state.authenticator.check()
        # Lazy: the API starts (and answers 503) while Temporal is down, and works once it is up.
        app.state.client = await connect(
            temporal_address,
            settings=settings,
            lazy=True,
            retry_config=API_RETRY,
            tracer_provider=tracer_provider,
        )
        # Storm control and re-fire coalescing span requests, so they live as long as the app.
        app.state.intake = Intake(app.state.client, settings, app.state.pinning)
        yield

    app = FastAPI(
        title="Remediator",
        summary="Alerts in, durable and auditable remediation out, on Temporal.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(Authenticate)  # added last, so it runs first: no credential, no body read
    errors.install(app)
    routers = (
        routes_alerts,
        routes_incidents,
        routes_health,
        routes_logs,
        routes_operations,
        routes_keys,
        routes_slack,
        board,
    )
    for module in routers:
        app.include_router(module.router)
    app.include_router(metrics.router)
    if tracer_provider is not None:
        # Probes and scrapes are not worth a trace each.
        FastAPIInstrumentor.instrument_app(
            app,
            tracer_provider=tracer_provider,
            excluded_urls="/healthz,/readyz,/metrics",
            exclude_spans=["receive", "send"],
        )
    return app
