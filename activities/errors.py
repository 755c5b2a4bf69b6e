"""Errors that carry their retry meaning, as kopf's PermanentError and TemporaryError do.

An activity raises `PermanentError` for a failure no retry can mend (Temporal fails the call at once)
and `TemporaryError` for one a retry may mend (Temporal retries it under the step's retry policy, after
`delay` when the other side said how long to wait). Both are the ApplicationError Temporal knows, with
the same arguments, so nothing changes on the wire; `type` must be one of workflows/error_types.py.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.exceptions import ApplicationError

from workflows.error_types import ErrorType


class PermanentError(ApplicationError):
    def __init__(self, message: str, *details: Any, type: ErrorType) -> None:
        super().__init__(message, *details, type=type.value, non_retryable=True)


class TemporaryError(ApplicationError):
    def __init__(self, message: str, *details: Any, type: ErrorType, delay: timedelta | None = None) -> None:
        super().__init__(message, *details, type=type.value, next_retry_delay=delay)
