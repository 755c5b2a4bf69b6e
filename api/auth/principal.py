"""The authenticated caller and what its roles allow.

A `Principal` comes only from a credential (an API key record or a validated OIDC token), never from a
request body or alert text. Routes ask for a `Permission`; roles grant sets of them.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict

from workflows.actions import Risk


class Role(StrEnum):
    VIEWER = "viewer"  # read incidents, operations, schedules and history
    SENDER = "sender"  # post alerts, nothing else
    APPROVER = "approver"  # read and decide incidents (optionally limited to risks and environments)
    OPERATOR = "operator"  # read, and start operations and manage schedules
    ADMIN = "admin"  # everything, including API keys


class Permission(StrEnum):
    READ = "incidents:read"
    SEND = "alerts:send"
    DECIDE = "incidents:decide"
    OPERATE = "operations:write"
    MANAGE_KEYS = "keys:manage"


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.READ}),
    Role.SENDER: frozenset({Permission.SEND}),
    Role.APPROVER: frozenset({Permission.READ, Permission.DECIDE}),
    Role.OPERATOR: frozenset({Permission.READ, Permission.OPERATE}),
    Role.ADMIN: frozenset(Permission),
}

ANY = "*"


class Principal(BaseModel):
    """An authenticated caller. `name` is what incidents record as opener or approver."""

    model_config = ConfigDict(frozen=True)

    name: str
    source: Literal["key", "oidc", "slack", "disabled"]
    roles: frozenset[Role]
    # Environments this principal speaks for (senders) or may decide in (approvers). Empty: only the
    # policy's default environment; ["*"]: any environment the alert names.
    environments: tuple[str, ...] = ()
    # Service globs a sender may speak for and an approver may decide on; ["*"]: any.
    services: tuple[str, ...] = (ANY,)
    # Risk classes an approver may decide; empty: every class.
    risks: tuple[Risk, ...] = ()

    @property
    def permissions(self) -> frozenset[Permission]:
        granted: set[Permission] = set()
        for role in self.roles:
            granted |= GRANTS[role]
        return frozenset(granted)

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions
