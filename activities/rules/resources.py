"""Resource exhaustion: memory (kills and leaks), CPU, disk, and load that outgrows capacity."""

from __future__ import annotations

from collections.abc import Iterator

from activities.rules.base import Context, Signal
from activities.rules.series import fraction, is_complement, latest, trend
from workflows.evidence import PodStatus

LEAK_MIN_HOURS = 1.0
SHORT_LIFE_MINUTES = 15


def _lifetime_hours(pod: PodStatus) -> float | None:
    last = pod.last_state
    if last is None or last.started_at is None or last.finished_at is None:
        return None
    return (last.finished_at - last.started_at).total_seconds() / 3600


def _state_quote(pod: PodStatus) -> str:
    last = pod.last_state
    if last is None:
        return ""
    finished = f" finishedAt={last.finished_at:%Y-%m-%dT%H:%M:%SZ}" if last.finished_at else ""
    return f"reason={last.reason} exitCode={last.exit_code}{finished} restarts={pod.restarts}"


def oom(ctx: Context) -> Iterator[Signal]:
    liveness_kills = ctx.events("Unhealthy", "Killing", text="liveness")
    for pod in ctx.evidence.pods:
        last = pod.last_state
        if last is None:
            continue
        ref = f"pods[{pod.name}].lastState"
        if last.reason == "OOMKilled":
            yield Signal("oom", 0.9, "oomkilled", f"{pod.name} was OOMKilled", ref, _state_quote(pod))
            life = _lifetime_hours(pod)
            if life is not None and life * 60 < SHORT_LIFE_MINUTES:
                reason = f"{pod.name} was killed {life * 60:.0f} min after start: the limit is below its need"
                yield Signal("oom", 0.2, "short_life", reason, ref, _state_quote(pod))
        elif last.exit_code == 137 and not liveness_kills:
            # SIGKILL without the OOMKilled reason: the OOM killer is likely, not certain.
            reason = f"{pod.name} exited 137 (SIGKILL) and no liveness probe killed it"
            yield Signal("oom", 0.35, "sigkill", reason, ref, _state_quote(pod))
    for event in ctx.events("OOMKilling", "SystemOOM"):
        yield Signal(
            "oom",
            0.75,
            "oom_event",
            "the kernel OOM killer fired",
            ctx.event_ref(event),
            ctx.event_quote(event),
        )
    for event in ctx.events("Evicted", "EvictionThresholdMet", text="memory"):
        reason = "pods were evicted for memory pressure"
        yield Signal("oom", 0.5, "memory_eviction", reason, ctx.event_ref(event), ctx.event_quote(event))
    for sample in ctx.metrics("oom_kills"):
        if (value := latest(sample)) and value > 0:
            yield Signal(
                "oom", 0.75, "oom_metric", "OOM kills are counted", ctx.metric_ref(sample), f"{value:g}"
            )
    for hit in ctx.logs("oom")[:1]:
        yield Signal("oom", 0.5, "oom_log", "the process reports running out of memory", hit.ref, hit.quote)
    for sample in ctx.metrics("memory"):
        share = fraction(sample)
        if share is not None and share >= 0.9:
            weight = 0.35 if share >= 0.95 else 0.2
            reason = f"memory is at {share:.0%} of its limit"
            yield Signal("oom", weight, "memory_near_limit", reason, ctx.metric_ref(sample), f"{share:.2f}")


def memory_leak(ctx: Context) -> Iterator[Signal]:
    leak_seen = False
    for sample in ctx.metrics("memory"):
        shape = trend(sample)
        if shape is None:
            continue
        ref = ctx.metric_ref(sample)
        rise = f"{shape.start:.3g} -> {shape.end:.3g} over {shape.hours:.1f}h (fit r2={shape.r_squared:.2f})"
        if shape.steady_rise and shape.hours >= LEAK_MIN_HOURS:
            leak_seen = True
            weight = 0.65 if shape.hours >= 3 else 0.55
            yield Signal(
                "memory_leak", weight, "steady_rise", "memory rises steadily, not in a burst", ref, rise
            )
            share = fraction(sample)
            if share is not None and share >= 0.8:
                reason = f"and it is already at {share:.0%} of its limit"
                yield Signal("memory_leak", 0.15, "near_limit", reason, ref, f"{share:.2f}")
        elif shape.hours >= LEAK_MIN_HOURS and shape.growth < 1.1:
            yield Signal("memory_leak", -0.5, "flat", "memory is flat over the window", ref, rise)
    for pod in ctx.evidence.pods:
        life = _lifetime_hours(pod)
        if (
            pod.last_state
            and pod.last_state.reason == "OOMKilled"
            and life
            and life >= 2
            and pod.restarts >= 2
        ):
            leak_seen = True
            reason = (
                f"{pod.name} ran {life:.1f}h before each OOM kill ({pod.restarts} restarts): memory grows"
            )
            yield Signal(
                "memory_leak", 0.5, "late_oom", reason, f"pods[{pod.name}].lastState", _state_quote(pod)
            )
    for hit in ctx.logs("leak")[:1]:
        yield Signal(
            "memory_leak", 0.3, "leak_log", "the runtime reports memory it cannot reclaim", hit.ref, hit.quote
        )
    if leak_seen:
        # The kill is then the end of the growth, not a burst or a limit set too low.
        yield Signal("oom", -0.45, "leak_explains", "memory grew for hours before the kill", "metrics", "")


def _request_growth(ctx: Context) -> tuple[float, str, str] | None:
    """How much request rate grew over the window (or against an `offset` baseline), with a reference."""
    for sample in ctx.metrics("requests"):
        shape = trend(sample)
        if shape is not None:
            return shape.growth, ctx.metric_ref(sample), f"{shape.start:.3g} -> {shape.end:.3g} req/s"
        value = latest(sample)
        if value is not None and "offset" in sample.query and "/" in sample.query:
            return value, ctx.metric_ref(sample), f"{value:.2f}x the earlier rate"
    return None


def cpu_saturation(ctx: Context) -> Iterator[Signal]:
    busy = False
    for sample in ctx.metrics("cpu"):
        if 'mode="steal"' in sample.query:
            # Seconds stolen per second is already a share of one CPU: time the hypervisor withholds.
            stolen = latest(sample)
            if stolen is not None and stolen >= 0.1:
                busy = True
                reason = f"the hypervisor steals {stolen:.0%} of CPU time"
                yield Signal("cpu_saturation", 0.45, "steal", reason, ctx.metric_ref(sample), f"{stolen:.2f}")
            continue
        share = fraction(sample)
        if share is None:
            continue
        if "idle" in sample.query and not is_complement(sample.query):
            share = 1 - share
        if share >= 0.8:
            busy = True
            weight = 0.5 if share >= 0.9 else 0.3
            yield Signal(
                "cpu_saturation",
                weight,
                "cpu_busy",
                f"CPU is at {share:.0%}",
                ctx.metric_ref(sample),
                f"{share:.2f}",
            )
    for sample in ctx.metrics("throttle"):
        share = fraction(sample)
        if share is not None and share >= 0.25:
            busy = True
            weight = 0.45 if share >= 0.5 else 0.25
            reason = f"{share:.0%} of CFS periods are throttled"
            yield Signal(
                "cpu_saturation", weight, "throttled", reason, ctx.metric_ref(sample), f"{share:.2f}"
            )
    for event in ctx.events("FailedScheduling", text="Insufficient cpu"):
        reason = "no node has CPU left for new replicas"
        yield Signal("cpu_saturation", 0.2, "no_cpu", reason, ctx.event_ref(event), ctx.event_quote(event))
    if not busy:
        return
    for event in ctx.events("Unhealthy", text="deadline exceeded") + ctx.events("Unhealthy", text="timeout"):
        reason = "health probes time out while the CPU is busy"
        yield Signal(
            "cpu_saturation", 0.15, "probe_timeouts", reason, ctx.event_ref(event), ctx.event_quote(event)
        )
    growth = _request_growth(ctx)
    if growth is not None:
        ratio, ref, shown = growth
        if ratio >= 2:
            yield Signal("cpu_saturation", -0.45, "load_explains", f"requests grew {ratio:.1f}x", ref, shown)
        elif ratio < 1.3:
            reason = f"request rate is flat ({ratio:.1f}x): the load did not cause it"
            yield Signal("cpu_saturation", 0.15, "not_load", reason, ref, shown)


