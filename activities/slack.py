"""Slack: the approval message (Block Kit, with Approve and Reject buttons) and its later updates.

Through the Web API with the bot token (scope `chat:write`):

- an approval asked: `chat.postMessage` with the diagnosis, the plan with its previews and the two
  buttons (Approve asks for confirmation when the action is destructive); its channel and ts go back
  to the workflow (`NotifyReceipt.slack_message`), so any worker can update it later;
- a reminder or escalation while it is open: a reply in the message's thread;
- every later phase: `chat.update` of that message, the buttons replaced by the outcome and who
  decided (a new approval asked later first closes the old message, then posts a new one);
- an incident that ends Escalated, Failed or RolledBack without ever asking: one message, no buttons.

The buttons carry the incident id; a click reaches POST /slack/interactions (api/routes_slack.py),
which checks Slack's signature and decides as the Slack user's principal.
"""

from __future__ import annotations

from typing import Any

import httpx

from activities.config import Settings
from activities.notify_channel import ChannelFailure, asking, clip
from workflows.notifications import NotifyReceipt, PhaseChange, SlackMessage
from workflows.phases import Phase

APPROVE_ACTION = "remediator.approve"
REJECT_ACTION = "remediator.reject"
DECISION_BLOCK = "remediator.decision"
# Slack's errors that a later try may not meet again; every other `ok: false` is permanent.
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
# Phases that need a human even though nobody was asked to approve anything.
UNASKED_ALERTS = frozenset({Phase.ESCALATED, Phase.FAILED, Phase.ROLLED_BACK})
EMOJI = {
    Phase.AWAITING_APPROVAL: ":raising_hand:",
    Phase.RESOLVED: ":white_check_mark:",
    Phase.REJECTED: ":no_entry_sign:",
    Phase.CANCELLED: ":heavy_minus_sign:",
    Phase.ESCALATED: ":rotating_light:",
    Phase.FAILED: ":x:",
    Phase.ROLLED_BACK: ":leftwards_arrow_with_hook:",
}
SECTION_CHARS = 2_900  # Slack refuses a section text over 3,000 characters


class SlackChannel:
    name = "slack"

    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        self._api = settings.slack_api_url.rstrip("/")
        self._token = settings.slack_bot_token
        self._channel = settings.slack_channel
        self._http = http

    async def send(self, change: PhaseChange, receipt: NotifyReceipt) -> bool:
        posted = change.slack_message
        if asking(change) and change.level == 0:
            if posted is not None:
                await self._update(posted, change, superseded=True)
            receipt.slack_message = await self._post(change, buttons=True)
        elif asking(change) and posted is not None:
            await self._call(
                "chat.postMessage",
                {"channel": posted.channel, "thread_ts": posted.ts, "text": _reminder(change)},
            )
        elif posted is not None:
            await self._update(posted, change)
        elif asking(change) or change.phase in UNASKED_ALERTS:
            receipt.slack_message = await self._post(change, buttons=False)
        else:
            return False
        return True

    async def _post(self, change: PhaseChange, buttons: bool) -> SlackMessage:
        answer = await self._call(
            "chat.postMessage",
            {
                "channel": self._channel,
                "text": _headline(change),
                "blocks": blocks(change, buttons=buttons),
                "unfurl_links": False,
            },
        )
        return SlackMessage(channel=str(answer.get("channel", self._channel)), ts=str(answer["ts"]))

    async def _update(self, posted: SlackMessage, change: PhaseChange, superseded: bool = False) -> None:
        await self._call(
            "chat.update",
            {
                "channel": posted.channel,
                "ts": posted.ts,
                "text": _headline(change),
                "blocks": blocks(change, buttons=False, superseded=superseded),
            },
        )

    async def _call(self, method: str, payload: dict[str, Any]) -> dict[str, Any]:
        url = f"{self._api}/{method}"
        headers = {"Authorization": f"Bearer {self._token.get_secret_value()}"}
        try:
            response = await self._http.post(url, json=payload, headers=headers)
        except httpx.HTTPError as err:
            raise ChannelFailure(f"Slack {method} unreachable: {err}") from err
        if response.status_code == 429 or response.is_server_error:
            raise ChannelFailure(f"Slack {method} answered {response.status_code}")
        if not response.is_success:
            raise ChannelFailure(f"Slack {method} answered {response.status_code}", permanent=True)
        try:
            answer: dict[str, Any] = response.json()
        except ValueError:
            raise ChannelFailure(f"Slack {method} answered something other than JSON") from None
        if not answer.get("ok"):
            error = str(answer.get("error", "unknown_error"))
            raise ChannelFailure(f"Slack {method}: {error}", permanent=error not in TRANSIENT_ERRORS)
        return answer


