"""The blast-radius limiter, reached from incidents: workflows cannot call another workflow's update.

Each activity uses the worker's own Temporal client (`activity.client()`). `acquire` is an
update-with-start, so the first incident that needs a slot starts the limiter (workflows/limiter.py)
on its own task queue; later ones (and racing ones) attach to the running one. A retried `acquire` is
harmless: the limiter counts each incident/step once.
"""

from __future__ import annotations

from temporalio import activity
from temporalio.client import WithStartWorkflowOperation, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from activities.errors import PermanentError
from workflows.activity_names import LIMITS_ACQUIRE, LIMITS_RELEASE, LIMITS_USAGE
from workflows.error_types import ErrorType
from workflows.limiter import RemediationLimiter
from workflows.limiter_models import (
    LIMITER_ID,
    AcquireRequest,
    AcquireResult,
    LimiterState,
    ReleaseRequest,
    UsageRequest,
)
from workflows.policy import Usage


class LimitsActivities:
    def __init__(self, limiter_id: str = LIMITER_ID) -> None:
        # One limiter per namespace in production; tests give each environment its own.
        self._id = limiter_id

    @activity.defn(name=LIMITS_ACQUIRE)
    async def acquire(self, request: AcquireRequest) -> AcquireResult:
        start = WithStartWorkflowOperation(
            RemediationLimiter.run,
            LimiterState(),
            id=self._id,
            task_queue=activity.info().task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        try:
            return await activity.client().execute_update_with_start_workflow(
                RemediationLimiter.acquire, request, start_workflow_operation=start
            )
        except WorkflowUpdateFailedError as err:
            # The limiter's validator refused the request: asking again will not change its mind.
            raise PermanentError(
                f"limiter refused {request.key}: {err.cause}", type=ErrorType.LIMITER_REFUSED
            ) from err

    @activity.defn(name=LIMITS_RELEASE)
    async def release(self, request: ReleaseRequest) -> str:
        handle = activity.client().get_workflow_handle(self._id)
        try:
            await handle.signal(RemediationLimiter.release, request)
        except RPCError as err:
            # No limiter running: it holds no lease, so there is nothing to release.
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            return "no limiter running"
        return f"released the lease of {request.incident_id}"

    @activity.defn(name=LIMITS_USAGE)
    async def usage(self, request: UsageRequest) -> Usage:
        handle = activity.client().get_workflow_handle(self._id)
        try:
            return await handle.query(RemediationLimiter.usage, request)
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            return Usage()  # nobody has acted yet
