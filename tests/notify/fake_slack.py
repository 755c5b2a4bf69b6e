"""A local fake of Slack, both ways.

Slack's side of the Web API: `chat.postMessage` and `chat.update` are recorded (body and bot token)
and answered as Slack answers them; `fail_next` makes the next calls answer an error. Each
interaction's `response_url` points back here and records the ephemeral answers.

Slack's side of interactivity: `click()` sends a `block_actions` payload, as Slack sends it when a
person clicks a button, to our interaction endpoint, signed with the app's signing secret by
slack_sdk's own SignatureVerifier, so the check on our side is tested against Slack's code.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
from aiohttp import web
from slack_sdk.signature import SignatureVerifier

from tests.llm.fake_openai import start_local

CHANNEL_ID = "C0REMEDY"


@dataclass
class Call:
    method: str
    body: dict[str, Any]
    token: str
    answer: dict[str, Any] = field(default_factory=dict)


@dataclass
class FakeSlack:
    signing_secret: str
    bot_token: str
    url: str = ""
    calls: list[Call] = field(default_factory=list)
    responses: list[dict[str, Any]] = field(default_factory=list)  # posted to response_url
    fail_next: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # (status, body)
    _ts: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    def posted(self) -> list[Call]:
        """Messages (not thread replies) Slack accepted into the channel, in order."""
        return [
            c
            for c in self.calls
            if c.method == "chat.postMessage" and "thread_ts" not in c.body and c.answer.get("ok")
        ]

    def updates(self) -> list[Call]:
        return [c for c in self.calls if c.method == "chat.update"]

    async def _api(self, request: web.Request) -> web.Response:
        call = Call(
            method=request.match_info["method"],
            body=await request.json(),
            token=request.headers.get("Authorization", "").removeprefix("Bearer "),
        )
        self.calls.append(call)
        status = 200
        if self.fail_next:
            status, call.answer = self.fail_next.pop(0)
        elif call.token != self.bot_token:
            call.answer = {"ok": False, "error": "invalid_auth"}
        elif call.method == "chat.postMessage":
            ts = f"{int(time.time())}.{next(self._ts):06d}"
            call.answer = {"ok": True, "channel": CHANNEL_ID, "ts": ts, "message": call.body}
        elif call.method == "chat.update":
            call.answer = {"ok": True, "channel": call.body["channel"], "ts": call.body["ts"]}
        else:
            call.answer = {"ok": False, "error": "unknown_method"}
        return web.json_response(call.answer, status=status)

    async def _response_url(self, request: web.Request) -> web.Response:
        self.responses.append(await request.json())
        return web.Response(text="ok")

    def interaction(
        self, user_id: str, action_id: str, value: str, message: Call | None = None
    ) -> dict[str, Any]:
        """A `block_actions` payload as Slack sends it for a click on one of `message`'s buttons."""
        ts = str(message.answer.get("ts", "")) if message else ""
        return {
            "type": "block_actions",
            "user": {
                "id": user_id,
                "username": user_id.lower(),
                "name": user_id.lower(),
                "team_id": "T0TEAM",
            },
            "api_app_id": "A0REMEDIATOR",
            "token": "deprecated-verification-token",
            "container": {
                "type": "message",
                "message_ts": ts,
                "channel_id": CHANNEL_ID,
                "is_ephemeral": False,
            },
            "trigger_id": "1.2.3",
            "team": {"id": "T0TEAM", "domain": "example"},
            "channel": {"id": CHANNEL_ID, "name": "incidents"},
            "message": {"type": "message", "ts": ts, "blocks": message.body["blocks"] if message else []},
            "response_url": f"{self.url}/response/{len(self.responses)}",
            "actions": [
                {
                    "action_id": action_id,
                    "block_id": "remediator.decision",
                    "type": "button",
                    "value": value,
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }

    async def click(
        self,
        endpoint: str,
        payload: dict[str, Any],
        *,
        secret: str | None = None,
        timestamp: int | None = None,
        signature: str | None = None,
    ) -> httpx.Response:
        """POST `payload` to our endpoint as Slack does: form-encoded, signed (or mis-signed on request)."""
        body = urlencode({"payload": json.dumps(payload)})
        sent_at = str(int(time.time()) if timestamp is None else timestamp)
        signer = SignatureVerifier(secret or self.signing_secret)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": sent_at,
            "X-Slack-Signature": signature or signer.generate_signature(timestamp=sent_at, body=body) or "",
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        }
        async with httpx.AsyncClient(timeout=30) as http:
            return await http.post(endpoint, content=body, headers=headers)


@asynccontextmanager
async def fake_slack(signing_secret: str, bot_token: str) -> AsyncIterator[FakeSlack]:
    slack = FakeSlack(signing_secret=signing_secret, bot_token=bot_token)
    app = web.Application()
    app.router.add_post("/api/{method}", slack._api)
    app.router.add_post("/response/{n}", slack._response_url)
    runner, slack.url = await start_local(app)
    try:
        yield slack
    finally:
        await runner.cleanup()
