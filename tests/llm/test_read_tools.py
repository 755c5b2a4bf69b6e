"""The investigation's own read tools: `metrics.query` against a real Prometheus, `probe.http` over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError

from activities.config import Settings
from activities.metrics import MetricsActivities
from activities.probe import ProbeActivities
from tests.llm.fake_openai import FakeOpenAI
from tests.prometheus import running_prometheus
from worker.devserver import free_port
from workflows.investigation_models import ProbeRequest, PromQuery


@pytest.fixture(scope="module")
async def prometheus_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """Debian's Prometheus with no targets: constant expressions such as vector(42) need none."""
    async with running_prometheus(tmp_path_factory.mktemp("prometheus")) as url:
        yield url


async def test_instant_and_range_queries(prometheus_url: str, tmp_path: Path) -> None:
    metrics = MetricsActivities(Settings(prometheus_url=prometheus_url, state_dir=tmp_path))

    instant = await metrics.query(PromQuery(query="vector(42)"))
    ranged = await metrics.query(PromQuery(query="vector(1)", range_minutes=5))

    assert (instant.kind, instant.value, instant.error) == ("instant", 42.0, "")
    assert ranged.kind == "range" and len(ranged.points) >= 5 and {v for _, v in ranged.points} == {1.0}


async def test_bad_promql_is_an_answer_the_model_can_read(prometheus_url: str, tmp_path: Path) -> None:
    metrics = MetricsActivities(Settings(prometheus_url=prometheus_url, state_dir=tmp_path))
    sample = await metrics.query(PromQuery(query="sum(rate(http_requests_total[5m]"))
    assert sample.value is None and "parse error" in sample.error


async def test_without_prometheus_the_tool_fails_for_good(tmp_path: Path) -> None:
    with pytest.raises(ApplicationError) as caught:
        await MetricsActivities(Settings(prometheus_url="", state_dir=tmp_path)).query(PromQuery(query="up"))
    assert caught.value.non_retryable and "REMEDIATOR_PROMETHEUS_URL" in caught.value.message


async def test_probe(fake_llm: FakeOpenAI, tmp_path: Path) -> None:
    probe = ProbeActivities(Settings(state_dir=tmp_path, probe_allow=["127.0.0.1"]))
    down = await probe.probe(ProbeRequest(url=f"{fake_llm.root}/health/503"))
    up = await probe.probe(ProbeRequest(url=f"{fake_llm.root}/health/200"))
    refused = await probe.probe(ProbeRequest(url=f"http://127.0.0.1:{free_port()}/health"))

    assert (down.ok, down.status, down.error) == (False, 503, "HTTP 503")
    assert (up.ok, up.status) == (True, 200)
    assert not refused.ok and refused.error.startswith("ConnectError")
