"""Helpers of the notification tests: a local webhook receiver, phase changes, a channel's run."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from temporalio.testing import ActivityEnvironment

from activities.notify import NotifyActivities
from tests.llm.fake_openai import start_local
from workflows.notifications import NotifyReceipt, PhaseChange
from workflows.phases import Phase


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]


@dataclass
class Receiver:
    """Records every POST; answers with `statuses` in order (then 204)."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    async def _post(self, request: web.Request) -> web.Response:
        self.received.append(Received(await request.read(), dict(request.headers)))
        return web.Response(status=self.statuses.pop(0) if self.statuses else 204)


@asynccontextmanager
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    app = web.Application()
    app.router.add_post("/hook", found._post)
    runner, url = await start_local(app)
    found.url = f"{url}/hook"
    try:
        yield found
    finally:
        await runner.cleanup()


def change(phase: Phase = Phase.AWAITING_APPROVAL, **fields: Any) -> PhaseChange:
    """A phase change as the workflow sends it; asking for two approvers of a destructive action."""
    asking = phase == Phase.AWAITING_APPROVAL
    defaults: dict[str, Any] = {
        "incident_id": "incident-0123456789abcdef",
        "phase": phase,
        "alert_name": "DiskFull",
        "service": "orders-db",
        "severity": "critical",
        "environment": "prod",
        "message": "awaiting approval" if asking else f"entered {phase.value}",
        "detail": "purge old WAL segments; needs 2 distinct approver(s)" if asking else "",
        "diagnosis": "resource_exhaustion (0.90): /var is 97% full <WAL> & logs",
        "preview": "purge: purge-wal (destructive): would delete 42 files (3.1 GiB)",
        "risk": "destructive" if asking else None,
        "approvers_required": 2 if asking else 0,
    }
    return PhaseChange.model_validate({**defaults, **fields})


async def run_notify(notify: NotifyActivities, phase_change: PhaseChange) -> NotifyReceipt:
    receipt: NotifyReceipt = await ActivityEnvironment().run(notify.notify, phase_change)
    return receipt
