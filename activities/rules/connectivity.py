"""Failures between things: dependencies, the network, certificates and nodes."""

from __future__ import annotations

import re
from collections.abc import Iterator

from activities.rules.base import Context, Signal
from activities.rules.series import latest
from workflows.evidence import MetricSample

_GATEWAY_STATUSES = (502, 503, 504)
_JOB = re.compile(r"(?:job|instance|service)=\"([^\"]+)\"")
_EXPIRED_PROBE = re.compile(r"certificate has expired|CERT_HAS_EXPIRED|certificate expired", re.IGNORECASE)
_CERT_PROBE = re.compile(r"certificate|x509|SSL", re.IGNORECASE)
_TIMEOUT_PROBE = re.compile(r"timeout|timed out", re.IGNORECASE)
_REFUSED_PROBE = re.compile(r"ConnectError|refused", re.IGNORECASE)
DAY = 86400.0


def _target_name(sample: MetricSample) -> str:
    """The job or instance an `up`-style query is about: `up{job="x"}` -> x, `pg_up` -> pg."""
    found = _JOB.search(sample.query) or re.search(r"(\w+)_up", sample.query)
    return found.group(1) if found else sample.query


def _peers_up(ctx: Context) -> list[MetricSample]:
    """Dependencies whose own exporter says they are up; an `up` at 0 anywhere rules this out."""
    samples = [(s, latest(s)) for s in ctx.metrics("up")]
    if any(v is not None and v <= 0 for _, v in samples):
        return []
    return [s for s, v in samples if v is not None and not ctx.is_self(_target_name(s).lower())]


def dependency_down(ctx: Context) -> Iterator[Signal]:
    refused = ctx.targets(ctx.logs("refused"))
    foreign = {host: hit for host, hit in refused.items() if not ctx.is_self(host)}
    for host, hit in list(foreign.items())[:3]:
        yield Signal(
            "dependency_down", 0.6, f"refused_{host}", f"{host} refuses connections", hit.ref, hit.quote
        )
    if refused and not foreign:
        # Refusals from this service's own address are a symptom of its own crash, not of a dependency.
        hit = next(iter(refused.values()))
        yield Signal(
            "dependency_down", 0.2, "refused_self", "the service's own port refuses", hit.ref, hit.quote
        )
    elif not refused and (hits := ctx.logs("refused")):
        yield Signal(
            "dependency_down", 0.45, "refused", "connections are refused", hits[0].ref, hits[0].quote
        )
    for hit in ctx.logs("upstream")[:1]:
        yield Signal(
            "dependency_down", 0.45, "upstream", "the upstream fails behind a proxy", hit.ref, hit.quote
        )
    for hit in ctx.logs("db_degraded")[:1]:
        yield Signal(
            "dependency_down", 0.4, "db_degraded", "the datastore turns clients away", hit.ref, hit.quote
        )
    for hit in ctx.logs("breaker")[:1]:
        yield Signal(
            "dependency_down",
            0.35,
            "breaker",
            "a circuit breaker to a dependency is open",
            hit.ref,
            hit.quote,
        )
    for sample in ctx.metrics("up"):
        value = latest(sample)
        if value is None or value > 0:
            continue
        name = _target_name(sample)
        own = ctx.is_self(name.lower())
        weight, reason = (0.4, f"{name} itself is down") if own else (0.6, f"{name} is down")
        yield Signal("dependency_down", weight, f"up_{name}", reason, ctx.metric_ref(sample), f"{value:g}")
    probe = ctx.evidence.probe
    if probe is not None and not probe.ok:
        if _REFUSED_PROBE.search(probe.error):
            # The probed endpoint is what callers depend on; refused says it is down, not why.
            reason = f"{probe.url} refuses connections: nothing is listening"
            yield Signal("dependency_down", 0.45, "probe_refused", reason, "probe", probe.error)
        elif probe.status in _GATEWAY_STATUSES:
            reason = f"{probe.url} answers {probe.status}: a gateway cannot reach what is behind it"
            yield Signal("dependency_down", 0.3, "probe_gateway", reason, "probe", f"status={probe.status}")


