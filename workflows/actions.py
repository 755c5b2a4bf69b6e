"""Executor actions: one pydantic model per kind, joined in the `ActionSpec` union.

Each executor (activities/<kind>.py) implements preview, snapshot, apply and rollback for its
model. The `risk` class is what policy decides on.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

Risk = Literal["read", "change", "destructive"]


class AnsibleAction(BaseModel):
    """Run an Ansible playbook through ansible-runner; preview is --check --diff."""

    executor: Literal["ansible"] = "ansible"
    name: str
    risk: Risk = "change"
    playbook: str
    rollback_playbook: str = ""
    extravars: dict[str, Any] = {}
    limit: str = ""


ActionSpec = Annotated[AnsibleAction, Field(discriminator="executor")]
