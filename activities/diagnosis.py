"""The heuristic diagnoser: rules over gathered evidence, the default when no LLM is configured.

Calibration. Each rule (activities/rules/) emits signals whose weight is roughly the chance that
the category is right if that signal were all we knew:

- 0.75-0.9 decisive: the system states the cause (lastState OOMKilled, ErrImagePull,
  CreateContainerConfigError, "No space left on device", an expired certificate).
- 0.45-0.7 strong: a measurement or a line naming the cause (disk 97% full, connection refused
  by postgres, NodeNotReady, requests tripled).
- 0.2-0.4 weak: consistent with the cause but with other explanations too (exit 137 without a
  reason, a rollout 30 minutes before, timeouts to one host, a refused health probe).
- 0.1-0.15 support: only strengthens a category that has evidence already (the alert name).

Signals of one kind count once, at their strongest. Different kinds combine by noisy-OR,
1 - prod(1 - w): three weak 0.3 signals give 0.66 and never reach one decisive 0.9.
Counter-evidence of weight -n multiplies the result by (1 - n). The result is capped at 0.95
(rules are never certain); a runner-up within 0.1 multiplies it by 0.85 (a near tie is
uncertain); below 0.2 the answer is `unknown`.

A refused connection with nothing else is `dependency_down` at 0.45: the probed endpoint is
something callers depend on and it is down, but nothing says why, hence the low confidence.

Memory of past incidents (activities/memory/store.py) is a prior too: a category's share among similar
closed incidents adds at most MEMORY_WEIGHT, and only to a category whose own evidence already
clears MIN_CONFIDENCE. It can break a near tie; it cannot create a diagnosis. When it changed the
answer, the explanation says so.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from temporalio import activity

from activities.memory.documents import MemoryUnavailable
from activities.rules import RULES, Context, Signal
from workflows.activity_names import DIAGNOSE
from workflows.alerts import Alert
from workflows.diagnosis import DiagnoseRequest, Diagnosis, DiagnosisCategory, EvidenceRef

Diagnoser = Callable[[DiagnoseRequest], Diagnosis]

CAP = 0.95
TIE_MARGIN = 0.1
TIE_FACTOR = 0.85
MIN_CONFIDENCE = 0.2
PRIOR_WEIGHT = 0.1
MEMORY_WEIGHT = 0.1

# The alert name is a prior: it adds a little to a category that the evidence already supports,
# and never creates one (alerts are named for symptoms, and often for the wrong ones).
_PRIOR_TABLE: tuple[tuple[str, tuple[DiagnosisCategory, ...]], ...] = (
    (r"oom", ("oom",)),
    (r"memory", ("oom", "memory_leak")),
    (r"cpu|throttl", ("cpu_saturation",)),
    (r"disk|filesystem|volume|space|inode", ("disk_full",)),
    (r"node.*(?:notready|unreachable|down)", ("node_failure",)),
    (r"cert|ssl|tls", ("cert_expiry",)),
    (r"dns|network|packet", ("network",)),
    (r"rollout|deployment|replicasmismatch|generation", ("bad_deploy",)),
    (r"crashloop", ("crashloop_config", "bad_deploy")),
    (r"request|traffic|load|ratelimit", ("traffic_spike",)),
    (r"targetdown|instancedown|servicedown|endpointdown|upstream|dependency", ("dependency_down",)),
)
_PRIORS = tuple((re.compile(pattern, re.IGNORECASE), categories) for pattern, categories in _PRIOR_TABLE)

NEXT_CHECKS: dict[str, str] = {
    "oom": "compare the memory limit with the peak working set over a day (container_memory_working_set_bytes)",
    "memory_leak": "graph memory since the last restart and take a heap profile before the next kill",
    "crashloop_config": "read `kubectl logs --previous` and diff ConfigMaps, Secrets and env with the last good revision",
    "bad_deploy": "compare errors before and after the rollout (`kubectl rollout history`); consider `rollout undo`",
    "cpu_saturation": "profile the hot path and check CPU limits and throttling per container",
    "disk_full": "find what fills the volume (`du -x`, log rotation, retention) and how fast it grows",
    "dependency_down": "check the named dependency's own health, endpoints and recent changes",
    "traffic_spike": "find the traffic source (top clients and paths); check autoscaler maximums and rate limits",
    "node_failure": "`kubectl describe node`; check the kubelet and container runtime; cordon a flapping node",
    "cert_expiry": "`openssl s_client -connect HOST:443 | openssl x509 -noout -dates`; check cert-manager Certificates",
    "network": "test DNS and connectivity from the pod (nslookup, curl -v); check CoreDNS and NetworkPolicies",
    "unknown": "collect pod status, recent events, current and previous logs, and rollout history of the service",
}


@dataclass
class Candidate:
    category: DiagnosisCategory
    confidence: float = 0.0
    support: list[Signal] = field(default_factory=list)
    against: list[Signal] = field(default_factory=list)


def _strongest_per_kind(signals: list[Signal]) -> list[Signal]:
    best: dict[str, Signal] = {}
    for s in signals:
        if s.kind not in best or abs(s.weight) > abs(best[s.kind].weight):
            best[s.kind] = s
    return sorted(best.values(), key=lambda s: -abs(s.weight))


def _prior(alert: Alert, category: DiagnosisCategory) -> Signal | None:
    for pattern, categories in _PRIORS:
        if category in categories and pattern.search(alert.name):
            return Signal(
                category,
                PRIOR_WEIGHT,
                "alert_prior",
                f"the alert {alert.name} suggests it",
                "alert.name",
                alert.name,
            )
    return None


def _combine(support: list[Signal], against: list[Signal]) -> float:
    disbelief = 1.0
    for s in support:
        disbelief *= 1 - s.weight
    confidence = 1 - disbelief
    for s in against:
        confidence *= 1 + s.weight
    return confidence


def _memory(category: DiagnosisCategory, share: float) -> Signal:
    reason = f"{share:.0%} of similar past incidents were {category}"
    return Signal(category, round(MEMORY_WEIGHT * share, 3), "memory_prior", reason, "memory", f"{share:.2f}")


def rank(request: DiagnoseRequest, priors: Mapping[str, float] | None = None) -> list[Candidate]:
    """Every category with evidence for it, most likely first; `priors` are memory's category shares."""
    ctx = Context(request.alert, request.evidence)
    by_category: dict[DiagnosisCategory, list[Signal]] = {}
    for rule in RULES:
        for signal in rule(ctx):
            by_category.setdefault(signal.category, []).append(signal)
    candidates: list[Candidate] = []
    for category, signals in by_category.items():
        chosen = _strongest_per_kind(signals)
        support = [s for s in chosen if s.weight > 0]
        if not support:
            continue
        if prior := _prior(request.alert, category):
            support.append(prior)
        against = [s for s in chosen if s.weight < 0]
        confidence = _combine(support, against)
        share = (priors or {}).get(category, 0.0)
        if share > 0 and confidence >= MIN_CONFIDENCE:
            support.append(_memory(category, share))
            confidence = _combine(support, against)
        candidates.append(Candidate(category, min(confidence, CAP), support, against))
    return sorted(candidates, key=lambda c: (-c.confidence, -max(s.weight for s in c.support)))


