"""From an `Authorization` header to a `Principal`, and the API's refusal to run without credentials.

Accepted: `Bearer <api key>`, `Bearer <OIDC JWT>` (when OIDC is configured), and `Basic` with an API
key as the password and any user name (what Alertmanager's `basic_auth` and Grafana's contact points
send). No cookies are read, ever: a browser cannot be tricked into acting for its user (CSRF).
"""

from __future__ import annotations

import base64
import binascii
import logging

from activities.config import Settings
from api.auth.access import AccessPolicy, load_access
from api.auth.keys import KeyStore, KeyStoreError
from api.auth.oidc import InvalidToken, OidcVerifier
from api.auth.principal import ANY, Principal, Role

log = logging.getLogger(__name__)

ANONYMOUS = Principal(
    name="anonymous", source="disabled", roles=frozenset(Role), environments=(ANY,), services=(ANY,)
)
CHALLENGE = 'Bearer realm="remediator", Basic realm="remediator"'
HOW_TO = "send Authorization: Bearer <API key or OIDC token>, or Basic auth with an API key as password"


class AuthConfigError(Exception):
    """Authentication is on but nothing could authenticate anyone, or its configuration is broken."""


class Unauthenticated(Exception):
    """No usable credential: a 401. The message says what was wrong, never echoing the credential."""


class NoRole(Exception):
    """A valid OIDC token whose groups map to no role: a 403."""


def no_credentials_message(settings: Settings) -> str:
    return (
        f"no credentials are configured: the API key file {settings.api_keys_path} holds no active key and "
        "OIDC is off. Create a key with `remediator auth key create --name admin --role admin`, set "
        "REMEDIATOR_OIDC_ISSUER and REMEDIATOR_OIDC_AUDIENCE, or (local experiments only) set "
        "REMEDIATOR_AUTH=disabled"
    )


class Authenticator:
    def __init__(self, settings: Settings) -> None:
        self.disabled = settings.auth == "disabled"
        self.keys = KeyStore(settings.api_keys_path)
        self.access: AccessPolicy = load_access(settings)
        self.oidc = OidcVerifier(settings) if settings.oidc_configured else None
        self._settings = settings

    def check(self) -> None:
        """At every start: refuse to run unprotected unless told to, and then say so loudly."""
        if self.disabled:
            log.warning(
                "REMEDIATOR_AUTH=disabled: every caller is 'anonymous' with every role; anyone who "
                "reaches this port can send alerts, approve remediations and manage keys"
            )
            return
        try:
            has_keys = bool(self.keys.active())
        except KeyStoreError as err:
            raise AuthConfigError(str(err)) from None
        if not has_keys and self.oidc is None:
            raise AuthConfigError(no_credentials_message(self._settings))

    async def principal(self, authorization: str | None) -> Principal:
        if self.disabled:
            return ANONYMOUS
        if not authorization:
            raise Unauthenticated(f"no credential: {HOW_TO}")
        scheme, _, value = authorization.strip().partition(" ")
        value = value.strip()
        match scheme.lower():
            case "bearer" if value:
                return await self._bearer(value)
            case "basic" if value:
                return self._key(_basic_password(value), "Basic auth password")
        raise Unauthenticated(f"unsupported Authorization header: {HOW_TO}")

    async def _bearer(self, token: str) -> Principal:
        if self.oidc is None or token.startswith("rmd_"):
            return self._key(token, "bearer token")
        try:
            identity = await self.oidc.identify(token)
        except InvalidToken as err:
            raise Unauthenticated(f"invalid OIDC token: {err}") from None
        principal = self.access.principal(identity.name, identity.groups)
        if principal is None:
            groups = ", ".join(identity.groups) or "none"
            raise NoRole(
                f"{identity.name!r} is authenticated but none of its groups ({groups}) is granted a role "
                "in the policy file's access.groups"
            )
        return principal

    def _key(self, key: str, what: str) -> Principal:
        record = self.keys.verify(key)
        if record is None:
            raise Unauthenticated(f"the {what} is not an active API key (unknown, revoked or mistyped)")
        return record.principal()


def _basic_password(value: str) -> str:
    try:
        decoded = base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthenticated("malformed Basic credentials: expected base64 of user:password") from None
    _, sep, password = decoded.partition(":")
    if not sep or not password:
        raise Unauthenticated("Basic credentials carry no password: put the API key there")
    return password


class Forbidden(Exception):
    """Authenticated, but no role of the caller grants the permission the route needs: a 403."""

    def __init__(self, principal: Principal, permission: str) -> None:
        self.permission = permission
        roles = "+".join(sorted(principal.roles)) or "principal"
        super().__init__(f"{roles} {principal.name!r} lacks permission {permission}")