def network(ctx: Context) -> Iterator[Signal]:
    for hit in ctx.logs("dns")[:1]:
        yield Signal("network", 0.6, "dns", "names do not resolve", hit.ref, hit.quote)
    for hit in ctx.logs("unreachable")[:1]:
        yield Signal("network", 0.55, "unreachable", "there is no route to the peer", hit.ref, hit.quote)
    for hit in ctx.logs("reset")[:1]:
        yield Signal("network", 0.35, "reset", "connections are reset mid-flight", hit.ref, hit.quote)
    timeouts = ctx.logs("timeout")
    targets = {host: hit for host, hit in ctx.targets(timeouts).items() if not ctx.is_self(host)}
    if len(targets) >= 2:
        first = next(iter(targets.values()))
        reason = f"calls to {len(targets)} different hosts time out ({', '.join(sorted(targets)[:4])})"
        yield Signal("network", 0.5, "timeouts_many", reason, first.ref, first.quote)
    elif targets:
        host, hit = next(iter(targets.items()))
        yield Signal("network", 0.2, "timeouts_one", f"calls to {host} time out", hit.ref, hit.quote)
        yield Signal(
            "dependency_down", 0.35, f"timeout_{host}", f"{host} does not answer in time", hit.ref, hit.quote
        )
    elif timeouts:
        yield Signal("network", 0.25, "timeouts", "calls time out", timeouts[0].ref, timeouts[0].quote)
    failures = timeouts + ctx.logs("unreachable") + ctx.logs("reset")
    for peer in _peers_up(ctx)[:1]:
        if failures:
            # The peer is alive by its own account, yet calls to it fail: the path between is broken.
            name, ref = _target_name(peer), ctx.metric_ref(peer)
            reason = f"{name} reports itself up, yet calls to it fail"
            yield Signal("network", 0.35, "path", reason, failures[0].ref, failures[0].quote)
            yield Signal("dependency_down", -0.4, "peer_up", f"{name} reports itself up", ref, "1")
    for event in ctx.events("FailedCreatePodSandBox", "NetworkNotReady"):
        if event.reason == "NetworkNotReady" or any(w in event.message.lower() for w in ("network", "cni")):
            reason = "pod networking cannot be set up"
            yield Signal("network", 0.6, "cni", reason, ctx.event_ref(event), ctx.event_quote(event))
    for sample in ctx.metrics("dns"):
        if (value := latest(sample)) and value > 0:
            reason = "the cluster DNS answers with failures"
            yield Signal("network", 0.4, "dns_metric", reason, ctx.metric_ref(sample), f"{value:g}")
    for sample in ctx.metrics("network_errors"):
        value = latest(sample)
        if value is not None and (value >= 0.05 if "/" in sample.query else value >= 10):
            reason = "packets are dropped or retransmitted"
            yield Signal("network", 0.35, "packet_loss", reason, ctx.metric_ref(sample), f"{value:g}")
    probe = ctx.evidence.probe
    if probe is not None and not probe.ok and _TIMEOUT_PROBE.search(probe.error):
        yield Signal(
            "network", 0.25, "probe_timeout", f"{probe.url} does not answer in time", "probe", probe.error
        )


def _remaining_seconds(ctx: Context, query: str, value: float) -> float | None:
    if "time()" in query:
        return value
    now = ctx.now
    return value - now.timestamp() if now else None


