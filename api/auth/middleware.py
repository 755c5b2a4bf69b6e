"""Every request but health checks, API docs and the web board needs a credential, checked first.

In front of every route (one added later included), so a request without a valid credential learns
nothing: not whether its body parses, not how large a body may be, not whether a path exists.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from api import errors
from api.auth.credentials import Authenticator

# The docs describe the API's shape only (the same as this open-source repository does), no data.
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
# The web board (api/board) authenticates browsers itself: a session made from a credential, checked
# again on every request, with a CSRF token on every form. Nothing outside it reads that cookie.
BOARD = "/board"


class Authenticate:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in PUBLIC_PATHS or path == BOARD or path.startswith(f"{BOARD}/"):
            await self.app(scope, receive, send)
            return
        authenticator: Authenticator = scope["app"].state.authenticator
        try:
            principal = await authenticator.principal(Headers(scope=scope).get("authorization"))
        except errors.AUTH_FAILURES as err:
            await errors.auth_answer(err)(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)
