"""One traced, metered stack on the real dev server, and one incident driven through it.

The worker and the API share a tracer provider with an in-memory exporter (passed in, never made
global, so no other test is traced); the worker's Temporal runtime serves Prometheus metrics on a
port of its own, built by the same `worker_runtime` that `remediator worker` uses. The incident is a
real ServiceDown: the shipped playbook probes, waits for approval, restarts through real Ansible and
verifies (tests/api/support.LiveService).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import Client

from api.app import create_app
from tests.api.support import LiveService, live_settings, serve, serve_directory, wait_for_phase
from tests.api.test_live import fire, service_down
from tests.credentials import ApiKeys, ByRoute
from worker.client import connect
from worker.devserver import DevServer, free_port
from worker.main import activity_pool, build_worker
from worker.telemetry import worker_runtime
from workflows.incident_models import IncidentState
from workflows.phases import Phase

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Prometheus' text format, read by prometheus_client's own parser: (name, labels) -> value."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every series of `name` whose labels include `labels` (0 when there is none)."""
    wanted = set(labels.items())
    return sum(v for (n, have), v in samples.items() if n == name and wanted <= have)


@dataclass(frozen=True)
class Stack:
    http: httpx.AsyncClient
    api_url: str
    worker_metrics_url: str
    spans: InMemorySpanExporter
    client: Client  # untraced, for describing workflows as a person's tools would

    async def scrape(self) -> tuple[Samples, Samples]:
        """(the API's /metrics, the worker's), each read without any credential."""
        async with httpx.AsyncClient(timeout=30) as plain:
            api = await plain.get(f"{self.api_url}/metrics")
            worker = await plain.get(self.worker_metrics_url)
        assert api.status_code == 200 and worker.status_code == 200, (api.text, worker.text)
        return parse(api.text), parse(worker.text)


@dataclass(frozen=True)
class Driven:
    """The incident the module's tests read, and the metrics scraped just before it was opened."""

    incident_id: str
    state: IncidentState
    before: tuple[Samples, Samples]


@pytest.fixture(scope="session")
def observed_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    root = tmp_path_factory.mktemp("observed-up")
    with serve_directory(root) as url:
        yield LiveService(url=url, root=root)


@pytest.fixture(scope="session")
async def stack(
    dev_server: DevServer,
    dev_client: Client,
    observed_service: LiveService,
    api_keys: ApiKeys,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Stack]:
    settings = live_settings(
        tmp_path_factory.mktemp("observed"),
        observed_service,
        task_queue=f"observed-{uuid.uuid4().hex[:8]}",
        api_keys_file=api_keys.path,
        worker_metrics_port=free_port(),
        metrics_count_interval=timedelta(0),
    )
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    runtime = worker_runtime(settings)
    assert runtime is not None
    worker_client = await connect(dev_server.address, runtime=runtime, tracer_provider=provider)
    metrics_url = f"http://127.0.0.1:{settings.worker_metrics_port}/metrics"
    with activity_pool(settings) as pool:
        async with (
            build_worker(worker_client, settings, pool),
            serve(create_app(settings, dev_server.address, tracer_provider=provider)) as url,
            httpx.AsyncClient(base_url=url, timeout=60, auth=ByRoute(api_keys)) as http,
        ):
            yield Stack(http, url, metrics_url, spans, dev_client)


@pytest.fixture(scope="session")
async def driven(stack: Stack, observed_service: LiveService) -> Driven:
    """ServiceDown through the API: opened, awaiting approval, approved by alice, resolved."""
    before = await stack.scrape()
    outcome = await fire(stack.http, service_down(observed_service))
    incident_id = str(outcome["incident_id"])
    await wait_for_phase(stack.http, incident_id, Phase.AWAITING_APPROVAL)
    response = await stack.http.post(f"/incidents/{incident_id}/approve", json={"approver": "alice"})
    assert response.status_code == 200, response.text
    state = await wait_for_phase(stack.http, incident_id, Phase.RESOLVED)
    # The workflow closes after recording the incident in memory; its last spans come with that.
    await stack.client.get_workflow_handle(incident_id).result()
    return Driven(incident_id, state, before)
