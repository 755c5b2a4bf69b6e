"""The one way to reach Temporal: Temporal's environment configuration, our data converter, tracing."""

from __future__ import annotations

import dataclasses

from opentelemetry.sdk.trace import TracerProvider
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.envconfig import ClientConfig
from temporalio.runtime import Runtime
from temporalio.service import RetryConfig, RPCError, RPCStatusCode

from activities.config import Settings, get_settings
from worker.codec import codec_for
from worker.telemetry import tracer_provider as process_tracer_provider
from worker.telemetry import tracing_interceptors
from workflows import search_attributes as sa


async def connect(
    address: str | None = None,
    *,
    settings: Settings | None = None,
    lazy: bool = False,
    retry_config: RetryConfig | None = None,
    runtime: Runtime | None = None,
    tracer_provider: TracerProvider | None = None,
) -> Client:
    """Connect using TEMPORAL_* settings and profiles; `address` overrides them (used by `dev`).

    Payloads go through the pydantic converter and, when `settings` (else the environment's) hold
    codec keys, the encryption codec: a worker and every client of it must share the keys.

    `lazy` defers the connection to the first call, so the API starts while Temporal is down and
    answers 503 until it is up (a lazy client cannot run a worker). `retry_config` bounds the SDK's
    own retries of failed calls (the API keeps them short so it answers 503 promptly).

    Traces (worker/telemetry.py) go to `tracer_provider`, else to the process' own when OTEL_*
    configured one; a worker of this client traces its workflows and activities too. `runtime`: the
    Temporal runtime (the worker's metrics endpoint); None is the process' default.
    """
    config = ClientConfig.load_client_connect_config()
    if address:
        config["target_host"] = address
    config.setdefault("target_host", "localhost:7233")
    return await Client.connect(
        **config,
        data_converter=data_converter(settings or get_settings()),
        lazy=lazy,
        retry_config=retry_config,
        runtime=runtime,
        interceptors=tracing_interceptors(tracer_provider or process_tracer_provider()),
    )


def data_converter(settings: Settings) -> DataConverter:
    """Ours: pydantic payloads, encrypted when the settings give codec keys (worker.codec.codec_for)."""
    return dataclasses.replace(pydantic_data_converter, payload_codec=codec_for(settings))


async def register_search_attributes(client: Client) -> None:
    """Register our Keyword search attributes one by one, keeping any that already exist.

    One by one because a server refuses a whole batch when any member exists, and the
    time-skipping test server cannot list them first.
    """
    for key in sa.ALL:
        request = AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD},
        )
        try:
            await client.operator_service.add_search_attributes(request)
        except RPCError as err:
            if err.status != RPCStatusCode.ALREADY_EXISTS and "already" not in err.message.lower():
                raise
