"""An incident that holds its blast-radius lease on a worker that stops, run alone:

    python -m tests.workflows.stopped_worker

Prints one JSON line: what Python reported while it collected the stopped worker's runs
(`collected`, from sys.unraisablehook) and the activities the incident scheduled (`scheduled`).

The SDK does not evict the runs a worker still holds when it stops: Python closes their coroutines
when it collects them, in whatever workflow runs then (sdk-python#494), and an `await` in a
`finally` would then fail or reach that other workflow. A process of its own, because under pytest
that collection happens at no moment a test can wait for, so the test would pass either way.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
from typing import Any

from tests.workflows.fakes import Fakes, wait_event
from tests.workflows.test_limits import HEALTHY, HOLD, Limited
from workflows.policy import Policy


async def main() -> dict[str, Any]:
    # Imported only now: with tests.conftest imported before the workflow modules, Python frees the
    # stopped worker's runs at another moment, and this script (tried) reports nothing either way.
    from tests.conftest import start_time_server

    collected: list[Any] = []
    sys.unraisablehook = collected.append
    env = await start_time_server()
    try:
        run = Limited(env)
        async with run.worker(Fakes(reads=HEALTHY)):
            handle = await run.start(HOLD, Policy(limits={"concurrent_remediations": 3}))
            await wait_event(handle, "awaiting approval")
        history = await handle.fetch_history()
        await handle.terminate("test over")
        await asyncio.sleep(1)  # the worker lets go of its runs a little after it stops
        gc.collect()
        scheduled = [
            e.activity_task_scheduled_event_attributes.activity_type.name
            for e in history.events
            if e.HasField("activity_task_scheduled_event_attributes")
        ]
        reported = [f"{u.exc_type.__name__}: {u.exc_value} in {u.object!r}" for u in collected]
        return {"collected": reported, "scheduled": scheduled}
    finally:
        await env.shutdown()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())), flush=True)
    # Skips interpreter shutdown, where the SDK's bridge threads of a worker stopped this way abort
    # the process ("PyGILState_Release"), after the report is out.
    os._exit(0)
