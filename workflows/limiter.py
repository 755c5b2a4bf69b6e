"""RemediationLimiter: the durable blast-radius counter, one workflow (`remediator-limiter`) per namespace.

The policy's limits (at most N actions per service per hour, at most M concurrent remediations) must
hold across incidents, workers and restarts, so they are counted here, in Temporal, not in a
process's memory. Incidents reach it through the `limits.*` activities (activities/limits.py), as
workflows cannot call updates on other workflows:

- `acquire` (update, started with update-with-start): checks and counts in one handler, so two
  incidents racing for the last slot cannot both get it. Idempotent per incident and step, so a
  retried activity is not counted twice. The incident's lease (one per incident) is what counts
  towards the concurrency limit; every granted action counts towards its service's hourly limit.
- `release` (signal): the incident ended; its lease is freed. Sent from the incident's `finally`.
- `usage` (query): the counts the policy is evaluated with.

A lease expires the policy's `limits.lease_ttl` after its last acquire, so a terminated incident (whose `finally` never
ran) cannot hold a slot forever. The workflow continues as new before its history grows large.
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

from workflows.limiter_models import (
    AcquireRequest,
    AcquireResult,
    Lease,
    LimiterState,
    ReleaseRequest,
    Stamp,
    UsageRequest,
)
from workflows.policy import HOUR, ActionContext, Policy, Usage, blast_radius_wait


@workflow.defn(name="RemediationLimiter")
class RemediationLimiter:
    @workflow.init
    def __init__(self, state: LimiterState) -> None:
        self._leases = {lease.incident_id: lease for lease in state.leases}
        self._stamps = list(state.stamps)
        self._continue_after = state.continue_after
        self._handled = 0

    @workflow.run
    async def run(self, state: LimiterState) -> None:
        await workflow.wait_condition(
            lambda: self._handled >= self._continue_after or workflow.info().is_continue_as_new_suggested()
        )
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(self._current(workflow.now()))

    @workflow.update
    def acquire(self, request: AcquireRequest) -> AcquireResult:
        self._handled += 1
        now = workflow.now()
        self._prune(now)
        usage = self._usage(request.service, request.incident_id, now)
        if any(stamp.key == request.key for stamp in self._stamps):
            return AcquireResult(granted=True, usage=usage, reason="already granted")
        reasons: list[str] = []
        ctx = ActionContext(
            action=request.step,
            risk=request.risk,
            service=request.service,
            environment="",
            now=now,
            usage=usage,
        )
        wait = blast_radius_wait(Policy(limits=request.limits), ctx, reasons)
        if reasons and not request.compensation:
            # `on_exceed: deny` gives no time to retry at: the caller gives up at once.
            retry_at = wait if isinstance(wait, datetime) else None
            return AcquireResult(granted=False, usage=usage, reason="; ".join(reasons), retry_at=retry_at)
        held = self._leases.get(request.incident_id)
        self._leases[request.incident_id] = Lease(
            incident_id=request.incident_id,
            service=request.service,
            acquired_at=held.acquired_at if held else now,
            expires_at=now + request.limits.lease_ttl,  # each action renews it
        )
        self._stamps.append(Stamp(key=request.key, service=request.service, at=now))
        return AcquireResult(granted=True, usage=usage)

    @acquire.validator
    def _validate_acquire(self, request: AcquireRequest) -> None:
        # A rejected update never reaches history, so a misuse costs the limiter nothing.
        if request.risk == "read":
            raise ValueError(f"{request.key}: read actions take no blast-radius slot")

    @workflow.signal
    def release(self, request: ReleaseRequest) -> None:
        self._handled += 1
        self._leases.pop(request.incident_id, None)

    @workflow.query
    def usage(self, request: UsageRequest) -> Usage:
        return self._usage(request.service, request.incident_id, request.at or workflow.now())

    @workflow.query
    def leases(self) -> LimiterState:
        # As of the limiter's last change; each lease says when it expires.
        return self._current(workflow.now())

    # --- counting ---------------------------------------------------------------------------------

    def _usage(self, service: str, incident_id: str, now: datetime) -> Usage:
        recent = [s.at for s in self._stamps if s.service == service and s.at > now - HOUR]
        running = [lease for lease in self._leases.values() if lease.expires_at > now]
        return Usage(
            service_actions_last_hour=len(recent),
            oldest_service_action_at=min(recent) if recent else None,
            concurrent_remediations=sum(1 for lease in running if lease.incident_id != incident_id),
        )

    def _prune(self, now: datetime) -> None:
        self._stamps = [s for s in self._stamps if s.at > now - HOUR]
        self._leases = {k: lease for k, lease in self._leases.items() if lease.expires_at > now}

    def _current(self, now: datetime) -> LimiterState:
        return LimiterState(
            leases=[lease for lease in self._leases.values() if lease.expires_at > now],
            stamps=[s for s in self._stamps if s.at > now - HOUR],
            continue_after=self._continue_after,
        )
