"""PromQL for an alert's evidence: the measurements the diagnosis rules read, scoped by its labels.

The metric names are the usual exporters' (cAdvisor, kube-state-metrics, node_exporter, blackbox,
an instrumented service's http_requests_total) and each query is shaped for the metric family the
rules recognise (activities/rules/patterns.py): a ratio for a share of a limit, a range for a trend.
Label values come from the alert, which anyone who can send one controls, so every value is quoted
as a PromQL string and regular expressions are escaped: a label cannot widen or rewrite a query.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from workflows.alerts import Alert


@dataclass(frozen=True)
class EvidenceQuery:
    promql: str
    range_minutes: int = 0  # 0: an instant query
    step: str = "60s"


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _matchers(*terms: tuple[str, str, str]) -> str:
    """`name="value"` terms (op `=`, `!=`, `=~`, `!~`) joined for a selector's braces."""
    return ",".join(f'{name}{op}"{_quote(value)}"' for name, op, value in terms)


def firing_query(alert: Alert) -> str:
    """Whether Prometheus still reports the alert firing (verification uses it too)."""
    return f"ALERTS{{{_matchers(('alertname', '=', alert.name), ('alertstate', '=', 'firing'))}}}"


def _workload(alert: Alert) -> tuple[tuple[str, str, str], ...]:
    """Namespace and pod (or a Deployment's pods by name prefix), the kube-state-metrics label names."""
    labels = alert.labels
    namespace, pod, deployment = labels.get("namespace"), labels.get("pod"), labels.get("deployment")
    if not namespace or not (pod or deployment):
        return ()
    if pod:
        return (("namespace", "=", namespace), ("pod", "=", pod))
    # A Deployment's pods are named <deployment>-<template hash>-<suffix>.
    return (("namespace", "=", namespace), ("pod", "=~", re.escape(f"{deployment}-") + ".+"))


def _workload_queries(alert: Alert) -> list[EvidenceQuery]:
    pods = _workload(alert)
    if not pods:
        return []
    container = alert.labels.get("container")
    # cAdvisor also reports a whole-pod cgroup with an empty container name; it would count twice.
    one = pods + ((("container", "=", container),) if container else (("container", "!=", ""),))
    w, c = _matchers(*pods), _matchers(*one)
    return [
        EvidenceQuery(
            f"sum(rate(container_cpu_usage_seconds_total{{{c}}}[5m]))"
            f' / sum(kube_pod_container_resource_limits{{{c},resource="cpu"}})'
        ),
        EvidenceQuery(
            f"sum(rate(container_cpu_cfs_throttled_periods_total{{{c}}}[5m]))"
            f" / sum(rate(container_cpu_cfs_periods_total{{{c}}}[5m]))"
        ),
        EvidenceQuery(
            f"sum(container_memory_working_set_bytes{{{c}}})"
            f' / sum(kube_pod_container_resource_limits{{{c},resource="memory"}})'
        ),
        # Hours of working set: a leak is a steady rise, which a 30-minute window cannot show.
        EvidenceQuery(f"sum(container_memory_working_set_bytes{{{c}}})", range_minutes=360, step="15m"),
        EvidenceQuery(f"sum(increase(kube_pod_container_status_restarts_total{{{c}}}[1h]))"),
        EvidenceQuery(f'sum(kube_pod_container_status_last_terminated_reason{{{c},reason="OOMKilled"}})'),
        EvidenceQuery(f"sum(rate(http_requests_total{{{w}}}[5m]))", range_minutes=120, step="5m"),
        EvidenceQuery(f'sum(rate(http_requests_total{{{w},code=~"5.."}}[5m]))', range_minutes=120, step="5m"),
        EvidenceQuery(
            f"histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{{{w}}}[5m])))",
            range_minutes=120,
            step="5m",
        ),
    ]


def _host_queries(alert: Alert) -> list[EvidenceQuery]:
    labels = alert.labels
    found: list[EvidenceQuery] = []
    if node := labels.get("node"):
        healthy = _matchers(("node", "=", node), ("condition", "=", "Ready"), ("status", "=", "true"))
        found.append(EvidenceQuery(f"sum(kube_node_status_condition{{{healthy}}})"))
    if instance := labels.get("instance"):
        terms = [("instance", "=", instance), ("fstype", "!~", "tmpfs|overlay|squashfs")]
        if mountpoint := labels.get("mountpoint"):
            terms.append(("mountpoint", "=", mountpoint))
        fs = _matchers(*terms)
        found += [
            EvidenceQuery(f"min(node_filesystem_avail_bytes{{{fs}}} / node_filesystem_size_bytes{{{fs}}})"),
            EvidenceQuery(f"min(predict_linear(node_filesystem_avail_bytes{{{fs}}}[6h], 4 * 3600))"),
            EvidenceQuery(f"min(probe_ssl_earliest_cert_expiry{{{_matchers(terms[0])}}}) - time()"),
        ]
    if (namespace := labels.get("namespace")) and (claim := labels.get("persistentvolumeclaim")):
        pvc = _matchers(("namespace", "=", namespace), ("persistentvolumeclaim", "=", claim))
        found.append(
            EvidenceQuery(
                f"min(kubelet_volume_stats_available_bytes{{{pvc}}} / kubelet_volume_stats_capacity_bytes{{{pvc}}})"
            )
        )
    return found


def evidence_queries(alert: Alert) -> list[EvidenceQuery]:
    """Is it still firing, is its job up, and what the workload, node, disk and certificate measure."""
    queries = [EvidenceQuery(firing_query(alert))]
    if job := alert.labels.get("job"):
        queries.append(EvidenceQuery(f"up{{{_matchers(('job', '=', job))}}}"))
    return queries + _workload_queries(alert) + _host_queries(alert)
