"""Notifications: each phase change to every configured channel, and to no other.

Channels: the JSON webhook (REMEDIATOR_NOTIFY_URL, signed per Standard Webhooks when
REMEDIATOR_NOTIFY_SECRET is set), Slack (activities/slack.py) and email (activities/email.py). Whether
an incident schedules `notify` at all is decided once, when it starts (IncidentConfig.notifications).

One activity serves every channel, so a retry must not repeat what already arrived: each channel
that delivered is kept in the heartbeat details, and the next attempt skips it. A channel that fails
for good (a 4xx, an unknown Slack channel, a refused login) is reported in the receipt's `failed` and
not retried; a transient failure retries the activity (Temporal's policy, three attempts).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import httpx
from temporalio import activity

from activities.config import Settings
from activities.email import EmailChannel
from activities.errors import TemporaryError
from activities.notify_channel import Channel, ChannelFailure
from activities.slack import SlackChannel
from workflows.activity_names import NOTIFY
from workflows.error_types import ErrorType
from workflows.notifications import NotifyReceipt, PhaseChange


class Webhook:
    """POSTs the PhaseChange as JSON; the Standard Webhooks headers make it verifiable and deduplicable.

    `webhook-id` is the same on every retry of one notification, so a receiver can drop repeats.
    """

    name = "webhook"

    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        self._url = settings.notify_url
        self._secret = settings.notify_secret.get_secret_value()
        self._http = http

    async def send(self, change: PhaseChange, receipt: NotifyReceipt) -> bool:
        body = change.model_dump_json().encode()
        headers = {
            "content-type": "application/json",
            **webhook_headers(message_id(), int(time.time()), body, self._secret),
        }
        try:
            response = await self._http.post(self._url, content=body, headers=headers)
        except httpx.HTTPError as err:
            raise ChannelFailure(f"webhook {self._url} unreachable: {err}") from err
        if response.is_server_error or response.status_code == 429:
            raise ChannelFailure(f"webhook {self._url} answered {response.status_code}")
        if not response.is_success:
            # 4xx will not get better by retrying the same body.
            raise ChannelFailure(f"webhook {self._url} answered {response.status_code}", permanent=True)
        return True


def webhook_headers(msg_id: str, timestamp: int, body: bytes, secret: str) -> dict[str, str]:
    """`webhook-id`, `webhook-timestamp` and, with a `whsec_` secret, `webhook-signature`:
    `v1,<base64 of HMAC-SHA256 over "{id}.{timestamp}.{body}">` keyed by the secret's decoded bytes."""
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(timestamp)}
    if secret:
        key = base64.b64decode(secret.removeprefix("whsec_"))
        signed = f"{msg_id}.{timestamp}.".encode() + body
        digest = hmac.new(key, signed, hashlib.sha256).digest()
        headers["webhook-signature"] = f"v1,{base64.b64encode(digest).decode()}"
    return headers


def message_id() -> str:
    """One id per notification, the same on each of its attempts."""
    info = activity.info()
    seed = f"{info.workflow_id}/{info.workflow_run_id}/{info.activity_id}"
    return "msg_" + hashlib.sha256(seed.encode()).hexdigest()[:32]


class NotifyActivities:
    def __init__(self, settings: Settings) -> None:
        self._http = httpx.AsyncClient(timeout=10.0)
        channels: list[Channel] = []
        if settings.notify_url:
            channels.append(Webhook(settings, self._http))
        if settings.slack_configured:
            channels.append(SlackChannel(settings, self._http))
        if settings.smtp_configured:
            channels.append(EmailChannel(settings))
        self.channels = channels

    @activity.defn(name=NOTIFY)
    async def notify(self, change: PhaseChange) -> NotifyReceipt:
        details = activity.info().heartbeat_details
        # What earlier attempts of this notification delivered (or gave up on) is not sent again.
        receipt = NotifyReceipt.model_validate(details[0]) if details else NotifyReceipt()
        done = {*receipt.sent, *(f.split(":", 1)[0] for f in receipt.failed)}
        retry: list[str] = []
        for channel in self.channels:
            if channel.name in done:
                continue
            try:
                if not await channel.send(change, receipt):
                    continue
                receipt.sent.append(channel.name)
            except ChannelFailure as err:
                if not err.permanent:
                    retry.append(f"{channel.name}: {err}")
                    continue
                receipt.failed.append(f"{channel.name}: {err}")
            activity.heartbeat(receipt.model_dump(mode="json"))
        if retry:
            raise TemporaryError("; ".join(retry), type=ErrorType.NOTIFICATION_FAILED)
        return receipt
