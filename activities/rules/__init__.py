"""Rules of the heuristic diagnoser: each reads the evidence and emits weighted signals."""

from __future__ import annotations

from activities.rules.base import Context, Rule, Signal
from activities.rules.connectivity import cert_expiry, dependency_down, network, node_failure
from activities.rules.resources import cpu_saturation, disk_full, memory_leak, oom, traffic_spike
from activities.rules.workload import bad_deploy, crashloop_config

RULES: tuple[Rule, ...] = (
    oom,
    memory_leak,
    crashloop_config,
    bad_deploy,
    cpu_saturation,
    traffic_spike,
    disk_full,
    dependency_down,
    network,
    cert_expiry,
    node_failure,
)

__all__ = ["RULES", "Context", "Rule", "Signal"]
