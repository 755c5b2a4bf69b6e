"""Outgoing webhooks, signed per the Standard Webhooks spec and checked by its reference library."""

from __future__ import annotations

import base64
import dataclasses
import os

import pytest
from standardwebhooks import Webhook, WebhookVerificationError
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.config import Settings, SettingsError, load_settings
from activities.notify import NotifyActivities
from tests.notify.support import change, receiver, run_notify
from workflows.phases import Phase

SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()


async def test_a_webhook_verifies_with_the_standard_webhooks_library() -> None:
    async with receiver() as hook:
        notify = NotifyActivities(Settings(notify_url=hook.url, notify_secret=SECRET))
        receipt = await run_notify(notify, change())
    assert receipt.sent == ["webhook"] and not receipt.failed
    [got] = hook.received
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["webhook-id"].startswith("msg_")
    assert got.headers["webhook-signature"].startswith("v1,")
    payload = Webhook(SECRET).verify(got.body, got.headers)  # raises unless every header checks out
    assert payload["incident_id"] == "incident-0123456789abcdef"
    assert payload["phase"] == "AwaitingApproval" and payload["risk"] == "destructive"
    assert payload["diagnosis"].startswith("resource_exhaustion")
    # The signature binds the body and the secret: a changed byte, or another secret, fails.
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(got.body.replace(b"orders-db", b"orders-dc"), got.headers)
    other = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(got.body, got.headers)


async def test_one_notification_keeps_its_id_across_attempts() -> None:
    async with receiver() as hook:
        notify = NotifyActivities(Settings(notify_url=hook.url, notify_secret=SECRET))
        first, retry, next_one = ActivityEnvironment(), ActivityEnvironment(), ActivityEnvironment()
        retry.info = dataclasses.replace(first.info, attempt=2)
        next_one.info = dataclasses.replace(first.info, activity_id=f"{first.info.activity_id}-next")
        for env in (first, retry, next_one):
            await env.run(notify.notify, change(Phase.GATHERING))
    ids = [got.headers["webhook-id"] for got in hook.received]
    # A retry repeats the id, so a receiver can drop it; the next notification has its own.
    assert ids[0] == ids[1] != ids[2]
    for got in hook.received:
        assert got.headers["webhook-timestamp"].isdigit()
        Webhook(SECRET).verify(got.body, got.headers)


async def test_without_a_secret_the_webhook_is_sent_unsigned() -> None:
    async with receiver() as hook:
        await run_notify(NotifyActivities(Settings(notify_url=hook.url)), change())
    [got] = hook.received
    assert "webhook-signature" not in got.headers and got.headers["webhook-id"]


async def test_a_4xx_is_reported_and_a_5xx_retried() -> None:
    async with receiver() as hook:
        notify = NotifyActivities(Settings(notify_url=hook.url, notify_secret=SECRET))
        hook.statuses = [410]
        receipt = await run_notify(notify, change())
        assert receipt.sent == [] and receipt.failed == [f"webhook: webhook {hook.url} answered 410"]
        hook.statuses = [503]
        with pytest.raises(ApplicationError, match="answered 503") as raised:
            await run_notify(notify, change())
        assert not raised.value.non_retryable


async def test_nothing_is_sent_without_a_url() -> None:
    notify = NotifyActivities(Settings())
    assert notify.channels == []
    receipt = await run_notify(notify, change())
    assert receipt.sent == [] and receipt.failed == []


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"REMEDIATOR_NOTIFY_SECRET": SECRET},
            "REMEDIATOR_NOTIFY_SECRET is set but REMEDIATOR_NOTIFY_URL is not",
        ),
        (
            {"REMEDIATOR_NOTIFY_URL": "http://hooks.example/x", "REMEDIATOR_NOTIFY_SECRET": "hunter2"},
            "must be whsec_ followed by the base64 of 24 to 64 random bytes",
        ),
        (
            {"REMEDIATOR_NOTIFY_URL": "http://hooks.example/x", "REMEDIATOR_NOTIFY_SECRET": "whsec_c2hvcnQ="},
            "must be whsec_ followed by the base64 of 24 to 64 random bytes",
        ),
    ],
)
def test_a_malformed_secret_is_refused_at_start(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=message):
        load_settings()
