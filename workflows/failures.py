"""Turning Temporal failures into the one sentence a person needs."""

from __future__ import annotations

from temporalio.exceptions import ActivityError, ApplicationError

from workflows.error_types import ErrorType

# What executors raise when the target itself is refused (a host outside the inventory, no inventory,
# a namespace or node outside the allow-list, alert text unsafe to pass on): no retry and no approval
# can make it safe, so the incident goes to a human with the reason.
TARGET_REFUSALS = frozenset(
    {
        ErrorType.UNSAFE_INPUT,
        ErrorType.NO_INVENTORY,
        ErrorType.NAMESPACE_NOT_ALLOWED,
        ErrorType.CLUSTER_SCOPED,
    }
)
# Refused targets escalate (the incident ends Escalated with the executor's reason) instead of
# asking approval for a preview that failed; incidents started before replay as they ran.
REFUSED_TARGETS_PATCH = "refused-targets-escalate"


def error_text(err: BaseException) -> str:
    """The innermost message of an activity failure, which is the one that says what went wrong."""
    while isinstance(err, ActivityError) and err.cause is not None:
        err = err.cause
    return str(err)


def refused_target(err: ActivityError) -> str:
    """The executor's reason when it refused the action's target; empty for any other failure."""
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.type in TARGET_REFUSALS and cause.non_retryable:
        return str(cause)
    return ""