def cert_expiry(ctx: Context) -> Iterator[Signal]:
    for sample in ctx.metrics("cert"):
        value = latest(sample)
        remaining = _remaining_seconds(ctx, sample.query, value) if value is not None else None
        if remaining is None:
            continue
        ref, days = ctx.metric_ref(sample), remaining / DAY
        if remaining < 0:
            yield Signal(
                "cert_expiry",
                0.85,
                "cert_metric",
                f"the certificate expired {-days:.1f} days ago",
                ref,
                f"{value:g}",
            )
        elif days < 30:
            weight = 0.6 if days < 1 else 0.4 if days < 7 else 0.2
            yield Signal(
                "cert_expiry",
                weight,
                "cert_metric",
                f"the certificate expires in {days:.1f} days",
                ref,
                f"{value:g}",
            )
        else:
            yield Signal(
                "cert_expiry",
                -0.5,
                "cert_valid",
                f"the certificate is valid for {days:.0f} days",
                ref,
                f"{value:g}",
            )
    for hit in ctx.logs("cert_expired")[:1]:
        yield Signal(
            "cert_expiry", 0.8, "cert_log", "TLS peers reject an expired certificate", hit.ref, hit.quote
        )
    if not ctx.logs("cert_expired"):
        for hit in ctx.logs("cert_invalid")[:1]:
            yield Signal(
                "cert_expiry", 0.35, "cert_log", "TLS certificate verification fails", hit.ref, hit.quote
            )
    for event in ctx.evidence.events:
        if event.type == "Warning" and event.object.startswith(
            ("Certificate/", "CertificateRequest/", "Order/")
        ):
            reason = "cert-manager fails to renew the certificate"
            yield Signal("cert_expiry", 0.35, "renewal", reason, ctx.event_ref(event), ctx.event_quote(event))
    probe = ctx.evidence.probe
    if probe is not None and not probe.ok and _CERT_PROBE.search(probe.error):
        weight = 0.6 if _EXPIRED_PROBE.search(probe.error) else 0.35
        yield Signal(
            "cert_expiry", weight, "cert_probe", f"{probe.url} fails its TLS handshake", "probe", probe.error
        )


def node_failure(ctx: Context) -> Iterator[Signal]:
    for node in ctx.evidence.nodes:
        if not node.ready:
            yield Signal(
                "node_failure",
                0.8,
                "node_down",
                f"node {node.name} is NotReady",
                f"nodes[{node.name}]",
                "Ready=False",
            )
    for event in ctx.events("NodeNotReady", "NodeStatusUnknown", "NodeLost"):
        yield Signal(
            "node_failure",
            0.7,
            "node_event",
            "a node went NotReady",
            ctx.event_ref(event),
            ctx.event_quote(event),
        )
    for event in ctx.events("TaintManagerEviction", "NodeControllerEviction", "Rebooted"):
        reason = "pods are evicted from a failed node" if "Eviction" in event.reason else "a node rebooted"
        yield Signal(
            "node_failure", 0.45, "node_eviction", reason, ctx.event_ref(event), ctx.event_quote(event)
        )
    for event in ctx.events("FailedScheduling"):
        if "unreachable" in event.message or "not-ready" in event.message:
            reason = "nodes carry the unreachable/not-ready taint"
            yield Signal("node_failure", 0.4, "taint", reason, ctx.event_ref(event), ctx.event_quote(event))
    for sample in ctx.metrics("node_ready"):
        value = latest(sample)
        healthy_series = 'status="true"' in sample.query
        if value is not None and ((healthy_series and value == 0) or (not healthy_series and value > 0)):
            reason = "kube-state-metrics reports a node not Ready"
            yield Signal("node_failure", 0.7, "node_metric", reason, ctx.metric_ref(sample), f"{value:g}")
    for pod in ctx.evidence.pods:
        if pod.phase == "Unknown":
            reason = f"{pod.name} is in phase Unknown: its node stopped reporting"
            yield Signal("node_failure", 0.45, "pod_unknown", reason, f"pods[{pod.name}].phase", "Unknown")
    for hit in ctx.logs("kubelet_node")[:1]:
        yield Signal(
            "node_failure", 0.5, "kubelet_log", "the kubelet reports the node unhealthy", hit.ref, hit.quote
        )
