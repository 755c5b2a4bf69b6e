"""The error types activities and workflows fail with, each with what Temporal does about it.

An error type is the `type` of the ApplicationError a failed call carries: it is what the timeline
shows, what a playbook's `retry.non_retryable_error_types` names, and what the workflows branch on
(`TARGET_REFUSALS`). Whether it is retried belongs to the type, not to each place that raises it:
activities raise `PermanentError` (fails at once) or `TemporaryError` (retried under the step's
retry policy) from activities/errors.py, and tests/executors/test_errors.py checks every raise site
against `retry` below. playbooks/README.md lists them; a test keeps that table equal to this enum.

The values are recorded in workflow histories and journals: never rename one.
"""

from __future__ import annotations

from enum import StrEnum


class Retry(StrEnum):
    """Whether Temporal retries a call that failed with the type (the README's `retried` column)."""

    NO = "no"  # PermanentError: the call fails at once and the step fails with the reason
    YES = "yes"  # TemporaryError: Temporal retries under the step's retry policy
    DEPENDS = "depends"  # the raise site knows whether a retry can help; the meaning says when


_N, _Y, _D = Retry.NO, Retry.YES, Retry.DEPENDS


class ErrorType(StrEnum):
    """`ErrorType.STALE_PLAN == "StalePlan"`, with `.retry` and `.meaning` for people and the README."""

    retry: Retry
    meaning: str

    def __new__(cls, value: str, retry: Retry, meaning: str) -> ErrorType:
        member = str.__new__(cls, value)
        member._value_ = value
        member.retry = retry
        member.meaning = meaning
        return member

    # --- refused targets: no retry and no approval can make them safe (TARGET_REFUSALS) ---
    UNSAFE_INPUT = "UnsafeInput", _N, "alert text unsafe to pass to Ansible, or a host outside the inventory"
    NO_INVENTORY = "NoInventory", _N, "no Ansible inventory is configured, so no host may be targeted"
    NAMESPACE_NOT_ALLOWED = "NamespaceNotAllowed", _N, "a namespace or node the allow-list does not name"
    CLUSTER_SCOPED = "ClusterScoped", _N, "a cluster-scoped kind, which the namespace allow-list cannot bound"

    # --- configuration and bad actions: the same call fails the same way ---
    WRONG_EXECUTOR = "WrongExecutor", _N, "an action sent to an executor that does not run it"
    BAD_ACTION = "BadAction", _N, "an action the Kubernetes executor does not run"
    BAD_ARGUMENTS = "BadArguments", _N, "arguments the operation does not take"
    BAD_PLAYBOOK = "BadPlaybook", _N, "an Ansible playbook not found, or one ansible-playbook cannot parse"
    NO_HOSTS = "NoHosts", _N, "the Ansible run matched no host"
    BAD_MODULE = "BadModule", _N, "a Terraform module not found, outside the modules directory, or invalid"
    TERRAFORM_MISSING = "TerraformMissing", _N, "REMEDIATOR_TERRAFORM_BIN is not an executable"
    KUBE_CONFIG = "KubeConfig", _N, "the Kubernetes configuration cannot be loaded"
    UNKNOWN_KIND = "UnknownKind", _N, "the cluster does not serve the manifest's kind"
    NO_SUCH_REVISION = "NoSuchRevision", _N, "a Deployment has no revision to roll back to"
    PROMETHEUS_NOT_CONFIGURED = "PrometheusNotConfigured", _N, "a read needs REMEDIATOR_PROMETHEUS_URL"
    LLM_NOT_CONFIGURED = "LLMNotConfigured", _N, "no model is configured"
    LIMITER_REFUSED = "LimiterRefused", _N, "the blast-radius limiter refused the request as invalid"

    # --- Terraform's preview -> approve -> apply contract ---
    NOT_PREVIEWED = "NotPreviewed", _N, "apply without a recorded preview: preview and approve first"
    APPLIED = "Applied", _N, "a preview of a step already applied: it would replace the plan"
    CONFIGURATION_CHANGED = "ConfigurationChanged", _N, "the module or variables changed since the preview"
    PLAN_CHANGED = "PlanChanged", _N, "the plan file is not the one previewed"
    STALE_PLAN = "StalePlan", _N, "the state changed since the preview: preview and approve again"
    NO_PREVIOUS_VARIABLES = "NoPreviousVariables", _N, "rollback `previous` lacks the last variables"
    INTERRUPTED = "Interrupted", _N, "an earlier run died mid-change, or its files are gone"
    STOP_TIMEOUT = "StopTimeout", _N, "terraform did not stop after SIGINT"
    STATE_LOCKED = "StateLocked", _Y, "another run holds the state lock; it finishes and the retry goes ahead"
    WORKER_SHUTDOWN = "WorkerShutdown", _Y, "the worker stopped; terraform runs on and the retry re-attaches"
    TERRAFORM_FAILED = (
        "TerraformFailed",
        _D,
        "terraform failed: retried when nothing was changed yet (plan, show, an apply or rollback that "
        "failed before its first change); not after init, nor once changes started",
    )

    # --- Check-mode runs (Ansible and Terraform previews) ---
    PREVIEW_BUSY = (
        "PreviewBusy",
        _Y,
        "no preview slot came free before the activity timeout (a burst of previews)",
    )

    # --- Ansible runs ---
    ANSIBLE_TIMEOUT = "AnsibleTimeout", _Y, "ansible-playbook was stopped before the activity timeout"
    ANSIBLE_TASK_FAILED = "AnsibleTaskFailed", _Y, "a task failed on a host"
    ANSIBLE_UNREACHABLE = "AnsibleUnreachable", _Y, "a host could not be reached"
    ANSIBLE_ERROR = (
        "AnsibleError",
        _D,
        "ansible-playbook failed: retried when some host ran, not when it failed before any host did",
    )

    # --- Kubernetes API answers ---
    KUBERNETES_BAD_REQUEST = "KubernetesBadRequest", _N, "HTTP 400"
    KUBERNETES_UNAUTHORIZED = "KubernetesUnauthorized", _N, "HTTP 401"
    KUBERNETES_FORBIDDEN = "KubernetesForbidden", _N, "HTTP 403: RBAC does not allow it"
    KUBERNETES_NOT_FOUND = "KubernetesNotFound", _N, "HTTP 404"
    KUBERNETES_METHOD_NOT_ALLOWED = "KubernetesMethodNotAllowed", _N, "HTTP 405"
    KUBERNETES_INVALID = "KubernetesInvalid", _N, "HTTP 422: the object is invalid"
    KUBERNETES_ALREADY_EXISTS = "KubernetesAlreadyExists", _N, "HTTP 409 AlreadyExists"
    KUBERNETES_APPLY_CONFLICT = "KubernetesApplyConflict", _N, "HTTP 409: another manager owns the field"
    KUBECTL_FAILED = "KubectlFailed", _N, "kubectl failed without an HTTP status to go by"
    KUBERNETES_CONFLICT = "KubernetesConflict", _Y, "HTTP 409: the object moved on; the retry reads it again"
    KUBERNETES_THROTTLED = "KubernetesThrottled", _Y, "HTTP 429"
    KUBERNETES_SERVER_ERROR = "KubernetesServerError", _Y, "HTTP 5xx, or any other status"
    KUBERNETES_UNAVAILABLE = "KubernetesUnavailable", _Y, "the API server did not answer"
    KUBERNETES_TIMEOUT = "KubernetesTimeout", _Y, "kubectl gave up waiting (drain, rollout status)"

    # --- the model ---
    LLM_UNAVAILABLE = "LLMUnavailable", _Y, "no connection, a timeout, HTTP 5xx or 409"
    LLM_RATE_LIMITED = "LLMRateLimited", _Y, "HTTP 429: retried after the server's Retry-After (at most 5m)"
    LLM_BAD_RESPONSE = "LLMBadResponse", _Y, "the model answered with no choices"
    LLM_QUOTA_EXHAUSTED = "LLMQuotaExhausted", _N, "the account's quota is used up"
    LLM_UNAUTHORIZED = "LLMUnauthorized", _N, "the API key is refused"
    LLM_REFUSED = "LLMRefused", _N, "the model or its content filter refused"
    LLM_BAD_REQUEST = "LLMBadRequest", _N, "HTTP 400, 404 (unknown model), 422 or anything unexpected"

    # --- verification, notification, operations ---
    UNHEALTHY = (
        "Unhealthy",
        _D,
        "a verification found the target unhealthy: retried (the retry policy is the polling loop), "
        "except when the probe refused the URL",
    )
    NOTIFICATION_FAILED = "NotificationFailed", _Y, "a channel failed in a way a retry may mend"
    TARGET_FAILED = "TargetFailed", _Y, "an operation's run on one target failed; the operation retries it"
