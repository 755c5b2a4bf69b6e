"""Remediator's own settings: environment variables prefixed REMEDIATOR_.

Temporal connection settings are not here on purpose: they come from Temporal's own environment
configuration (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TLS, profiles).
"""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from workflows.models import IncidentConfig

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REMEDIATOR_", extra="ignore")

    task_queue: str = "remediator"
    state_dir: Path = Path(".remediator")

    # API
    max_body_bytes: int = Field(default=1_048_576, gt=0)

    # evidence and verification
    prometheus_url: str = ""
    probe_timeout_seconds: float = Field(default=5.0, gt=0)
    verify_timeout: timedelta = timedelta(minutes=5)

    # approval escalation chain
    notify_after: timedelta = timedelta(minutes=15)
    escalate_after: timedelta = timedelta(hours=1)
    give_up_after: timedelta = timedelta(hours=4)
    auto_approve: bool = False

    # notifications
    notify_url: str = ""

    # Ansible
    ansible_playbook_dir: Path = REPO_ROOT / "playbooks" / "ansible"
    ansible_inventory: str = ""

    def incident_config(self) -> IncidentConfig:
        return IncidentConfig(
            notify_after=self.notify_after,
            escalate_after=self.escalate_after,
            give_up_after=self.give_up_after,
            verify_timeout=self.verify_timeout,
            auto_approve=self.auto_approve,
        )


@lru_cache
def get_settings() -> Settings:
    return Settings()
