"""What the workload itself does wrong: bad configuration and bad releases."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from activities.rules.base import Context, LogHit, Signal
from activities.rules.patterns import LOG_PATTERNS
from workflows.evidence import DeploymentRevision

_MISSING_REF = re.compile(r"(?:secret|configmap)s? \"[^\"]+\" not found|couldn't find key", re.IGNORECASE)
_IMAGE_REASONS = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")
APP_EXIT_CODES = (1, 2, 255)
_PROBE_MISS = re.compile(r"connection refused|statuscode: 404", re.IGNORECASE)
_PROBE_PORT = re.compile(r":(\d{2,5})/")
_LISTEN_PORT = re.compile(
    r"(?:listening|serving|started|bound)\b.{0,20}?:(\d{2,5})\b|\bport[ =:]+(\d{2,5})\b", re.I
)
# Errors that these other explanations account for; new errors outside them point at the release.
_EXPLAINED = ("config", "oom", "refused", "dns", "timeout", "disk", "cert_expired", "upstream")


def crashloop_config(ctx: Context) -> Iterator[Signal]:
    config_lines = ctx.logs("config")
    for weight, hit in zip((0.6, 0.2), config_lines, strict=False):
        yield Signal(
            "crashloop_config",
            weight,
            f"config_log_{hit.index}",
            "the process rejects its configuration",
            hit.ref,
            hit.quote,
        )
    for pod in ctx.evidence.pods:
        if pod.waiting_reason == "CreateContainerConfigError":
            reason = f"{pod.name} cannot start: a referenced Secret or ConfigMap is missing"
            yield Signal(
                "crashloop_config", 0.85, "config_ref", reason, f"pods[{pod.name}].state", pod.waiting_reason
            )
    for event in ctx.events("Failed", "CreateContainerConfigError", "FailedMount"):
        if _MISSING_REF.search(event.message):
            weight = 0.6 if event.reason == "FailedMount" else 0.85
            reason = "a Secret or ConfigMap the pod needs does not exist"
            yield Signal(
                "crashloop_config", weight, "config_ref", reason, ctx.event_ref(event), ctx.event_quote(event)
            )
    for pod in ctx.evidence.pods:
        if pod.last_state and pod.last_state.exit_code == 78:
            reason = f"{pod.name} exited 78 (EX_CONFIG)"
            yield Signal(
                "crashloop_config", 0.4, "ex_config", reason, f"pods[{pod.name}].lastState", "exitCode=78"
            )
    yield from _probe_mismatch(ctx)
    for pod in ctx.crash_looping():
        last = pod.last_state
        if last and last.exit_code in APP_EXIT_CODES:
            reason = f"{pod.name} crash-loops, exiting {last.exit_code} on its own (not killed)"
            quote = f"restarts={pod.restarts} exitCode={last.exit_code}"
            yield Signal("crashloop_config", 0.25, "app_exit", reason, f"pods[{pod.name}]", quote)


def _listening_ports(ctx: Context) -> set[str]:
    if ctx.evidence.logs is None:
        return set()
    found = (_LISTEN_PORT.search(e) for t in ctx.evidence.logs.templates for e in t.examples)
    return {m.group(1) or m.group(2) for m in found if m}


def _probe_mismatch(ctx: Context) -> Iterator[Signal]:
    """The kubelet kills a running app for failing liveness: the probe and the app disagree."""
    killed = [p for p in ctx.crash_looping() if p.last_state and p.last_state.exit_code in (137, 143)]
    failing = [
        e for e in ctx.events("Unhealthy", text="liveness probe failed") if _PROBE_MISS.search(e.message)
    ]
    if not killed or not failing:
        return
    event = failing[0]
    reason = f"{killed[0].name} is killed for failing a liveness probe that nothing answers"
    yield Signal("crashloop_config", 0.4, "probe_miss", reason, ctx.event_ref(event), ctx.event_quote(event))
    probed = _PROBE_PORT.search(event.message)
    listening = _listening_ports(ctx)
    if probed and listening and probed.group(1) not in listening:
        reason = f"the app listens on {', '.join(sorted(listening))}, the probe checks {probed.group(1)}"
        yield Signal(
            "crashloop_config", 0.35, "port_mismatch", reason, ctx.event_ref(event), event.message[:120]
        )


def _unexplained_new_errors(ctx: Context) -> list[LogHit]:
    if ctx.evidence.logs is None or not ctx.evidence.logs.baseline_lines:
        return []
    hits = [LogHit(i, t) for i, t in enumerate(ctx.evidence.logs.templates) if t.new and t.level == "error"]
    return [h for h in hits if not any(LOG_PATTERNS[p].search(h.text) for p in _EXPLAINED)]


def _error_step(ctx: Context, rollout: DeploymentRevision) -> Iterator[Signal]:
    """Error rate that was low before the rollout and several times higher after it."""
    if rollout.changed_at is None:
        return
    cut = rollout.changed_at.timestamp()
    for sample in ctx.metrics("errors"):
        before = [v for t, v in sample.points if t < cut]
        after = [v for t, v in sample.points if t >= cut]
        if len(before) < 2 or len(after) < 2:
            continue
        mean_before, mean_after = sum(before) / len(before), sum(after) / len(after)
        if mean_after > 0 and mean_after >= 3 * mean_before:
            shown = f"{mean_before:.3g} before, {mean_after:.3g} after revision {rollout.revision}"
            reason = "the error rate stepped up at the rollout"
            yield Signal("bad_deploy", 0.4, "error_step", reason, ctx.metric_ref(sample), shown)


def _rollout_timing(ctx: Context) -> Iterator[Signal]:
    rollouts = [d for d in ctx.evidence.deployments if d.changed_at]
    if not rollouts:
        return
    onset = ctx.onset
    if onset is None:
        latest_rollout = max(rollouts, key=lambda d: d.changed_at or datetime.min.replace(tzinfo=UTC))
        if (
            ctx.now
            and latest_rollout.changed_at
            and ctx.now - latest_rollout.changed_at <= timedelta(hours=1)
        ):
            reason = f"{latest_rollout.name} was rolled out within the last hour"
            yield Signal(
                "bad_deploy",
                0.3,
                "recent",
                reason,
                f"deployments[{latest_rollout.name}]",
                latest_rollout.image,
            )
        return
    # A rollout finishing a few minutes after the first error still counts: alerts have `for:` delays.
    before = [d for d in rollouts if d.changed_at and d.changed_at <= onset + timedelta(minutes=5)]
    if not before:
        reason = "every rollout came after the trouble began"
        yield Signal("bad_deploy", -0.3, "after", reason, "deployments", "")
        return
    rollout = max(before, key=lambda d: d.changed_at or onset)
    gap = onset - (rollout.changed_at or onset)
    ref, minutes = f"deployments[{rollout.name}].changedAt", gap.total_seconds() / 60
    shown = f"revision {rollout.revision} {rollout.image} at {rollout.changed_at:%H:%M}Z, trouble from {onset:%H:%M}Z"
    if gap <= timedelta(minutes=45):
        weight = 0.45 if gap <= timedelta(minutes=15) else 0.35
        yield Signal(
            "bad_deploy", weight, "timing", f"{rollout.name} rolled out {minutes:.0f} min before", ref, shown
        )
        yield from _error_step(ctx, rollout)
        if not ctx.logs("config"):
            for pod in ctx.crash_looping()[:1]:
                reason = f"{pod.name} of the new revision crash-loops"
                yield Signal(
                    "bad_deploy",
                    0.3,
                    "new_pods_crash",
                    reason,
                    f"pods[{pod.name}]",
                    f"restarts={pod.restarts}",
                )
        for hit in _unexplained_new_errors(ctx)[:1]:
            yield Signal(
                "bad_deploy",
                0.25,
                "new_errors",
                "errors appear that the healthy window lacked",
                hit.ref,
                hit.quote,
            )
    elif gap <= timedelta(hours=2):
        yield Signal(
            "bad_deploy", 0.15, "timing", f"{rollout.name} rolled out {minutes:.0f} min before", ref, shown
        )
    elif gap >= timedelta(hours=6):
        reason = f"the last rollout was {minutes / 60:.0f}h before the trouble"
        yield Signal("bad_deploy", -0.4, "old_rollout", reason, ref, shown)


def bad_deploy(ctx: Context) -> Iterator[Signal]:
    for pod in ctx.evidence.pods:
        if pod.waiting_reason in _IMAGE_REASONS:
            reason = f"{pod.name} cannot pull its image"
            yield Signal("bad_deploy", 0.85, "image", reason, f"pods[{pod.name}].state", pod.waiting_reason)
    for event in ctx.events(*_IMAGE_REASONS) + ctx.events("Failed", text="pull"):
        yield Signal(
            "bad_deploy",
            0.85,
            "image",
            "the image cannot be pulled",
            ctx.event_ref(event),
            ctx.event_quote(event),
        )
    for hit in ctx.logs("exec")[:1]:
        yield Signal("bad_deploy", 0.55, "broken_build", "the shipped artefact is broken", hit.ref, hit.quote)
    for pod in ctx.evidence.pods:
        if pod.last_state and pod.last_state.exit_code in (126, 127):
            reason = f"{pod.name} exited {pod.last_state.exit_code}: its command cannot be executed"
            quote = f"exitCode={pod.last_state.exit_code}"
            yield Signal("bad_deploy", 0.55, "broken_build", reason, f"pods[{pod.name}].lastState", quote)
    for event in ctx.events("ProgressDeadlineExceeded"):
        reason = "the rollout stopped making progress"
        yield Signal("bad_deploy", 0.45, "stuck", reason, ctx.event_ref(event), ctx.event_quote(event))
    yield from _rollout_timing(ctx)