def _cite(signal: Signal) -> str:
    return f"{signal.reason} [{signal.ref}: {signal.quote}]" if signal.quote else signal.reason


def _references(signals: list[Signal]) -> list[EvidenceRef]:
    unique = dict.fromkeys((s.ref, s.quote) for s in signals if s.kind not in ("alert_prior", "memory_prior"))
    return [EvidenceRef(ref=ref, quote=quote) for ref, quote in list(unique)[:8]]


def _unknown(request: DiagnoseRequest, weak: list[Candidate]) -> Diagnosis:
    looked = request.evidence.summary()
    risks = [f"weak hint: {c.category} ({c.confidence:.2f}): {_cite(c.support[0])}" for c in weak[:2]]
    return Diagnosis(
        category="unknown",
        confidence=MIN_CONFIDENCE,
        explanation=f"no rule found enough evidence for {request.alert.name}; looked at: {looked}",
        summary=f"{request.alert.service or request.alert.name}: cause unknown",
        risks=risks,
        next_checks=[NEXT_CHECKS["unknown"]],
    )


def _memory_note(request: DiagnoseRequest, top: Candidate) -> str:
    """What memory changed, when it changed the answer; else nothing."""
    memory = next((s for s in top.support if s.kind == "memory_prior"), None)
    if memory is None:
        return ""
    without = rank(request)
    if not without or without[0].category == top.category:
        return ""
    return (
        f"; similar past incidents tipped it: {_cite(memory)}"
        f" (on evidence alone {without[0].category} led at {without[0].confidence:.2f})"
    )


def heuristic_diagnosis(request: DiagnoseRequest, priors: Mapping[str, float] | None = None) -> Diagnosis:
    ranked = rank(request, priors)
    if not ranked or ranked[0].confidence < MIN_CONFIDENCE:
        return _unknown(request, ranked)
    top, runner_up = ranked[0], (ranked[1] if len(ranked) > 1 else None)
    confidence = top.confidence
    risks = [f"evidence against {top.category}: {_cite(s)}" for s in top.against]
    next_checks = [NEXT_CHECKS[top.category]]
    if runner_up is not None:
        if top.confidence - runner_up.confidence < TIE_MARGIN:
            confidence *= TIE_FACTOR
        risks.append(
            f"runner-up {runner_up.category} ({runner_up.confidence:.2f}): {_cite(runner_up.support[0])}"
        )
        next_checks.append(f"to rule out {runner_up.category}: {NEXT_CHECKS[runner_up.category]}")
    if confidence < 0.5:
        risks.append("low confidence: confirm the cause before any change")
    subject = request.alert.service or request.alert.name
    return Diagnosis(
        category=top.category,
        confidence=round(confidence, 3),
        explanation=f"{top.category}: "
        + "; ".join(_cite(s) for s in top.support[:4] if s.kind != "memory_prior")
        + _memory_note(request, top),
        summary=f"{subject}: {top.category} ({confidence:.2f}), {top.support[0].reason}",
        evidence=_references(top.support),
        risks=risks,
        next_checks=next_checks,
    )


class Priors(Protocol):
    """Where priors come from: activities.memory.store.MemoryStore, the incidents it remembers."""

    async def priors_for(self, alert: Alert) -> dict[str, float]: ...


class DiagnosisActivities:
    def __init__(self, memory: Priors | None = None) -> None:
        self._memory = memory

    async def _priors(self, alert: Alert) -> dict[str, float]:
        if self._memory is None:
            return {}
        try:
            return await self._memory.priors_for(alert)
        except MemoryUnavailable as err:
            # Memory only nudges the ranking; without it the evidence still decides.
            activity.logger.warning("no priors from incident memory: %s", err)
            return {}

    @activity.defn(name=DIAGNOSE)
    async def diagnose(self, request: DiagnoseRequest) -> Diagnosis:
        return heuristic_diagnosis(request, await self._priors(request.alert))
