"""Error answers: every one is JSON with a `message` a person can act on.

Bad input is a 4xx naming the field; a missing or bad credential a 401, a missing permission a 403
naming it; a JSON route given another content type a 415; Temporal trouble is a 503 with Retry-After, so Alertmanager and
Grafana retry instead of dropping the alert.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from temporalio.client import RPCTimeoutOrCancelledError, WorkflowQueryFailedError
from temporalio.service import RPCError, RPCStatusCode

from api.auth.credentials import CHALLENGE, Forbidden, NoRole, Unauthenticated
from api.auth.keys import KeyStoreError
from api.auth.oidc import IssuerUnavailable

RETRY_AFTER_SECONDS = 5
MAX_LISTED_ERRORS = 5
# What the SDK raises (as a bare RuntimeError) when a lazy client's first connection fails.
FAILED_CONNECT = "Failed client connect"


def field_path(loc: Sequence[str | int]) -> str:
    """('body', 'alerts', 0, 'labels') -> 'alerts[0].labels'; ('query', 'phase') -> 'query parameter phase'."""
    where, *rest = loc or ("body",)
    if where != "body":
        return f"{where} parameter {'.'.join(str(p) for p in rest)}"
    path = ""
    for part in rest:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    return path or "body"


def _path(error: dict[str, Any]) -> str:
    # A JSON syntax error's loc holds the character offset, not a field.
    return "body" if error.get("type") == "json_invalid" else field_path(tuple(error.get("loc", ())))


def _describe(error: dict[str, Any], body: Any) -> str:
    loc = tuple(error.get("loc", ()))
    if error.get("type") == "json_invalid":
        offset = loc[-1] if loc and isinstance(loc[-1], int) else 0
        text = body if isinstance(body, str) else ""
        line = text.count("\n", 0, offset) + 1
        column = offset - text.rfind("\n", 0, offset)
        reason = error.get("ctx", {}).get("error", "invalid JSON")
        return f"malformed JSON at line {line} column {column}: {reason}"
    if loc == ("body",) and error.get("type") == "missing":
        return "body: a JSON request body is required"
    return f"{_path(error)}: {error.get('msg', 'invalid')}"


def validation_answer(errors: Sequence[dict[str, Any]], body: Any = None) -> JSONResponse:
    messages = list(dict.fromkeys(_describe(e, body) for e in errors))
    shown = "; ".join(messages[:MAX_LISTED_ERRORS])
    if len(messages) > MAX_LISTED_ERRORS:
        shown += f"; and {len(messages) - MAX_LISTED_ERRORS} more"
    # The input is left out of the details: it can be the whole (large) body, and `path` says where.
    detail = [{"path": _path(e), "type": e.get("type"), "msg": e.get("msg")} for e in errors]
    return JSONResponse(status_code=422, content={"message": shown, "detail": detail})


def too_large(max_bytes: int) -> JSONResponse:
    message = f"request body is larger than {max_bytes} bytes (REMEDIATOR_MAX_BODY_BYTES)"
    return JSONResponse(status_code=413, content={"message": message})


def unavailable(message: str) -> JSONResponse:
    return JSONResponse(
        status_code=503, content={"message": message}, headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
    )


AUTH_FAILURES = (Unauthenticated, NoRole, Forbidden, KeyStoreError, IssuerUnavailable)


def auth_answer(exc: Exception) -> JSONResponse:
    match exc:
        case Unauthenticated():
            # Both schemes are offered: people send Bearer, Alertmanager and Grafana may send Basic.
            content = {"error": "unauthenticated", "message": str(exc)}
            return JSONResponse(status_code=401, content=content, headers={"WWW-Authenticate": CHALLENGE})
        case Forbidden():
            content = {"error": "forbidden", "message": str(exc), "permission": exc.permission}
            return JSONResponse(status_code=403, content=content)
        case NoRole():
            return JSONResponse(status_code=403, content={"error": "forbidden", "message": str(exc)})
    # The key file went bad or the OIDC issuer is down: fixable, so the sender should retry.
    return unavailable(f"cannot check credentials: {exc}")


def not_json(content_type: str) -> JSONResponse:
    # Also what keeps a cross-site HTML form (which cannot send JSON) from reaching a JSON route.
    got = f"got {content_type!r}" if content_type else "no Content-Type"
    message = f"body: expected JSON sent with Content-Type: application/json ({got})"
    return JSONResponse(status_code=415, content={"error": "unsupported_media_type", "message": message})


async def _answer(request: Request, exc: Exception) -> JSONResponse:
    settings = request.app.state.settings
    match exc:
        case RequestValidationError() if isinstance(exc.body, bytes):
            # FastAPI hands the raw bytes on when the Content-Type is not JSON.
            return not_json(request.headers.get("content-type", ""))
        case RequestValidationError():
            return validation_answer(exc.errors(), exc.body)
        case Unauthenticated() | NoRole() | Forbidden() | KeyStoreError() | IssuerUnavailable():
            return auth_answer(exc)
        case HTTPException(status_code=413):
            return too_large(settings.max_body_bytes)
        case HTTPException(status_code=400) if exc.__cause__ is not None:
            # FastAPI's body reading hides why (bad encoding, absurd nesting); say it.
            return JSONResponse(
                status_code=400, content={"message": f"body: not readable as JSON: {exc.__cause__}"}
            )
        case HTTPException():
            content = {"message": exc.detail}
            return JSONResponse(status_code=exc.status_code, content=content, headers=exc.headers)
        case RuntimeError() if str(exc).startswith(FAILED_CONNECT):
            target = request.app.state.client.service_client.config.target_host
            return unavailable(f"Temporal at {target} is unreachable: {exc}")
        case (
            RPCTimeoutOrCancelledError()
            | RPCError(status=RPCStatusCode.DEADLINE_EXCEEDED | RPCStatusCode.CANCELLED)
        ):
            # Queries and updates wait for a worker, so a timeout usually means none is running.
            timeout = settings.api_temporal_timeout.total_seconds()
            return unavailable(
                f"Temporal gave no answer within {timeout:g}s: is a worker polling {settings.task_queue!r}?"
            )
        case WorkflowQueryFailedError():
            return unavailable(f"the worker could not answer the query: {exc}")
        case RPCError():
            # Routes handle the statuses that mean something to them (NOT_FOUND); the rest is Temporal
            # down, overloaded or misconfigured, which a retry (after a fix) can cure.
            return unavailable(f"Temporal refused or failed the call ({exc.status.name}): {exc.message}")
    raise exc  # anything else is a bug: let it be a logged 500


def install(app: FastAPI) -> None:
    handled: tuple[type[Exception], ...] = (
        RequestValidationError,
        HTTPException,
        RuntimeError,
        RPCTimeoutOrCancelledError,
        WorkflowQueryFailedError,
        RPCError,
        *AUTH_FAILURES,
    )
    for exc_class in handled:
        app.add_exception_handler(exc_class, _answer)
