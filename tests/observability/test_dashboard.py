"""deploy/grafana/remediator.json: every query is valid PromQL and names only metrics we export.

Debian's real Prometheus scrapes the API's /metrics and the worker's metrics port (without any
credential), then parses and runs every panel's query; the metric names a query uses must be among
those Prometheus scraped or those the worker declares (workflows/metrics.py: a rollback, say, shows
up only once one happened).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from activities.config import REPO_ROOT
from tests.observability.conftest import Driven, Stack
from tests.prometheus import running_prometheus
from workflows import metrics

pytestmark = [pytest.mark.integration, pytest.mark.ansible]

DASHBOARD = REPO_ROOT / "deploy" / "grafana" / "remediator.json"
# Grafana's own variable; any window of a few scrapes stands in for it here.
GRAFANA_VARIABLES = {"$__rate_interval": "1m"}
PROMQL_WORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
}


def queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def metric_names(expr: str) -> set[str]:
    """Names of the series an expression selects: identifiers that are not functions, keywords or labels."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # strings (label values)
    bare = re.sub(r"\{[^}]*\}", "", bare)  # label matchers
    bare = re.sub(r"\[[^\]]*\]", "", bare)  # range windows
    bare = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", bare)  # grouping labels
    names = re.findall(r"\b[A-Za-z_:][A-Za-z0-9_:]*\b(?!\s*\()", bare)
    return {n for n in names if n not in PROMQL_WORDS}


def declared() -> set[str]:
    names = set()
    for name, (_, kind) in metrics.EXPORTED.items():
        names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"} if kind == "histogram" else {name}
    return names


def host_port(url: str) -> str:
    return urlsplit(url).netloc


def test_the_name_reader_finds_selectors_only() -> None:
    expr = 'histogram_quantile(0.9, sum by (le) (rate(a_bucket{phase!~"x|y"}[5m]))) / on (le) b'
    assert metric_names(expr) == {"a_bucket", "b"}


async def test_every_panel_query_runs_in_prometheus_on_exported_metrics(
    stack: Stack, driven: Driven, tmp_path: Path
) -> None:
    targets = [host_port(stack.api_url), host_port(stack.worker_metrics_url)]
    assert queries(), "the dashboard has no queries"
    async with (
        running_prometheus(tmp_path / "prometheus", targets) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        scraped = set((await http.get("/api/v1/label/__name__/values")).json()["data"])
        assert {"remediator_alerts_received_total", "remediator_incidents", metrics.ACTIONS} <= scraped
        for expr in queries():
            unknown = metric_names(expr) - scraped - declared()
            assert not unknown, f"{expr} names metrics nobody exports: {unknown}"
            query = expr
            for variable, stand_in in GRAFANA_VARIABLES.items():
                query = query.replace(variable, stand_in)
            answer = (await http.get("/api/v1/query", params={"query": query})).json()
            assert answer["status"] == "success", f"{expr}: {answer}"
