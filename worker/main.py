"""The worker process: IncidentWorkflow plus every activity, on one task queue."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from activities.ansible import AnsibleExecutor
from activities.diagnosis import DiagnosisActivities
from activities.evidence import EvidenceActivities
from activities.notify import NotifyActivities
from worker.settings import Settings
from workflows.incident import IncidentWorkflow

WORKFLOWS: list[type] = [IncidentWorkflow]


def build_activities(settings: Settings) -> Sequence[Callable[..., Any]]:
    evidence = EvidenceActivities(settings)
    ansible = AnsibleExecutor(settings)
    return [
        evidence.gather_evidence,
        evidence.verify,
        DiagnosisActivities().diagnose,
        NotifyActivities(settings).notify,
        ansible.preview,
        ansible.snapshot,
        ansible.apply,
        ansible.rollback,
    ]


def build_worker(client: Client, settings: Settings, pool: ThreadPoolExecutor) -> Worker:
    """Synchronous activities (ansible-runner, Terraform) run on `pool`, which the caller owns."""
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=WORKFLOWS,
        activities=build_activities(settings),
        activity_executor=pool,
        max_concurrent_activities=pool._max_workers,
    )


async def run_worker(client: Client, settings: Settings) -> None:
    with ThreadPoolExecutor(max_workers=16, thread_name_prefix="activity") as pool:
        await build_worker(client, settings, pool).run()
