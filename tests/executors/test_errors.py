"""PermanentError and TemporaryError: the retry meaning comes from the class and matches the type's.

The classes are checked on the wire (Temporal's failure converter, both ways); every place in
activities/ that raises one is checked against `ErrorType.retry`, so a type documented as retried is
never raised non-retryable (or the other way round) without the README saying so.
"""

from __future__ import annotations

import ast
from datetime import timedelta

import pytest
from temporalio.api.failure.v1 import Failure
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError

from activities.config import REPO_ROOT
from activities.errors import PermanentError, TemporaryError
from activities.kubernetes.cluster import status_error
from workflows.error_types import ErrorType, Retry
from workflows.plans import ActionOutcome

CLASSES = {"PermanentError": {Retry.NO, Retry.DEPENDS}, "TemporaryError": {Retry.YES, Retry.DEPENDS}}


async def _over_the_wire(err: ApplicationError) -> tuple[Failure, BaseException]:
    failure = Failure()
    await pydantic_data_converter.encode_failure(err, failure)
    return failure, await pydantic_data_converter.decode_failure(failure)


async def test_a_permanent_error_is_a_non_retryable_application_error() -> None:
    details = ActionOutcome(ok=False, summary="refused")
    failure, back = await _over_the_wire(
        PermanentError("host x refused", details, type=ErrorType.UNSAFE_INPUT)
    )
    info = failure.application_failure_info
    assert (failure.message, info.type, info.non_retryable) == ("host x refused", "UnsafeInput", True)
    assert not info.HasField("next_retry_delay")
    assert isinstance(back, ApplicationError)
    assert (back.type, back.non_retryable, str(back)) == ("UnsafeInput", True, "UnsafeInput: host x refused")
    assert ActionOutcome.model_validate(back.details[0]) == details


@pytest.mark.parametrize("delay", [None, timedelta(seconds=7)])
async def test_a_temporary_error_is_retryable_after_its_delay(delay: timedelta | None) -> None:
    failure, back = await _over_the_wire(TemporaryError("429", type=ErrorType.LLM_RATE_LIMITED, delay=delay))
    info = failure.application_failure_info
    assert (info.type, info.non_retryable) == ("LLMRateLimited", False)
    assert isinstance(back, ApplicationError)
    assert (back.type, back.non_retryable, back.next_retry_delay) == ("LLMRateLimited", False, delay)


# --- every raise site -----------------------------------------------------------------------------


def _error_types(node: ast.AST) -> list[ErrorType]:
    return [
        ErrorType[n.attr]
        for n in ast.walk(node)
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "ErrorType"
    ]


def _sites() -> list[tuple[str, str, ast.expr, ast.Call, ast.FunctionDef | ast.AsyncFunctionDef | None]]:
    """(where, class name or "either", type expression, call, enclosing function) of each error made."""
    found = []
    for path in sorted((REPO_ROOT / "activities").rglob("*.py")):
        tree = ast.parse(path.read_text())
        functions = [f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)]
        for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
            func = call.func
            name = (
                func.id if isinstance(func, ast.Name) else ("either" if isinstance(func, ast.IfExp) else "")
            )
            if name not in (*CLASSES, "either", "ApplicationError"):
                continue
            kind = next((k.value for k in call.keywords if k.arg == "type"), ast.Constant(None))
            inside = [f for f in functions if f.lineno <= call.lineno <= (f.end_lineno or 0)]
            where = f"{path.relative_to(REPO_ROOT)}:{call.lineno}"
            found.append((where, name, kind, call, inside[-1] if inside else None))
    return found


def _named(kind: ast.expr, function: ast.AST | None) -> list[ErrorType]:
    """The types an expression can be: literal ones, or those assigned to the name in its function."""
    if not isinstance(kind, ast.Name) or function is None:
        return _error_types(kind)
    assigned = [
        a.value
        for a in ast.walk(function)
        if isinstance(a, ast.Assign)
        and any(kind.id in {n.id for n in ast.walk(t) if isinstance(n, ast.Name)} for t in a.targets)
    ]
    return [t for value in assigned for t in _error_types(value)]


def test_activities_make_errors_only_through_the_two_classes() -> None:
    plain = [where for where, name, *_ in _sites() if name == "ApplicationError"]
    assert plain == [], "raise PermanentError or TemporaryError, whose retry meaning is the type's"


def test_every_raise_site_agrees_with_its_types_retry_meaning() -> None:
    checked = 0
    for where, name, kind, _, function in _sites():
        if name == "ApplicationError":
            continue
        types = _named(kind, function)
        assert types, f"{where}: no ErrorType found for {ast.unparse(kind)}"
        if name == "either":
            if function is not None and function.name == "status_error":
                continue  # its kinds are one of each; test_kubernetes_answers_... checks them all
            wrong = [t for t in types if t.retry is not Retry.DEPENDS]
        else:
            wrong = [t for t in types if t.retry not in CLASSES[name]]
        assert wrong == [], f"{where}: {name} raises {[f'{t} (retried: {t.retry})' for t in wrong]}"
        checked += 1
    assert checked > 40  # the scan sees the raise sites, so the check above is not vacuous


@pytest.mark.parametrize(
    ("status", "reason", "message"),
    [
        (400, "BadRequest", ""),
        (401, "Unauthorized", ""),
        (403, "Forbidden", ""),
        (404, "NotFound", ""),
        (405, "MethodNotAllowed", ""),
        (409, "AlreadyExists", ""),
        (409, "Conflict", "Apply failed with 1 conflict"),
        (409, "Conflict", "the object has been modified"),
        (422, "Invalid", ""),
        (429, "TooManyRequests", ""),
        (500, "InternalError", ""),
        (503, "ServiceUnavailable", ""),
    ],
)
def test_kubernetes_answers_are_raised_as_their_type_says(status: int, reason: str, message: str) -> None:
    err = status_error("scale web", status, reason, message)
    kind = ErrorType(err.type)
    assert kind.retry is not Retry.DEPENDS
    assert err.non_retryable is (kind.retry is Retry.NO), f"HTTP {status} {reason}: {kind}"


def test_every_error_type_is_used() -> None:
    """A type nothing raises is a promise to playbook authors that never comes true."""
    used: set[ErrorType] = set()
    for root in ("activities", "workflows"):
        for path in (REPO_ROOT / root).rglob("*.py"):
            if path.name != "error_types.py":
                used.update(_error_types(ast.parse(path.read_text())))
    assert set(ErrorType) - used == set()
