"""The web board: server-rendered pages to read incidents and to approve or reject them.

Browsers cannot send an Authorization header from a link or a form, so the board has its own login:
a person pastes an API key or an OIDC token once, and the browser gets a session cookie (sessions.py).
The middleware leaves /board to this module; every page but the login form needs a live session
whose credential still authenticates and whose roles grant `incidents:read`. Every POST carries the
session's CSRF token (and, when the browser sends one, an Origin of this host), on top of the
SameSite=Strict cookie. Decisions go through the API's own decision path (`send_decision`): the approver is
the session's principal, and the workflow's validator applies the two-person rule, the opener
refusal and the approver's limits, exactly as for `POST /incidents/{id}/approve`.

Everything shown is escaped by Jinja2's autoescape: alert labels and annotations are attacker text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import jinja2
from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from api.auth.credentials import Authenticator, Forbidden, NoRole, Unauthenticated
from api.auth.middleware import BOARD
from api.auth.principal import Permission, Principal
from api.board.sessions import COOKIE, LIFETIME_SECONDS, Session, SessionStore
from api.deps import ClientDep, SettingsDep
from api.routes_incidents import (
    DecisionBody,
    IncidentId,
    decision_request,
    get_incident,
    list_incidents,
    send_decision,
    workflow_id,
)
from workflows.incident_models import IncidentState
from workflows.phases import TERMINAL_PHASES, Phase

PREFIX = BOARD
HERE = Path(__file__).parent
templates = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True, undefined=jinja2.StrictUndefined
    )
)
STYLESHEET = (HERE / "board.css").read_text()
# No script runs on the board at all, inline or not: an escaping slip still executes nothing. No
# framing either, so no other site can overlay the Approve button (clickjacking).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # Not no-referrer: with it a browser sends `Origin: null` on the board's own forms.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
NOTICES = {"approved": "Your approval was recorded.", "rejected": "Your rejection was recorded."}

router = APIRouter(prefix=PREFIX, include_in_schema=False)


@dataclass(frozen=True)
class Viewer:
    """The person behind a board request: the session's principal, checked again just now."""

    principal: Principal
    session: Session


def _sessions(request: Request) -> SessionStore:
    store: SessionStore | None = getattr(request.app.state, "board_sessions", None)
    if store is None:
        store = request.app.state.board_sessions = SessionStore()
    return store


def _to_login() -> HTTPException:
    return HTTPException(303, "log in to the board first", headers={"Location": f"{PREFIX}/login"})


async def _viewer(request: Request) -> Viewer:
    sessions = _sessions(request)
    session_id = request.cookies.get(COOKIE)
    session = sessions.get(session_id)
    if session is None:
        raise _to_login()
    authenticator: Authenticator = request.app.state.authenticator
    try:
        principal = await authenticator.principal(f"Bearer {session.credential}")
    except (Unauthenticated, NoRole):
        sessions.end(session_id)  # revoked key, expired token, group removed: log in again
        raise _to_login() from None
    if not principal.can(Permission.READ):
        raise Forbidden(principal, Permission.READ.value)
    request.state.principal = principal
    return Viewer(principal=principal, session=session)


ViewerDep = Annotated[Viewer, Depends(_viewer)]
Csrf = Annotated[str, Form(max_length=100)]


def _same_origin(request: Request) -> None:
    """Browsers send Origin on every POST; one from another site is refused whatever it carries."""
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
        raise HTTPException(403, f"cross-site form refused: Origin {origin} is not this board")


def _check_form(request: Request, viewer: Viewer, csrf: str) -> None:
    _same_origin(request)
    if not viewer.session.csrf_matches(csrf):
        raise HTTPException(403, "the form's CSRF token does not match your session; reload the page")


