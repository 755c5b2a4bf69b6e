"""POST /slack/interactions: Approve and Reject clicked in Slack, decided as the Slack user's principal.

Slack sends no bearer credential; it signs each request instead. The signature (`X-Slack-Signature`:
`v0=` + hex HMAC-SHA256 of `v0:{X-Slack-Request-Timestamp}:{raw body}` keyed by the app's signing
secret) is checked in constant time, and the timestamp must be within five minutes of now, before
anything in the body is read; otherwise 401. The clicking Slack user becomes a principal only through
the policy's `access.slack_users` (api/auth/access.py), and must hold `incidents:decide`. The decision
then takes the API's own path (the `decide` update, `via: slack`): the opener, the two-person rule and
the approver's environment, service and risk limits apply exactly as they do to the API.

Slack shows what happened to the clicker alone: an ephemeral message through the interaction's
`response_url` (and as the answer's body). The message in the channel is updated by the worker when
the incident moves on (activities/slack.py).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from temporalio.client import RPCTimeoutOrCancelledError
from temporalio.service import RPCError

from activities.config import Settings
from activities.slack import APPROVE_ACTION, REJECT_ACTION
from api.auth.credentials import Authenticator, Forbidden
from api.auth.middleware import SLACK_SIGNED
from api.auth.principal import Permission
from api.deps import ClientDep, SettingsDep
from api.routes_incidents import ID_PREFIX, DecisionBody, decision_request, send_decision
from api.schemas import FINGERPRINT_PATTERN, ErrorBody

log = logging.getLogger(__name__)

MAX_AGE_SECONDS = 300
SLACK_HOOKS = "hooks.slack.com"
_INCIDENT_ID = re.compile(f"^({ID_PREFIX})?{FINGERPRINT_PATTERN}$")

router = APIRouter(tags=["slack"])


class SignatureRefused(Exception):
    """The request is not provably Slack's: a 401, saying which check failed."""


def verify_signature(
    secret: str, timestamp: str | None, signature: str | None, body: bytes, now: float
) -> None:
    if not timestamp or not signature:
        raise SignatureRefused(
            "missing X-Slack-Request-Timestamp or X-Slack-Signature: not a request from Slack"
        )
    try:
        sent = int(timestamp)
    except ValueError:
        raise SignatureRefused("X-Slack-Request-Timestamp is not a Unix time") from None
    if abs(now - sent) > MAX_AGE_SECONDS:
        raise SignatureRefused(
            f"X-Slack-Request-Timestamp is {abs(now - sent):.0f}s from now, more than {MAX_AGE_SECONDS}s: "
            "a replayed request, or a clock that is off"
        )
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise SignatureRefused(
            "X-Slack-Signature does not match the request (another app's signing secret, a wrong "
            "REMEDIATOR_SLACK_SIGNING_SECRET, or an altered body)"
        )


