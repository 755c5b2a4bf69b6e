"""Two real `remediator worker` processes on one task queue share incidents, and an incident whose
worker is SIGKILLed finishes on the other: what replicas of deploy/kubernetes/worker.yaml promise.

Alerts go in through the API's own `Intake.ingest` (pinned playbooks, signal-with-start); approvals are the
public `approve` signal. Each alert runs the shipped ServiceDown playbook against an endpoint of its own
that is down until the playbook's Ansible restart (run by whichever worker) brings it up.
"""

from __future__ import annotations

import socket
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowHandle, WorkflowQueryFailedError
from temporalio.service import RPCError

from activities.config import Settings
from api.auth.principal import Principal, Role
from api.ingest import Intake, Pinning
from api.schemas import Parsed
from tests.api.support import LIVE_RESTART, LIVE_SERVICE, LiveService, serve_directory, wait_for
from tests.chaos.harness import WorkerProcess
from tests.conftest import binary
from worker.devserver import DevServer
from workflows.alerts import Alert
from workflows.incident_models import IncidentState
from workflows.phases import Phase

pytestmark = [pytest.mark.integration, pytest.mark.ansible, pytest.mark.chaos]

# Who ran a workflow task or an activity is written on these events of the history.
SENDER = Principal(name="failover-test", source="key", roles=frozenset({Role.SENDER}))
STARTED = (EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED, EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED)


@dataclass
class Pair:
    """Two worker processes polling one task queue, and the settings the API side uses for it."""

    settings: Settings
    service: LiveService
    workers: list[WorkerProcess]

    def identity(self, worker: WorkerProcess) -> str:
        # The SDK's default worker identity: the process id at the host name.
        return f"{worker.pid}@{socket.gethostname()}"

    def owner(self, identity: str) -> WorkerProcess:
        return next(w for w in self.workers if self.identity(w) == identity)


@pytest.fixture
def pair(dev_server: DevServer, tmp_path: Path) -> Iterator[Pair]:
    root = tmp_path / "www"
    root.mkdir()
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(
        "all:\n  hosts:\n    localhost:\n"
        f"      ansible_connection: local\n      ansible_python_interpreter: {sys.executable}\n"
        f"      remediator_marker_dir: {tmp_path / 'markers'}\n"
        f"      restart_commands:\n        {LIVE_SERVICE}: '{LIVE_RESTART.format(root=root)}'\n"
    )
    queue = f"failover-{uuid.uuid4().hex[:8]}"
    settings = Settings(task_queue=queue, ansible_inventory=str(inventory), state_dir=tmp_path / "api")
    with serve_directory(root) as url:
        workers = [
            WorkerProcess(
                env={
                    "TEMPORAL_ADDRESS": dev_server.address,
                    "REMEDIATOR_TASK_QUEUE": queue,
                    "REMEDIATOR_STATE_DIR": str(tmp_path / f"worker-{n}"),
                    "REMEDIATOR_ANSIBLE_INVENTORY": str(inventory),
                    "REMEDIATOR_VERIFY_TIMEOUT": "PT30S",
                    "REMEDIATOR_PROBE_ALLOW": "127.0.0.1",
                },
                log=tmp_path / f"worker-{n}.log",
                command=[binary("remediator"), "worker"],
            )
            for n in (1, 2)
        ]
        try:
            for worker in workers:
                worker.start()
            yield Pair(settings, LiveService(url=url, root=root), workers)
        finally:
            for worker in workers:
                worker.stop()


async def pollers(client: Client, queue: str) -> set[str]:
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    return {poller.identity for poller in response.pollers}


async def both_polling(client: Client, pair: Pair) -> None:
    wanted = {pair.identity(w) for w in pair.workers}

    async def polling() -> bool:
        for worker in pair.workers:
            assert not worker.exited(), f"a worker exited at start; see {worker.log}"
        return wanted <= await pollers(client, pair.settings.task_queue)

    await wait_for(polling, timeout=30)


async def fire(client: Client, pair: Pair) -> WorkflowHandle[object, object]:
    token = uuid.uuid4().hex[:8]
    alert = Alert(
        fingerprint=f"failover-{token}",
        labels={"alertname": "ServiceDown", "service": LIVE_SERVICE, "severity": "critical"},
        annotations={"probe_url": pair.service.probe_url(f"failover-{token}")},
    )
    intake = Intake(client, pair.settings, Pinning.load(pair.settings))
    [outcome] = await intake.ingest([Parsed(0, ("body", "alert"), alert=alert)], SENDER)
    assert outcome.outcome == "started" and outcome.incident_id
    return client.get_workflow_handle(outcome.incident_id)


async def phase_of(handle: WorkflowHandle[object, object]) -> Phase | None:
    """None while the query cannot be answered: a killed worker's sticky queue holds it until Temporal
    hands the workflow to another worker."""
    try:
        return (await handle.query("state", result_type=IncidentState)).phase
    except (RPCError, WorkflowQueryFailedError):
        return None


async def reaches(handle: WorkflowHandle[object, object], *phases: Phase, seconds: float = 40) -> Phase:
    async def reached() -> Phase | None:
        phase = await phase_of(handle)
        return phase if phase is not None and phase in phases else None

    result: Phase = await wait_for(reached, timeout=seconds)
    return result


async def identities(
    handle: WorkflowHandle[object, object], after: int = 0, kinds: tuple[EventType.ValueType, ...] = STARTED
) -> list[str]:
    """Who started each workflow task and activity (or only `kinds`), in order, after event `after`."""
    history = await handle.fetch_history()
    return [
        (
            e.workflow_task_started_event_attributes.identity
            or e.activity_task_started_event_attributes.identity
        )
        for e in history.events
        if e.event_type in kinds and e.event_id > after
    ]


async def test_a_killed_workers_incident_finishes_on_the_other(dev_client: Client, pair: Pair) -> None:
    await both_polling(dev_client, pair)
    handle = await fire(dev_client, pair)
    await reaches(handle, Phase.AWAITING_APPROVAL)

    # The incident waits for approval in the cache of the worker that ran its last workflow task.
    workflow_tasks = await identities(handle, kinds=(EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,))
    victim = pair.owner(workflow_tasks[-1])
    survivor = next(w for w in pair.workers if w is not victim)
    killed_at = (await handle.fetch_history()).events[-1].event_id
    victim.kill()  # SIGKILL to its process group: no graceful shutdown, as on a lost node

    await handle.signal("approve", {"approver": "alice", "reason": "failover test"})
    assert (
        await reaches(handle, Phase.RESOLVED, Phase.ROLLED_BACK, Phase.FAILED, seconds=50) == Phase.RESOLVED
    )

    after = await identities(handle, after=killed_at)
    assert after, "nothing ran after the kill"
    assert set(after) == {pair.identity(survivor)}, after
    state = await handle.query("state", result_type=IncidentState)
    assert state.approvals[0].approver == "alice"
    assert not survivor.exited()


async def test_both_workers_take_work(dev_client: Client, pair: Pair) -> None:
    await both_polling(dev_client, pair)
    handles = [await fire(dev_client, pair) for _ in range(6)]
    for handle in handles:
        await reaches(handle, Phase.AWAITING_APPROVAL)
    ran = {identity for handle in handles for identity in await identities(handle)}
    assert ran == {pair.identity(w) for w in pair.workers}
    for handle in handles:
        await handle.signal("reject", {"approver": "bob", "reason": "test over"})
    for handle in handles:
        assert await reaches(handle, Phase.REJECTED) == Phase.REJECTED