def blocks(change: PhaseChange, buttons: bool, superseded: bool = False) -> list[dict[str, Any]]:
    """The message's Block Kit: what happened, why, what would run, then buttons or the outcome."""
    found: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": clip(_title(change), 150), "emoji": True}},
        {
            "type": "section",
            "fields": [
                _mrkdwn(f"*Incident*\n`{change.incident_id}`"),
                _mrkdwn(f"*Phase*\n{change.phase.value}"),
                _mrkdwn(f"*Environment*\n{escape(change.environment or '(none)')}"),
                _mrkdwn(f"*Severity*\n{escape(change.severity or '(none)')}"),
            ],
        },
    ]
    if change.diagnosis:
        found.append(_section(f"*Diagnosis*\n{escape(change.diagnosis)}"))
    if change.preview:
        found.append(_section(f"*Plan and preview*\n```{escape(change.preview)}```"))
    if buttons:
        if change.detail:
            found.append(_section(f"*Asked*\n{escape(change.detail)}"))
        found.append(_decision_buttons(change))
        return found
    if superseded:
        status = "*Superseded*: a new approval is asked in a later message"
    else:
        status = f"*{change.phase.value}*: {escape(change.message)}"
        if change.detail:
            status += f"\n{escape(change.detail)}"
    if change.decisions:
        status += "\n" + "\n".join(f"• {escape(d)}" for d in change.decisions)
    found.append(_section(status))
    return found


def _decision_buttons(change: PhaseChange) -> dict[str, Any]:
    approve: dict[str, Any] = {
        "type": "button",
        "action_id": APPROVE_ACTION,
        "text": {"type": "plain_text", "text": "Approve"},
        "style": "primary",
        "value": change.incident_id,
    }
    if change.risk == "destructive":
        approve["confirm"] = {
            "title": {"type": "plain_text", "text": "Approve a destructive action?"},
            "text": _mrkdwn(
                clip(
                    f"This approves a *destructive* remediation of {escape(change.service or change.alert_name)}"
                    f" in {escape(change.environment or '(no environment)')}; it needs "
                    f"{change.approvers_required} distinct approvers and cannot be undone from Slack.",
                    300,
                )
            ),
            "confirm": {"type": "plain_text", "text": "Approve"},
            "deny": {"type": "plain_text", "text": "Cancel"},
            "style": "danger",
        }
    reject = {
        "type": "button",
        "action_id": REJECT_ACTION,
        "text": {"type": "plain_text", "text": "Reject"},
        "style": "danger",
        "value": change.incident_id,
    }
    return {"type": "actions", "block_id": DECISION_BLOCK, "elements": [approve, reject]}


def escape(text: str) -> str:
    """Slack's mrkdwn control characters; the rest of the text stays as it is."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(clip(text, SECTION_CHARS))}


def _title(change: PhaseChange) -> str:
    emoji = EMOJI.get(change.phase, ":information_source:")
    return f"{emoji} {change.alert_name} on {change.service or '(no service)'}"


def _headline(change: PhaseChange) -> str:
    """The plain text Slack shows in notifications and to screen readers."""
    what = "approval needed" if asking(change) else change.phase.value
    return clip(f"{change.alert_name} on {change.service or '(no service)'}: {what}", 3_000)


def _reminder(change: PhaseChange) -> str:
    text = f"{change.message} ({change.detail})" if change.detail else change.message
    return clip(escape(text), 3_000)
