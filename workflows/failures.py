"""Turning Temporal failures into the one sentence a person needs."""

from __future__ import annotations

from temporalio.exceptions import ActivityError


def error_text(err: BaseException) -> str:
    """The innermost message of an activity failure, which is the one that says what went wrong."""
    while isinstance(err, ActivityError) and err.cause is not None:
        err = err.cause
    return str(err)