def traffic_spike(ctx: Context) -> Iterator[Signal]:
    growth = _request_growth(ctx)
    if growth is not None:
        ratio, ref, shown = growth
        if ratio >= 1.5:
            weight = 0.7 if ratio >= 3 else 0.55 if ratio >= 2 else 0.25
            yield Signal("traffic_spike", weight, "requests_grew", f"requests grew {ratio:.1f}x", ref, shown)
            cpu_hot = [s for s in ctx.metrics("cpu") + ctx.metrics("throttle") if (fraction(s) or 0) >= 0.8]
            if cpu_hot:
                reason = "and the CPU is saturated by it"
                yield Signal("traffic_spike", 0.15, "cpu_follows", reason, ctx.metric_ref(cpu_hot[0]), "")
            for sample in ctx.metrics("latency"):
                shape = trend(sample)
                if shape is not None and shape.growth >= 2:
                    reason = f"latency rose {shape.growth:.1f}x with it"
                    yield Signal("traffic_spike", 0.1, "latency_follows", reason, ctx.metric_ref(sample), "")
        elif ratio < 1.2:
            yield Signal("traffic_spike", -0.6, "flat", f"request rate is flat ({ratio:.1f}x)", ref, shown)
    for event in ctx.events("SuccessfulRescale", text="above target"):
        reason = "the autoscaler scaled out on load"
        yield Signal("traffic_spike", 0.2, "scaled_out", reason, ctx.event_ref(event), ctx.event_quote(event))
    for hit in ctx.logs("rate_limited")[:1]:
        yield Signal(
            "traffic_spike", 0.35, "rate_limited", "requests are being rate limited", hit.ref, hit.quote
        )


def disk_full(ctx: Context) -> Iterator[Signal]:
    for sample in ctx.metrics("disk"):
        value = latest(sample)
        ref = ctx.metric_ref(sample)
        if value is None:
            continue
        if "predict_linear" in sample.query:
            if value < 0:
                yield Signal(
                    "disk_full", 0.4, "filling", "the disk is predicted to fill up", ref, f"{value:g}"
                )
            continue
        share = fraction(sample)
        if share is None:
            continue
        free = "avail" in sample.query or "free" in sample.query
        used = 1 - share if free and not is_complement(sample.query) else share
        if used >= 0.85:
            weight = 0.75 if used >= 0.97 else 0.55 if used >= 0.9 else 0.25
            yield Signal(
                "disk_full", weight, "disk_used", f"the filesystem is {used:.0%} full", ref, f"{value:g}"
            )
    for hit in ctx.logs("disk")[:1]:
        yield Signal("disk_full", 0.8, "enospc", "writes fail for lack of space", hit.ref, hit.quote)
    for reason_name in ("Evicted", "EvictionThresholdMet", "FreeDiskSpaceFailed", "ImageGCFailed"):
        for event in ctx.events(reason_name):
            message = event.message.lower()
            if reason_name.endswith("Failed") or any(
                w in message for w in ("ephemeral-storage", "nodefs", "imagefs")
            ):
                yield Signal(
                    "disk_full",
                    0.6,
                    "disk_events",
                    "the kubelet reports disk pressure",
                    ctx.event_ref(event),
                    ctx.event_quote(event),
                )
    for node in ctx.evidence.nodes:
        if "DiskPressure" in node.conditions:
            reason = f"node {node.name} has DiskPressure"
            yield Signal(
                "disk_full", 0.55, "disk_pressure", reason, f"nodes[{node.name}].conditions", "DiskPressure"
            )
