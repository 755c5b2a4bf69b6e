"""What every notification channel (webhook, Slack, email) is to the `notify` activity."""

from __future__ import annotations

from typing import Protocol

from workflows.notifications import NotifyReceipt, PhaseChange
from workflows.phases import TERMINAL_PHASES


class ChannelFailure(Exception):
    """A channel could not deliver. `permanent`: retrying the same message will not help (a 4xx, a
    refused login, an unknown channel); otherwise Temporal retries the activity."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Channel(Protocol):
    name: str

    async def send(self, change: PhaseChange, receipt: NotifyReceipt) -> bool:
        """Deliver `change` (or not: False when this channel has nothing to say about it).

        May set `receipt.slack_message`; raises ChannelFailure when it could not deliver.
        """
        ...


def asking(change: PhaseChange) -> bool:
    """An approval is open: people are asked to decide."""
    return change.approvers_required > 0


def outcome(change: PhaseChange) -> bool:
    return change.phase in TERMINAL_PHASES


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
