"""What the notification channels (webhook, Slack, email) are told on a phase change, and what they did."""

from __future__ import annotations

from pydantic import BaseModel

from workflows.actions import Risk
from workflows.phases import Phase


class SlackMessage(BaseModel):
    """Where a Slack message lives: `chat.update` and thread replies name it by channel and ts."""

    channel: str
    ts: str


class PhaseChange(BaseModel):
    """Body of the notification webhook sent on every phase change, and what Slack and email show."""

    incident_id: str
    phase: Phase
    alert_name: str
    service: str
    severity: str
    message: str
    level: int = 0
    detail: str = ""  # the timeline entry's detail
    environment: str = ""  # the trusted one the policy judged by
    diagnosis: str = ""  # "category (confidence): explanation"
    preview: str = ""  # what is asked and what the previews say it would do
    risk: Risk | None = None  # of the approval asked (None: none asked, or an explicit approval step)
    approvers_required: int = 0  # distinct approvers the open approval needs; 0: none open
    decisions: list[str] = []  # "approved by alice via slack: reason", in order
    slack_message: SlackMessage | None = None  # the incident's Slack message so far, if any


class NotifyReceipt(BaseModel):
    """What the `notify` activity did: the channels it sent to, and the Slack message it posted."""

    sent: list[str] = []
    failed: list[str] = []  # "<channel>: <why>", for failures no retry would mend
    slack_message: SlackMessage | None = None
