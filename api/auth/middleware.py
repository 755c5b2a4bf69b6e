"""Every request but health, API docs, the web board and Slack's signed clicks needs a credential, first.

In front of every route (one added later included), so a request without a valid credential learns
nothing: not whether its body parses, not how large a body may be, not whether a path exists.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from api import errors
from api.auth.credentials import Authenticator

# The docs describe the API's shape only (the same as this open-source repository does), no data;
# /metrics counts only, by labels from closed sets (api/metrics.py), for Prometheus to scrape.
PUBLIC_PATHS = frozenset(
    {"/healthz", "/readyz", "/metrics", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
)
# The web board (api/board) authenticates browsers itself: a session made from a credential, checked
# again on every request, with a CSRF token on every form. Nothing outside it reads that cookie.
BOARD = "/board"
# Slack sends no bearer credential: its button clicks carry Slack's request signature, which the route
# checks before reading anything (api/routes_slack.py), and decide only as a principal the policy maps.
SLACK_SIGNED = "/slack/interactions"


class Authenticate:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or path in PUBLIC_PATHS
            or path in (SLACK_SIGNED, BOARD)
            or path.startswith(f"{BOARD}/")
        ):
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
