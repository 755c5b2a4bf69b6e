"""How workflows call activities: the timeouts and retry policies, in one place.

A playbook step may set its own `timeout` and `retry` (workflows/playbook.py); `call_options` falls
back to these defaults for the step's kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy

from workflows.playbook import StepBase

T = TypeVar("T")

CHECK_TIMEOUT = timedelta(minutes=2)
ACTION_TIMEOUT = timedelta(minutes=30)
ACTION_HEARTBEAT = timedelta(seconds=30)
READ_RETRY = RetryPolicy(maximum_attempts=3, initial_interval=timedelta(seconds=1))
# An apply is retried by Temporal; the executor's idempotency key (incident/step) makes it safe.
APPLY_RETRY = RetryPolicy(maximum_attempts=3, initial_interval=timedelta(seconds=2))
NOTIFY_TIMEOUT = timedelta(seconds=30)
LIMITS_TIMEOUT = timedelta(seconds=30)
# The LLM investigation (workflows/investigation.py). Rate limits and 5xx are retried by Temporal (the
# activity raises them retryable, honouring Retry-After); a bounded number of attempts keeps a dead
# model from stalling the incident.
LLM_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    maximum_attempts=4,
)
TOOL_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=2)
TOOL_TIMEOUT = timedelta(minutes=2)
POLICY_TIMEOUT = timedelta(seconds=30)


@dataclass(frozen=True)
class CallOptions:
    """How to call the activity behind one step: its timeout and retry, as Temporal takes them."""

    start_to_close_timeout: timedelta
    retry_policy: RetryPolicy
    heartbeat_timeout: timedelta | None = None

    async def execute(self, activity: str, arg: Any, result_type: type[T], summary: str | None = None) -> T:
        """`summary`: one line the Temporal Web UI shows for this call (metadata, not a command)."""
        return await workflow.execute_activity(
            activity,
            arg,
            result_type=result_type,
            start_to_close_timeout=self.start_to_close_timeout,
            heartbeat_timeout=self.heartbeat_timeout,
            retry_policy=self.retry_policy,
            summary=summary,
        )


def call_options(
    step: StepBase, timeout: timedelta, retry: RetryPolicy, heartbeat: timedelta | None = None
) -> CallOptions:
    return CallOptions(
        start_to_close_timeout=step.timeout or timeout,
        retry_policy=step.retry.policy() if step.retry else retry,
        heartbeat_timeout=heartbeat,
    )
