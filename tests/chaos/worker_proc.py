"""The real worker (`worker.main.run_worker`) in a process of its own, for the chaos harness.

Settings come from REMEDIATOR_* variables and the Temporal address from TEMPORAL_ADDRESS, exactly as
in production, so what the harness kills is the worker users run.
"""

from __future__ import annotations

import asyncio

from activities.config import Settings
from worker.client import connect
from worker.main import run_worker


async def main() -> None:
    await run_worker(await connect(), Settings())


if __name__ == "__main__":
    asyncio.run(main())
