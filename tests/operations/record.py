"""Record OperationWorkflow histories for tests/operations/test_replay.py:
`python -m tests.operations.record v1`.

Re-record only for a new workflow version, and keep the old files: they are what running operations
look like, and `workflow.patched` must keep replaying them.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests.conftest import start_time_server
from tests.operations.fakes import Ops, OpsFakes, restart

HISTORIES = Path(__file__).parent / "histories"
# Child ids derive from the operation's id, so a history replays only under the id it was recorded with.
RECORDED_ID = "operation-OpsBatchRestart-recorded"
WORKFLOW_IDS = {"operation": RECORDED_ID, "target": f"{RECORDED_ID}.b:1"}


async def main(version: str) -> None:
    async with await start_time_server() as env:
        # Two targets at once, one retried after a failed first attempt: every path of the parent.
        ops = Ops(env.client, OpsFakes(fail_first={"b:1"}, apply_seconds=0.01))
        async with ops.worker():
            handle = await ops.start(restart(["a:1", "b:1"], attempts=2, concurrency=2), id=RECORDED_ID)
            await handle.result()
            HISTORIES.mkdir(exist_ok=True)
            for kind, workflow_id in WORKFLOW_IDS.items():
                history = await env.client.get_workflow_handle(workflow_id).fetch_history()
                (HISTORIES / f"{version}-{kind}.json").write_text(history.to_json())


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "v1"))
