"""`remediator eval --llm`: the LLM investigation over the scenarios, with tool outputs replayed.

Each scenario's recorded evidence answers the model's tool calls (Prometheus queries, pods, events,
log templates, rollout history, the probe), so the model investigates as it would in an incident,
without a cluster. The heuristic's answer is its prior, as in the workflow. Per case the report
carries the tokens spent and the time spent waiting for the model; overall, totals, mean and p95.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from activities.config import Settings
from activities.diagnosis import heuristic_diagnosis
from activities.llm import Handler, llm_diagnoser
from api.cli.evaluation import EvalCase, EvalReport, Latency, LoadedScenario, TokenTotals
from workflows.evidence import Evidence, LogSummary, MetricSample, ProbeResult
from workflows.investigation_models import ProbeRequest, PromQuery
from workflows.kube_reads import (
    EventList,
    EventsQuery,
    LogsQuery,
    PodList,
    PodsQuery,
    RolloutHistory,
    RolloutHistoryQuery,
)


def _normal(query: str) -> str:
    return "".join(query.split())


def replayed_tools(evidence: Evidence) -> dict[str, Handler]:
    """Tool activities answering from the recorded evidence; only what was recorded is offered."""
    tools: dict[str, Handler] = {}
    if recorded := {_normal(m.query): m for m in evidence.metrics}:

        async def metrics(query: PromQuery) -> MetricSample:
            # An unrecorded query is answered like a Prometheus error: the model can read it and go on.
            missing = MetricSample(
                query=query.query,
                kind="range" if query.range_minutes else "instant",
                error="no data recorded for this query; recorded: " + " | ".join(recorded),
            )
            return recorded.get(_normal(query.query), missing)

        tools["metrics.query"] = metrics
    if pods_seen := evidence.pods:

        async def pods(query: PodsQuery) -> PodList:
            return PodList(namespace=query.namespace, pods=pods_seen[: query.limit], total=len(pods_seen))

        tools["kube_pods"] = pods
    if events_seen := evidence.events:

        async def events(query: EventsQuery) -> EventList:
            shown = events_seen[: query.limit]
            return EventList(namespace=query.namespace, events=shown, total=len(events_seen))

        tools["kube_events"] = events
    if (logs := evidence.logs) is not None:

        async def log_templates(query: LogsQuery) -> LogSummary:
            return logs

        tools["kube_log_templates"] = log_templates
    if revisions := evidence.deployments:

        async def rollouts(query: RolloutHistoryQuery) -> RolloutHistory:
            return RolloutHistory(deployment=query.deployment, revisions=revisions)

        tools["kube_rollout_history"] = rollouts
    if (probed := evidence.probe) is not None:

        async def probe(query: ProbeRequest) -> ProbeResult:
            return probed

        tools["probe.http"] = probe
    return tools


def p95(values: list[float]) -> float:
    """Nearest rank: the smallest value at or above 95% of them."""
    ordered = sorted(values)
    return ordered[max(math.ceil(0.95 * len(ordered)) - 1, 0)] if ordered else 0.0


async def evaluate_llm(scenarios: Sequence[LoadedScenario], settings: Settings) -> EvalReport:
    cases: list[EvalCase] = []
    prompt = completion = 0
    for case in scenarios:
        request = case.request
        diagnose = llm_diagnoser(settings, replayed_tools(request.evidence))
        result = await diagnose(request.alert, request.evidence, heuristic_diagnosis(request))
        prompt += result.usage.prompt_tokens
        completion += result.usage.completion_tokens
        measured = {
            "tokens": result.usage.total_tokens,
            "latency_ms": result.latency_ms,
            "fallback": result.fallback_reason or None,
        }
        cases.append(EvalCase.of(case, result.diagnosis).model_copy(update=measured))
    evaluated = EvalReport.of(cases)
    latencies = [c.latency_ms or 0.0 for c in cases]
    total = prompt + completion
    evaluated.tokens = TokenTotals(
        total=total,
        prompt=prompt,
        completion=completion,
        per_case=round(total / len(cases), 1) if cases else 0.0,
    )
    evaluated.latency_ms = Latency(
        mean=round(sum(latencies) / len(latencies), 1) if latencies else 0.0, p95=round(p95(latencies), 1)
    )
    return evaluated
