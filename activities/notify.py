"""Notifications: a JSON webhook on every phase change and escalation."""

from __future__ import annotations

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from worker.settings import Settings
from workflows.activity_names import NOTIFY
from workflows.models import PhaseChange


class NotifyActivities:
    def __init__(self, settings: Settings) -> None:
        self._url = settings.notify_url
        self._http = httpx.AsyncClient(timeout=10.0)

    @activity.defn(name=NOTIFY)
    async def notify(self, change: PhaseChange) -> str:
        if not self._url:
            return "not sent: REMEDIATOR_NOTIFY_URL is not set"
        try:
            response = await self._http.post(self._url, json=change.model_dump(mode="json"))
        except httpx.HTTPError as err:
            raise ApplicationError(f"webhook {self._url} unreachable: {err}") from err
        if response.is_server_error:
            raise ApplicationError(f"webhook {self._url} answered {response.status_code}")
        if not response.is_success:
            # 4xx will not get better by retrying the same body.
            raise ApplicationError(f"webhook answered {response.status_code}", non_retryable=True)
        return f"sent to {self._url}"