def _page(request: Request, template: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    response = templates.TemplateResponse(request, template, context, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    return response


@router.get("/board.css")
async def stylesheet() -> Response:
    return Response(STYLESHEET, media_type="text/css", headers={"Cache-Control": "max-age=300"})


@router.get("/login")
async def login_form(request: Request) -> HTMLResponse:
    return _page(request, "login.html", {"error": ""})


@router.post("/login")
async def login(request: Request, credential: Annotated[str, Form(max_length=16_384)]) -> Response:
    """Check the credential as the API would; on success the browser gets only a session id."""
    _same_origin(request)
    credential = credential.strip()
    authenticator: Authenticator = request.app.state.authenticator
    try:
        principal = await authenticator.principal(f"Bearer {credential}")
    except (Unauthenticated, NoRole) as err:
        return _page(request, "login.html", {"error": str(err)}, 401)
    if not principal.can(Permission.READ):
        refusal = str(Forbidden(principal, Permission.READ.value))
        return _page(request, "login.html", {"error": f"{refusal}: the board needs it"}, 403)
    response = RedirectResponse(PREFIX, status_code=303)
    response.set_cookie(
        COOKIE,
        _sessions(request).create(credential),
        max_age=LIFETIME_SECONDS,
        path=PREFIX,  # never sent to the JSON API, which reads no cookie anyway
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
async def logout(request: Request, viewer: ViewerDep, csrf: Csrf) -> Response:
    _check_form(request, viewer, csrf)
    _sessions(request).end(request.cookies.get(COOKIE))
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    response.delete_cookie(COOKIE, path=PREFIX)
    return response


@router.get("")
async def board(
    request: Request, viewer: ViewerDep, client: ClientDep, settings: SettingsDep, phase: Phase | None = None
) -> HTMLResponse:
    rows = await list_incidents(client, settings, viewer.principal, phase=phase)
    context = {"viewer": viewer, "rows": rows, "phase": phase, "phases": list(Phase)}
    return _page(request, "board.html", context)


async def _incident_page(
    request: Request,
    viewer: Viewer,
    state: IncidentState,
    notice: str = "",
    error: str = "",
    status: int = 200,
) -> HTMLResponse:
    context = {
        "viewer": viewer,
        "state": state,
        "can_decide": viewer.principal.can(Permission.DECIDE) and state.phase == Phase.AWAITING_APPROVAL,
        "terminal": state.phase in TERMINAL_PHASES,
        "notice": notice,
        "error": error,
    }
    return _page(request, "incident.html", context, status)


@router.get("/incidents/{incident_id}")
async def incident(
    request: Request,
    incident_id: IncidentId,
    viewer: ViewerDep,
    client: ClientDep,
    settings: SettingsDep,
    decided: str = "",
) -> HTMLResponse:
    state = await get_incident(incident_id, client, settings, viewer.principal)
    return await _incident_page(request, viewer, state, notice=NOTICES.get(decided, ""))


@router.post("/incidents/{incident_id}/{verb}")
async def decide(
    request: Request,
    incident_id: IncidentId,
    verb: Literal["approve", "reject"],
    viewer: ViewerDep,
    client: ClientDep,
    settings: SettingsDep,
    csrf: Csrf,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """The API's decision, as the session's principal; the page then shows what the incident did."""
    _check_form(request, viewer, csrf)
    principal = viewer.principal
    try:
        if not principal.can(Permission.DECIDE):
            raise HTTPException(403, str(Forbidden(principal, Permission.DECIDE.value)))
        approve = verb == "approve"
        await send_decision(
            client, settings, incident_id, decision_request(principal, DecisionBody(reason=reason), approve)
        )
    except HTTPException as err:
        # Refused (opener, already decided, outside the approver's limits, not awaiting): say why.
        state = await get_incident(incident_id, client, settings, principal)
        return await _incident_page(request, viewer, state, error=str(err.detail), status=err.status_code)
    done = "approved" if approve else "rejected"
    return RedirectResponse(f"{PREFIX}/incidents/{workflow_id(incident_id)}?decided={done}", status_code=303)
