"""The worker's side of Slack against the fake: what is posted, replied, updated, and what fails how."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import SecretStr
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.config import Settings, SettingsError, load_settings
from activities.notify import NotifyActivities
from activities.slack import APPROVE_ACTION, REJECT_ACTION, blocks
from tests.notify.fake_slack import CHANNEL_ID, FakeSlack, fake_slack
from tests.notify.support import change, receiver, run_notify
from workflows.notifications import NotifyReceipt, SlackMessage
from workflows.phases import Phase

TOKEN = "xoxb-test-token"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with fake_slack(SECRET, TOKEN) as fake:
        yield fake


def slack_settings(slack: FakeSlack, **more: Any) -> Settings:
    return Settings(
        slack_bot_token=TOKEN,
        slack_signing_secret=SECRET,
        slack_channel="#incidents",
        slack_api_url=slack.api_url,
        **more,
    )


def buttons(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    actions = [b for b in message["blocks"] if b["type"] == "actions"]
    return {e["action_id"]: e for block in actions for e in block["elements"]}


def texts(message: dict[str, Any]) -> str:
    found = []
    for block in message["blocks"]:
        if "text" in block:
            found.append(block["text"]["text"])
        found += [f["text"] for f in block.get("fields", [])]
    return "\n".join(found)


async def test_an_approval_is_asked_with_the_diagnosis_the_preview_and_buttons(slack: FakeSlack) -> None:
    receipt = await run_notify(NotifyActivities(slack_settings(slack)), change())
    [call] = slack.calls
    assert (call.method, call.token) == ("chat.postMessage", TOKEN)
    assert call.body["channel"] == "#incidents"
    assert call.body["text"] == "DiskFull on orders-db: approval needed"
    assert receipt.sent == ["slack"]
    assert receipt.slack_message == SlackMessage(channel=CHANNEL_ID, ts=call.answer["ts"])
    shown = texts(call.body)
    assert "DiskFull on orders-db" in shown and "`incident-0123456789abcdef`" in shown
    # Slack's control characters are escaped, so alert text cannot mention @channel or forge links.
    assert "*Diagnosis*\nresource_exhaustion (0.90): /var is 97% full &lt;WAL&gt; &amp; logs" in shown
    assert "purge: purge-wal (destructive): would delete 42 files (3.1 GiB)" in shown
    found = buttons(call.body)
    assert set(found) == {APPROVE_ACTION, REJECT_ACTION}
    assert {b["value"] for b in found.values()} == {"incident-0123456789abcdef"}
    assert (found[APPROVE_ACTION]["style"], found[REJECT_ACTION]["style"]) == ("primary", "danger")
    # Destructive: Approve asks again before it counts.
    confirm = found[APPROVE_ACTION]["confirm"]
    assert confirm["title"]["text"] == "Approve a destructive action?"
    assert "needs 2 distinct approvers" in confirm["text"]["text"]
    assert (confirm["confirm"]["text"], confirm["deny"]["text"]) == ("Approve", "Cancel")


def test_only_destructive_approvals_ask_for_confirmation() -> None:
    for risk in ("change", None):
        asked = change(risk=risk, approvers_required=1)
        approve = next(b for b in blocks(asked, buttons=True) if b["type"] == "actions")["elements"][0]
        assert approve["action_id"] == APPROVE_ACTION and "confirm" not in approve


async def test_reminders_reply_in_the_thread_and_later_phases_update_the_message(slack: FakeSlack) -> None:
    notify = NotifyActivities(slack_settings(slack))
    posted = (await run_notify(notify, change())).slack_message
    assert posted is not None
    reminder = change(message="approval still pending", detail="no decision after 0:15:00", level=1)
    await run_notify(notify, reminder.model_copy(update={"slack_message": posted}))
    decided = ["approved by alice via slack: clicked in Slack by alice (UALICE01)"]
    resolved = change(Phase.RESOLVED, message="playbook resolved", decisions=decided, slack_message=posted)
    receipt = await run_notify(notify, resolved)
    reply, update = slack.calls[1:]
    assert reply.method == "chat.postMessage" and reply.body["thread_ts"] == posted.ts
    assert reply.body["text"] == "approval still pending (no decision after 0:15:00)"
    assert update.method == "chat.update"
    assert (update.body["channel"], update.body["ts"]) == (posted.channel, posted.ts)
    assert buttons(update.body) == {}  # nobody can click on a decided incident
    assert "*Resolved*: playbook resolved" in texts(update.body)
    assert "• approved by alice via slack: clicked in Slack by alice (UALICE01)" in texts(update.body)
    assert receipt.sent == ["slack"] and receipt.slack_message is None  # the workflow keeps its own


async def test_a_second_approval_closes_the_first_message_and_asks_anew(slack: FakeSlack) -> None:
    notify = NotifyActivities(slack_settings(slack))
    first = (await run_notify(notify, change())).slack_message
    second = (await run_notify(notify, change(slack_message=first))).slack_message
    assert first is not None and second is not None and second.ts != first.ts
    closed, asked = slack.calls[1:]
    assert closed.method == "chat.update" and closed.body["ts"] == first.ts
    assert buttons(closed.body) == {} and "*Superseded*" in texts(closed.body)
    assert asked.method == "chat.postMessage" and set(buttons(asked.body)) == {APPROVE_ACTION, REJECT_ACTION}


async def test_quiet_phases_post_nothing_and_unasked_escalations_post_once(slack: FakeSlack) -> None:
    notify = NotifyActivities(slack_settings(slack))
    for phase in (Phase.RECEIVED, Phase.GATHERING, Phase.DIAGNOSING, Phase.RESOLVED):
        assert (await run_notify(notify, change(phase))).sent == []
    assert slack.calls == []
    receipt = await run_notify(notify, change(Phase.ESCALATED, message="no remediation known"))
    assert receipt.sent == ["slack"] and receipt.slack_message is not None
    [call] = slack.calls
    assert buttons(call.body) == {} and "*Escalated*: no remediation known" in texts(call.body)


async def test_slack_errors_are_retried_or_reported(slack: FakeSlack) -> None:
    notify = NotifyActivities(slack_settings(slack))
    slack.fail_next = [(200, {"ok": False, "error": "channel_not_found"})]
    receipt = await run_notify(notify, change())
    assert receipt.sent == [] and receipt.failed == ["slack: Slack chat.postMessage: channel_not_found"]
    for status, answer in [
        (429, {"ok": False, "error": "ratelimited"}),
        (200, {"ok": False, "error": "ratelimited"}),
    ]:
        slack.fail_next = [(status, answer)]
        with pytest.raises(ApplicationError, match=r"Slack chat\.postMessage") as raised:
            await run_notify(notify, change())
        assert not raised.value.non_retryable
    wrong = NotifyActivities(
        slack_settings(slack).model_copy(update={"slack_bot_token": SecretStr("xoxb-wrong")})
    )
    assert (await run_notify(wrong, change())).failed == ["slack: Slack chat.postMessage: invalid_auth"]


async def test_a_retry_sends_only_to_the_channels_that_failed(slack: FakeSlack) -> None:
    """Every channel that delivered is kept in the heartbeat details; the next attempt skips it."""
    async with receiver() as hook:
        notify = NotifyActivities(slack_settings(slack, notify_url=hook.url))
        slack.fail_next = [(503, {"ok": False, "error": "service_unavailable"})]
        env = ActivityEnvironment()
        beats: list[Any] = []
        env.on_heartbeat = lambda *details: beats.append(details[0])
        with pytest.raises(ApplicationError, match="answered 503"):
            await env.run(notify.notify, change())
        assert len(hook.received) == 1 and beats[-1]["sent"] == ["webhook"]
        # The next attempt starts from the last heartbeat, as Temporal hands it over.
        retry = ActivityEnvironment()
        retry.info = dataclasses.replace(retry.info, attempt=2, heartbeat_details=[beats[-1]])
        receipt = NotifyReceipt.model_validate(await retry.run(notify.notify, change()))
    assert len(hook.received) == 1, "the webhook that arrived was not sent again"
    assert receipt.sent == ["webhook", "slack"] and receipt.slack_message is not None
    assert [c.method for c in slack.calls] == ["chat.postMessage", "chat.postMessage"]


def test_slack_settings_come_as_a_set(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not load_settings().incident_config().notifications
    monkeypatch.setenv("REMEDIATOR_SLACK_BOT_TOKEN", TOKEN)
    with pytest.raises(
        SettingsError, match="missing REMEDIATOR_SLACK_SIGNING_SECRET, REMEDIATOR_SLACK_CHANNEL"
    ):
        load_settings()
    monkeypatch.setenv("REMEDIATOR_SLACK_SIGNING_SECRET", SECRET)
    monkeypatch.setenv("REMEDIATOR_SLACK_CHANNEL", "C0REMEDY")
    loaded = load_settings()
    assert loaded.slack_configured and loaded.incident_config().notifications