@router.post(
    SLACK_SIGNED,
    responses={
        401: {"model": ErrorBody, "description": "missing, stale or wrong Slack signature"},
        404: {"model": ErrorBody, "description": "Slack is not configured"},
    },
)
async def interactions(request: Request, settings: SettingsDep, client: ClientDep) -> JSONResponse:
    """A button click from Slack (form field `payload`, signed by Slack); answers with an ephemeral text."""
    secret = settings.slack_signing_secret.get_secret_value()
    if not secret:
        raise HTTPException(404, "Slack is not configured (REMEDIATOR_SLACK_SIGNING_SECRET is not set)")
    body = await request.body()
    try:
        verify_signature(
            secret,
            request.headers.get("x-slack-request-timestamp"),
            request.headers.get("x-slack-signature"),
            body,
            time.time(),
        )
    except SignatureRefused as err:
        log.warning("refused a Slack interaction: %s", err)
        return JSONResponse(status_code=401, content={"error": "unauthenticated", "message": str(err)})
    payload = _payload(body)
    action = next(
        (a for a in payload.get("actions", []) if a.get("action_id") in (APPROVE_ACTION, REJECT_ACTION)), None
    )
    if payload.get("type") != "block_actions" or action is None:
        return JSONResponse({})  # not one of our buttons: nothing to do, nothing to say
    reply = Reply(payload, settings)
    user = payload.get("user") or {}
    user_id = str(user.get("id", ""))
    incident_id = str(action.get("value", ""))
    if not _INCIDENT_ID.match(incident_id):
        return await reply.say(f"The button names no incident ({incident_id[:80]!r}); nothing was decided.")
    authenticator: Authenticator = request.app.state.authenticator
    principal = authenticator.access.slack_principal(user_id)
    if principal is None:
        return await reply.say(
            f"Slack user {user_id or '(unknown)'} is not mapped to a Remediator principal (the policy "
            "file's access.slack_users); nothing was decided."
        )
    if not principal.can(Permission.DECIDE):
        return await reply.say(f"{Forbidden(principal, Permission.DECIDE.value)}; nothing was decided.")
    approve = action.get("action_id") == APPROVE_ACTION
    who = user.get("username") or user.get("name") or user_id
    decision = decision_request(
        principal, DecisionBody(reason=f"clicked in Slack by {who} ({user_id})"), approve, via="slack"
    )
    verb = "approval" if approve else "rejection"
    try:
        state = await send_decision(client, settings, incident_id, decision)
    except HTTPException as err:
        return await reply.say(f"Your {verb} of {incident_id} was not counted: {err.detail}")
    except (RPCError, RPCTimeoutOrCancelledError, RuntimeError) as err:
        # Temporal down or no worker answering: Slack would only show "didn't respond"; say what it is.
        log.warning("a Slack %s of %s could not reach Temporal: %s", verb, incident_id, err)
        return await reply.say(
            f"Your {verb} of {incident_id} could not reach Temporal ({err}); nothing was decided. Try again."
        )
    # The answer comes the moment the decision counts, before the incident moves on: say what follows.
    if not approve:
        return await reply.say(
            f"Your rejection of {state.incident_id} was recorded as {principal.name}; the incident ends Rejected."
        )
    approvers = ", ".join(dict.fromkeys(a.approver for a in state.approvals if a.approved))
    return await reply.say(
        f"Your approval of {state.incident_id} was recorded as {principal.name} (approved so far: "
        f"{approvers}). The message in the channel shows what the incident does next."
    )


def _payload(body: bytes) -> dict[str, Any]:
    """Slack posts application/x-www-form-urlencoded with the JSON in the `payload` field."""
    try:
        fields = parse_qs(body.decode(), strict_parsing=True)
        payload = json.loads(fields["payload"][0])
    except (UnicodeDecodeError, ValueError, KeyError) as err:
        raise HTTPException(
            400, f"body: expected Slack's form field `payload` holding JSON ({err})"
        ) from None
    if not isinstance(payload, dict):
        raise HTTPException(400, "body: the `payload` field is not a JSON object")
    return payload


class Reply:
    """The clicker's ephemeral answer: posted to the interaction's response_url and returned as the body."""

    def __init__(self, payload: dict[str, Any], settings: Settings) -> None:
        url = str(payload.get("response_url", ""))
        self._url = url if _slack_url(url, settings) else ""

    async def say(self, text: str) -> JSONResponse:
        answer = {"response_type": "ephemeral", "replace_original": False, "text": text}
        if self._url:
            try:
                async with httpx.AsyncClient(timeout=5.0) as http:
                    (await http.post(self._url, json=answer)).raise_for_status()
            except httpx.HTTPError as err:
                log.warning("could not answer a Slack interaction through its response_url: %s", err)
        return JSONResponse(answer)


def _slack_url(url: str, settings: Settings) -> bool:
    """Only Slack's own hooks (or the configured API's host, as in tests) get a request from us."""
    parts, api = urlsplit(url), urlsplit(settings.slack_api_url)
    if parts.scheme == "https" and parts.hostname == SLACK_HOOKS:
        return True
    return bool(parts.netloc) and (parts.scheme, parts.netloc) == (api.scheme, api.netloc)
