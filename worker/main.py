"""The worker process: IncidentWorkflow plus every activity, on one task queue."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from activities.ansible.executor import AnsibleExecutor
from activities.config import Settings
from activities.diagnosis import DiagnosisActivities
from activities.evidence import EvidenceActivities
from activities.kubernetes.cluster import KubeCluster
from activities.kubernetes.executor import KubernetesExecutor
from activities.kubernetes.reads import KubernetesReads
from activities.limits import LimitsActivities
from activities.llm import LLMActivities, activity_names
from activities.memory.store import MemoryActivities, MemoryStore, build_store
from activities.metrics import MetricsActivities
from activities.notify import NotifyActivities
from activities.preview_slots import PreviewSlots
from activities.probe import ProbeActivities
from activities.terraform.executor import TerraformExecutor
from worker.plugins import load_plugins, with_plugins
from worker.sandbox import for_converter
from workflows.incident import IncidentWorkflow
from workflows.limiter import RemediationLimiter
from workflows.operation import OperationTargetWorkflow, OperationWorkflow
from workflows.storm import StormWorkflow

WORKFLOWS: list[type] = [
    IncidentWorkflow,
    RemediationLimiter,
    OperationWorkflow,
    OperationTargetWorkflow,
    StormWorkflow,
]


def build_activities(settings: Settings) -> Sequence[Callable[..., Any]]:
    # One cluster connection and one memory store, shared by everything that reads or writes them.
    cluster, store = KubeCluster(settings), build_store(settings)
    evidence = EvidenceActivities(settings, cluster)
    slots = PreviewSlots(settings.worker_preview_runs)  # one bound for Ansible and Terraform previews
    ansible = AnsibleExecutor(settings, slots)
    terraform = TerraformExecutor(settings, slots)
    limits = LimitsActivities()
    return [
        evidence.gather_evidence,
        evidence.verify,
        DiagnosisActivities(store).diagnose,
        NotifyActivities(settings).notify,
        ansible.preview,
        ansible.snapshot,
        ansible.apply,
        ansible.rollback,
        terraform.preview,
        terraform.snapshot,
        terraform.apply,
        terraform.rollback,
        limits.acquire,
        limits.release,
        limits.usage,
        *kubernetes_activities(cluster),
        *investigation_activities(settings, store),
    ]


def kubernetes_activities(cluster: KubeCluster) -> list[Callable[..., Any]]:
    """The executor and the read tools share one cluster connection, built on first use."""
    executor, reads = KubernetesExecutor(cluster), KubernetesReads(cluster)
    return [
        executor.preview,
        executor.snapshot,
        executor.apply,
        executor.rollback,
        reads.pods,
        reads.deployments,
        reads.events,
        reads.logs,
        reads.log_templates,
        reads.describe,
        reads.rollout_history,
    ]


# The Kubernetes reads a model may call; raw logs (kube_logs) never, only their templates.
MODEL_KUBE_TOOLS: list[Callable[..., Any]] = [
    KubernetesReads.pods,
    KubernetesReads.deployments,
    KubernetesReads.events,
    KubernetesReads.log_templates,
    KubernetesReads.describe,
    KubernetesReads.rollout_history,
]


def investigation_activities(
    settings: Settings, store: MemoryStore | None = None
) -> list[Callable[..., Any]]:
    """The LLM turn, incident memory, and the read-only tools the model may call."""
    memory = MemoryActivities(store or build_store(settings))
    metrics = MetricsActivities(settings).query
    probe = ProbeActivities(settings).probe
    # Only tools that can answer are offered to the model; metrics.query stays registered regardless.
    offered: list[Callable[..., Any]] = [
        probe,
        memory.search,
        *([metrics] if settings.prometheus_url else []),
        *(MODEL_KUBE_TOOLS if settings.kube_configured else []),
    ]
    llm = LLMActivities(settings, activity_names(offered))
    return [llm.policy, llm.chat, memory.record_incident, memory.search, probe, metrics]


def activity_pool(settings: Settings) -> ThreadPoolExecutor:
    """The threads the synchronous activities (ansible-runner, Terraform, kubectl) run on: one per slot."""
    return ThreadPoolExecutor(max_workers=settings.worker_activity_slots, thread_name_prefix="activity")


def build_worker(client: Client, settings: Settings, pool: ThreadPoolExecutor) -> Worker:
    """Synchronous activities run on `pool` (from activity_pool), which the caller owns.

    Workflow modules of your own (worker/plugins.py) are registered next to ours; a broken one raises
    PluginError naming it.
    """
    workflows, activities = with_plugins(WORKFLOWS, build_activities(settings), load_plugins(settings))
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=workflows,
        activities=activities,
        activity_executor=pool,
        workflow_runner=for_converter(client.data_converter),
        # As many activities as activity_pool has threads: see Settings.worker_activity_slots.
        max_concurrent_activities=settings.worker_activity_slots,
        max_cached_workflows=settings.worker_cached_workflows,
        graceful_shutdown_timeout=settings.worker_shutdown_grace,
    )


async def run_worker(client: Client, settings: Settings) -> None:
    with activity_pool(settings) as pool:
        await build_worker(client, settings, pool).run()
