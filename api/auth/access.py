"""The policy file's `access:` section: the roles and limits of OIDC groups and of Slack users.

    access:
      groups:
        sre-oncall: {roles: [approver], environments: [prod], risks: [change]}
        platform:   {roles: [admin]}
      slack_users:              # Slack member id -> the principal its button clicks decide as
        U024BE7LH: {principal: alice, roles: [approver], environments: [prod]}

worker/policy_file.py sets this section aside for `Policy`; it is validated here, with the same
`file:line: field: message` errors, when the API starts.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from activities.config import Settings
from api.auth.principal import ANY, Principal, Role
from worker.policy_file import ACCESS_SECTION
from worker.yaml_source import load_yaml
from workflows.actions import Risk
from workflows.spec_errors import error_loc

_CONFIG = ConfigDict(extra="forbid")


class GroupGrant(BaseModel):
    """What members of one group may do; the limits mean what they mean on `Principal`."""

    model_config = _CONFIG
    roles: list[Role] = Field(min_length=1)
    environments: list[str] = []
    services: list[str] = [ANY]
    risks: list[Risk] = []


class SlackUser(GroupGrant):
    """Who a Slack user is here: the principal recorded when they click Approve or Reject in Slack."""

    principal: str = Field(min_length=1, max_length=200)


# Slack user ids (`U024BE7LH`; `W...` on Enterprise Grid), as in a profile's "Copy member ID".
SlackUserId = Annotated[str, Field(pattern=r"^[UW][A-Z0-9]{2,30}$")]


class AccessPolicy(BaseModel):
    model_config = _CONFIG
    groups: dict[str, GroupGrant] = {}
    slack_users: dict[SlackUserId, SlackUser] = {}

    def slack_principal(self, user_id: str) -> Principal | None:
        """The principal a Slack user acts as, or None when the policy does not map them."""
        grant = self.slack_users.get(user_id)
        if grant is None:
            return None
        return Principal(
            name=grant.principal,
            source="slack",
            roles=frozenset(grant.roles),
            environments=tuple(grant.environments),
            services=tuple(grant.services),
            risks=tuple(grant.risks),
        )

    def principal(self, name: str, groups: Iterable[str]) -> Principal | None:
        """The principal of a person in `groups`, or None when none of them is granted a role.

        Several groups add up: their roles, environments and services are united, and the risks are
        every class if any group leaves them open.
        """
        grants = [self.groups[g] for g in groups if g in self.groups]
        if not grants:
            return None
        risks: tuple[Risk, ...] = ()
        if all(g.risks for g in grants):
            risks = tuple(sorted({r for g in grants for r in g.risks}))
        return Principal(
            name=name,
            source="oidc",
            roles=frozenset(r for g in grants for r in g.roles),
            environments=tuple(sorted({e for g in grants for e in g.environments})),
            services=tuple(sorted({s for g in grants for s in g.services})),
            risks=risks,
        )


class AccessError(Exception):
    """The `access:` section is malformed: every problem as `file:line: field: message`."""


def load_access(settings: Settings) -> AccessPolicy:
    if settings.policy_file is None:
        return AccessPolicy()
    doc = load_yaml(settings.policy_file)
    try:
        return AccessPolicy.model_validate(doc.data.get(ACCESS_SECTION) or {})
    except ValidationError as err:
        problems = [doc.problem((ACCESS_SECTION, *error_loc(e)), e["msg"]) for e in err.errors()]
        raise AccessError(str(doc.error(problems))) from None
