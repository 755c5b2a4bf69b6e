"""What every rule works with: the evidence, read once, and the signals rules emit."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property

from activities.rules.patterns import LOG_PATTERNS, LOOPBACK, metric_family, target_of
from activities.rules.series import crossing
from workflows.alerts import Alert
from workflows.diagnosis import DiagnosisCategory
from workflows.evidence import Evidence, KubeEvent, LogTemplate, MetricSample, PodStatus


@dataclass(frozen=True)
class Signal:
    """One observation that speaks for (weight > 0) or against (weight < 0) a category.

    `kind` names the observation: several signals of one kind (three pods all OOMKilled) count
    once, at their strongest, so repetition of one fact does not read as independent evidence.
    """

    category: DiagnosisCategory
    weight: float
    kind: str
    reason: str
    ref: str
    quote: str = ""


Rule = Callable[["Context"], Iterable[Signal]]


def quote(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class LogHit:
    index: int
    template: LogTemplate

    @property
    def ref(self) -> str:
        return f"logs.templates[{self.index}]"

    @property
    def text(self) -> str:
        return self.template.examples[0] if self.template.examples else self.template.template

    @property
    def quote(self) -> str:
        return f"{self.template.count}x {quote(self.text)}"


class Context:
    def __init__(self, alert: Alert, evidence: Evidence) -> None:
        self.alert = alert
        self.evidence = evidence

    # --- logs ------------------------------------------------------------------------------------

    def logs(self, pattern: str) -> list[LogHit]:
        if self.evidence.logs is None:
            return []
        regex = LOG_PATTERNS[pattern]
        return [
            LogHit(i, t)
            for i, t in enumerate(self.evidence.logs.templates)
            if regex.search(t.template) or any(regex.search(e) for e in t.examples)
        ]

    def is_self(self, host: str) -> bool:
        """Whether a host is the alerting service itself (by name, or loopback), not something it calls."""
        service = self.alert.service.lower()
        first_label = host.split(".")[0]
        return host in LOOPBACK or (bool(service) and first_label == service)

    def targets(self, hits: Iterable[LogHit]) -> dict[str, LogHit]:
        """Distinct hosts named by the lines, each with the first line naming it."""
        found: dict[str, LogHit] = {}
        for hit in hits:
            for example in hit.template.examples:
                if host := target_of(example):
                    found.setdefault(host, hit)
        return found

    # --- kubernetes ------------------------------------------------------------------------------

    def events(self, *reasons: str, text: str = "") -> list[KubeEvent]:
        """Events with one of the reasons (any if none given) whose message contains `text`."""
        lowered = text.lower()
        return [
            e
            for e in self.evidence.events
            if (not reasons or e.reason in reasons) and (not text or lowered in e.message.lower())
        ]

    @staticmethod
    def event_ref(event: KubeEvent) -> str:
        return f"events[{event.reason} {event.object}]".replace(" ]", "]")

    @staticmethod
    def event_quote(event: KubeEvent) -> str:
        times = f" (x{event.count})" if event.count > 1 else ""
        return quote(f"{event.type} {event.reason}: {event.message}{times}")

    def crash_looping(self) -> list[PodStatus]:
        backoff = {e.object.split("/")[-1] for e in self.events("BackOff", "CrashLoopBackOff")}
        return [
            p
            for p in self.evidence.pods
            if p.waiting_reason == "CrashLoopBackOff" or p.restarts >= 3 or p.name in backoff
        ]

    # --- metrics ---------------------------------------------------------------------------------

    def metrics(self, family: str) -> list[MetricSample]:
        return [m for m in self.evidence.metrics if not m.error and metric_family(m.query) == family]

    @staticmethod
    def metric_ref(sample: MetricSample) -> str:
        return f'metrics["{sample.query}"]'

    # --- time ------------------------------------------------------------------------------------

    @cached_property
    def now(self) -> datetime | None:
        """When the evidence was read; else the latest time anything in it carries."""
        if self.evidence.collected_at:
            return self.evidence.collected_at
        return max(self._times(), default=None)

    def _times(self) -> list[datetime]:
        ev = self.evidence
        times = [t for e in ev.events for t in (e.first_timestamp, e.last_timestamp) if t]
        times += [p.last_state.finished_at for p in ev.pods if p.last_state and p.last_state.finished_at]
        times += [d.changed_at for d in ev.deployments if d.changed_at]
        if ev.logs:
            times += [t.last_seen for t in ev.logs.templates if t.last_seen]
        times += [datetime.fromtimestamp(m.points[-1][0], UTC) for m in ev.metrics if m.points]
        if self.alert.starts_at:
            times.append(self.alert.starts_at)
        return times

    @cached_property
    def onset(self) -> datetime | None:
        """When the trouble began: the alert's startsAt, else the earliest sign of failure we hold."""
        if self.alert.starts_at:
            return self.alert.starts_at
        ev = self.evidence
        times = [e.first_timestamp or e.last_timestamp for e in ev.events if e.type == "Warning"]
        times += [p.last_state.finished_at for p in ev.pods if p.last_state]
        if ev.logs:
            times += [
                t.first_seen
                for t in ev.logs.templates
                if t.level == "error" and (t.new or not ev.logs.baseline_lines)
            ]
        for sample in self.metrics("errors"):
            if (at := crossing(sample, 3.0)) is not None:
                times.append(datetime.fromtimestamp(at, UTC))
        return min((t for t in times if t), default=None)
