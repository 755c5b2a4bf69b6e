"""Chaos harness: SIGKILL a worker in the middle of an executor's apply; the effect must happen once.

The worker runs in a process of its own (`python -m tests.chaos.worker_proc`, i.e. the real
`worker.main.run_worker` configured by REMEDIATOR_* variables and TEMPORAL_ADDRESS) and in its own
session, so killing its process group is what an OOM kill or a lost node does. `ChaosApplyWorkflow`
(tests/chaos/workflow.py) runs `<executor>.apply` with IncidentWorkflow's retry policy and a short
heartbeat timeout; its workflow worker lives in the test process, so only the activity dies.

`run_kill_scenario` does the whole dance:
  1. start worker A, start the workflow;
  2. poll `ready_to_kill(tree)` (`tree` is worker A's process tree, pid -> command line) until the
     executor's effect has happened and it is in the middle of something slow;
  3. SIGKILL worker A's process group and record its process tree (`result.killed`);
  4. wait for every process of that tree to exit (`result.survivors` lists the ones that did not:
     a tool like ansible-playbook or terraform that outlives its worker keeps changing things);
  5. start worker B; Temporal retries the apply there after the heartbeat timeout;
  6. return the workflow's `ActionOutcome`.
The test then asserts its own "exactly one effect" (a counter file, a resource count ...).

Reuse it for another executor like this:

    async def test_terraform_apply_survives_a_killed_worker(dev_server, dev_client, tmp_path):
        counter = tmp_path / "effects"
        result = await run_kill_scenario(
            dev_server,
            dev_client,
            KillScenario(
                request=ActionRequest(incident_id="incident-chaos", step="apply", action=TerraformAction(...)),
                env={"REMEDIATOR_TERRAFORM_WORKDIR": str(tmp_path / "tf")},   # the executor's settings
                ready_to_kill=lambda tree: counter.exists() and any("terraform" in c for c in tree.values()),
            ),
            tmp_path,
        )
        assert result.outcome.ok
        assert len(counter.read_text().splitlines()) == 1
        assert not result.survivors

`process_tree` and `wait_gone` also serve single-process tests (cancelling an activity must stop
its tool). Linux only: processes are read from /proc.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import Worker

from activities import processes
from activities.processes import alive, command_line
from tests.chaos.workflow import ApplyInput, ChaosApplyWorkflow
from worker.devserver import DevServer
from workflows.plans import ActionOutcome, ActionRequest

REPO_ROOT = Path(__file__).resolve().parents[2]
ProcessTree = dict[int, str]


def process_tree(root: int) -> ProcessTree:
    """`root` and all its living descendants, pid -> command line."""
    return {pid: command_line(pid) for pid in processes.process_tree(root)}


def wait_gone(processes: ProcessTree, seconds: float = 15.0) -> ProcessTree:
    """Wait until none of `processes` runs any more; return those still running after `seconds`."""
    deadline = time.monotonic() + seconds
    while (left := {pid: c for pid, c in processes.items() if alive(pid)}) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


@dataclass
class WorkerProcess:
    """The real worker in its own session, with extra environment (REMEDIATOR_*, TEMPORAL_ADDRESS)."""

    env: dict[str, str]
    log: Path
    command: list[str] = field(default_factory=lambda: [sys.executable, "-m", "tests.chaos.worker_proc"])
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.command,
                cwd=REPO_ROOT,
                env={**os.environ, **self.env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("worker not started")
        return self.process.pid

    def tree(self) -> ProcessTree:
        return process_tree(self.pid)

    def exited(self) -> bool:
        return self.process is None or self.process.poll() is not None

    def kill(self) -> ProcessTree:
        """SIGKILL the worker's process group, as the kernel's OOM killer would; return what ran in it."""
        tree = self.tree()
        os.killpg(self.pid, signal.SIGKILL)
        if self.process:
            self.process.wait()
        return tree

    def stop(self) -> None:
        if self.exited() or self.process is None:
            return
        os.killpg(self.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.pid, signal.SIGKILL)
            self.process.wait()


async def wait_until(check: Callable[[], bool], what: str, seconds: float, worker: WorkerProcess) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not check():
        if worker.exited():
            raise AssertionError(f"the worker exited while waiting for {what}; see {worker.log}")
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {seconds}s waiting for {what}; see {worker.log}")
        await asyncio.sleep(0.1)


@dataclass
class KillScenario:
    request: ActionRequest
    env: dict[str, str]  # the executor's REMEDIATOR_* settings for the worker processes
    ready_to_kill: Callable[[ProcessTree], bool]
    heartbeat_timeout: timedelta = timedelta(seconds=3)
    seconds: float = 90.0  # for each wait: the effect, then the workflow's result


@dataclass
class KillResult:
    outcome: ActionOutcome
    killed: ProcessTree
    survivors: ProcessTree


async def run_kill_scenario(
    server: DevServer, client: Client, scenario: KillScenario, logs: Path
) -> KillResult:
    queue = f"chaos-{uuid.uuid4().hex[:8]}"
    env = {**scenario.env, "TEMPORAL_ADDRESS": server.address, "REMEDIATOR_TASK_QUEUE": queue}
    first = WorkerProcess(env, logs / "worker-1.log")
    second = WorkerProcess(env, logs / "worker-2.log")
    first.start()
    try:
        async with Worker(client, task_queue=f"{queue}-workflows", workflows=[ChaosApplyWorkflow]):
            handle = await client.start_workflow(
                ChaosApplyWorkflow.run,
                ApplyInput(
                    request=scenario.request,
                    activity_task_queue=queue,
                    heartbeat_timeout=scenario.heartbeat_timeout,
                ),
                id=f"{queue}-apply",
                task_queue=f"{queue}-workflows",
            )
            await wait_until(
                lambda: scenario.ready_to_kill(first.tree()), "the effect", scenario.seconds, first
            )
            killed = first.kill()
            survivors = await asyncio.to_thread(wait_gone, killed)
            second.start()
            outcome = await asyncio.wait_for(handle.result(), scenario.seconds)
    finally:
        first.stop()
        second.stop()
    return KillResult(outcome=outcome, killed=killed, survivors=survivors)
