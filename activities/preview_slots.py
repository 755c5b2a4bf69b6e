"""How many check-mode runs (Ansible `--check`, Terraform plan) one worker runs at once.

Previews come in bursts: every incident of an alert storm previews its fix. Each is a process tree
of 1-2 CPU-seconds and about 60 MB, so on 2 cores more than a few at once add only memory and
switching. They queue here (REMEDIATOR_WORKER_PREVIEW_RUNS) rather than in the worker's activity
slots, which are many so that a preview waiting its turn never keeps a probe or a diagnosis (async,
nearly free) from starting. Applies and rollbacks never wait here: an approved fix is not queued
behind a storm's previews.

The waits are in activity threads (synchronous activities), hence `threading`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from temporalio import activity
from temporalio.exceptions import CancelledError

from activities.errors import TemporaryError
from workflows.error_types import ErrorType

POLL_SECONDS = 1.0  # how often a wait looks whether it is over, cancelled or out of time
# How often it heartbeats: a fifth of the heartbeat timeout (30 s for previews), at most every 5 s.
# The SDK sends at most one heartbeat per 80% of that timeout anyway, so more only cost the worker:
# a hundred previews waiting for one shared run, each heartbeating every second, were 5% of a
# storm's worker time (issue 12). A cancellation arrives with the answer to a heartbeat sent.
HEARTBEAT_SECONDS = 5.0
GRACE_SECONDS = 10.0  # a wait gives up this long before the activity's timeout


def wait_in_activity(ready: Callable[[float], bool], waiting: str, cancelled: str) -> bool:
    """Call `ready(POLL_SECONDS)` (an Event's `wait`, a timed semaphore `acquire`) until it is true,
    heartbeating `waiting` every `heartbeat_every()`. CancelledError(`cancelled`) once the activity
    is cancelled; False once the activity's timeout is less than GRACE_SECONDS away."""
    deadline = activity_deadline(GRACE_SECONDS)
    every, beat = heartbeat_every(), time.monotonic()
    while not ready(POLL_SECONDS):
        if time.monotonic() - beat >= every:
            activity.heartbeat(waiting)
            beat = time.monotonic()
        if activity.is_cancelled():
            raise CancelledError(cancelled)
        if deadline is not None and time.monotonic() > deadline:
            return False
    return True


def heartbeat_every() -> float:
    timeout = activity.info().heartbeat_timeout
    return min(HEARTBEAT_SECONDS, timeout.total_seconds() / 5) if timeout else HEARTBEAT_SECONDS


def activity_deadline(grace: float) -> float | None:
    """When to give up (time.monotonic): `grace` (at most a tenth of the budget) before the activity's
    start_to_close, so that the workflow gets our message saying what hung instead of a bare timeout."""
    info = activity.info()
    if not info.start_to_close_timeout:
        return None
    budget = info.start_to_close_timeout.total_seconds()
    elapsed = (datetime.now(UTC) - info.started_time).total_seconds()
    return time.monotonic() + budget - elapsed - min(grace, budget / 10)


class PreviewSlots:
    def __init__(self, size: int) -> None:
        self.size = size
        self._free = threading.BoundedSemaphore(size)

    @contextmanager
    def held(self, what: str) -> Iterator[None]:
        """Run `what` (an activity's check-mode run) in a slot; heartbeat while waiting for one."""
        if not wait_in_activity(
            lambda poll: self._free.acquire(timeout=poll),
            f"{what}: waiting for a free preview slot (REMEDIATOR_WORKER_PREVIEW_RUNS={self.size})",
            f"{what} cancelled while waiting for a preview slot",
        ):
            raise TemporaryError(
                f"{what}: no preview slot came free before the activity's timeout "
                f"(REMEDIATOR_WORKER_PREVIEW_RUNS={self.size})",
                type=ErrorType.PREVIEW_BUSY,
            )
        try:
            yield
        finally:
            self._free.release()
