"""Loading the policy (REMEDIATOR_POLICY_FILE): YAML, validated, errors as file:line: field: message.

The file's top-level `access:` section (OIDC groups to roles) belongs to the API, which validates it
(api/auth/access.py); it is set aside here so that `Policy`, which forbids unknown keys, never sees it.

Without a file the built-in defaults apply: dev auto-approves change actions, prod asks a human,
destructive actions always need two distinct approvers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from activities.config import Settings
from worker.yaml_source import load_yaml
from workflows.policy import Policy

DEFAULT_SOURCE = "(built-in defaults)"
ACCESS_SECTION = "access"


@dataclass(frozen=True)
class LoadedPolicy:
    policy: Policy
    source: str
    sha256: str = ""


def load_policy(path: Path) -> LoadedPolicy:
    doc = load_yaml(path)
    try:
        policy = Policy.model_validate({k: v for k, v in doc.data.items() if k != ACCESS_SECTION})
    except ValidationError as err:
        raise doc.error(doc.problems(err)) from None
    return LoadedPolicy(policy=policy, source=str(path), sha256=doc.sha256)


def policy_from_settings(settings: Settings) -> LoadedPolicy:
    if settings.policy_file is None:
        return LoadedPolicy(policy=Policy(), source=DEFAULT_SOURCE)
    return load_policy(settings.policy_file)
