"""Every activity's registered name: the one contract between `@activity.defn` and workflow calls.

Activities register under these names and workflows call them by these names, so a misspelt name
is an import error rather than an activity that no worker polls for. The names are in recorded
histories: renaming one needs `workflow.patched` at the call sites (tests/replay keeps old runs).
"""

from __future__ import annotations

from typing import Final, Literal, get_args

# The incident's own steps (activities/evidence.py, diagnosis.py, notify.py).
GATHER_EVIDENCE: Final = "gather_evidence"
VERIFY: Final = "verify"
DIAGNOSE: Final = "diagnose"
NOTIFY: Final = "notify"

# Reads: checks in playbooks, and the investigation's tools.
PROBE_HTTP: Final = "probe.http"
METRICS_QUERY: Final = "metrics.query"
KUBE_PODS: Final = "kube_pods"
KUBE_DEPLOYMENTS: Final = "kube_deployments"
KUBE_EVENTS: Final = "kube_events"
KUBE_LOGS: Final = "kube_logs"  # raw lines: playbooks only, never offered to a model
KUBE_LOG_TEMPLATES: Final = "kube_log_templates"
KUBE_DESCRIBE: Final = "kube_describe"
KUBE_ROLLOUT_HISTORY: Final = "kube_rollout_history"

# The LLM and incident memory (activities/llm.py, memory.py).
LLM_POLICY: Final = "llm.policy"
LLM_CHAT: Final = "llm.chat"
MEMORY_SEARCH: Final = "memory.search"
MEMORY_RECORD_INCIDENT: Final = "memory.record_incident"

# The blast-radius limiter's bookkeeping (activities/limits.py).
LIMITS_ACQUIRE: Final = "limits.acquire"
LIMITS_RELEASE: Final = "limits.release"
LIMITS_USAGE: Final = "limits.usage"

# `remediator playbook test`: canned reads and previews, on a worker of its own (worker/dry_run.py).
DRYRUN_CHECK: Final = "dryrun.check"
DRYRUN_PREVIEW: Final = "dryrun.preview"

# Executors: each implements every operation as `<executor>.<op>` (workflows/actions.py).
Executor = Literal["ansible", "kubernetes", "terraform"]
ExecutorOp = Literal["preview", "snapshot", "apply", "rollback"]
EXECUTORS: tuple[Executor, ...] = get_args(Executor)
EXECUTOR_OPS: tuple[ExecutorOp, ...] = get_args(ExecutorOp)


def executor_op(executor: str, op: ExecutorOp) -> str:
    """`ansible.apply`, `kubernetes.preview` ...: an executor's activity for one operation."""
    return f"{executor}.{op}"


ANSIBLE_PREVIEW: Final = "ansible.preview"
ANSIBLE_SNAPSHOT: Final = "ansible.snapshot"
ANSIBLE_APPLY: Final = "ansible.apply"
ANSIBLE_ROLLBACK: Final = "ansible.rollback"
KUBERNETES_PREVIEW: Final = "kubernetes.preview"
KUBERNETES_SNAPSHOT: Final = "kubernetes.snapshot"
KUBERNETES_APPLY: Final = "kubernetes.apply"
KUBERNETES_ROLLBACK: Final = "kubernetes.rollback"
TERRAFORM_PREVIEW: Final = "terraform.preview"
TERRAFORM_SNAPSHOT: Final = "terraform.snapshot"
TERRAFORM_APPLY: Final = "terraform.apply"
TERRAFORM_ROLLBACK: Final = "terraform.rollback"
