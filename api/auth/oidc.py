"""OIDC for people: a JWT from the issuer, checked against its JWKS, becomes a name and groups.

The JWKS URL is REMEDIATOR_OIDC_JWKS_URL, or the `jwks_uri` of the issuer's discovery document.
Signatures are asymmetric only (RS*/ES*): `none` and HS* are never accepted, so a token cannot be
signed with a public key used as an HMAC secret. Issuer, audience and expiry are always checked.
PyJWKClient fetches with blocking urllib, so every verification runs on a worker thread.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from starlette.concurrency import run_in_threadpool

from activities.config import Settings

ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512"]
DISCOVERY_PATH = "/.well-known/openid-configuration"
FETCH_TIMEOUT_SECONDS = 10.0
# Keys are cached this long; an unknown `kid` refetches at once (PyJWKClient), so rotation works.
JWKS_LIFESPAN_SECONDS = 300


class InvalidToken(Exception):
    """The token is not one we accept; the message says why, without echoing the token."""


class IssuerUnavailable(Exception):
    """The issuer's discovery document or JWKS could not be fetched: retry later."""


@dataclass(frozen=True)
class Identity:
    name: str
    groups: tuple[str, ...]


class OidcVerifier:
    def __init__(self, settings: Settings) -> None:
        self.issuer = settings.oidc_issuer
        self.audience = settings.oidc_audience
        self.principal_claim = settings.oidc_principal_claim
        self.groups_claim = settings.oidc_groups_claim
        self._jwks_url = settings.oidc_jwks_url
        self._client: jwt.PyJWKClient | None = None
        self._discovering = asyncio.Lock()

    async def _jwks(self) -> jwt.PyJWKClient:
        async with self._discovering:
            if self._client is None:
                url = self._jwks_url or await self._discover()
                self._client = jwt.PyJWKClient(
                    url, cache_keys=True, lifespan=JWKS_LIFESPAN_SECONDS, timeout=FETCH_TIMEOUT_SECONDS
                )
            return self._client

    async def _discover(self) -> str:
        url = self.issuer.rstrip("/") + DISCOVERY_PATH
        try:
            async with httpx.AsyncClient(timeout=FETCH_TIMEOUT_SECONDS) as http:
                response = await http.get(url)
                response.raise_for_status()
                jwks_uri = response.json().get("jwks_uri")
        except (httpx.HTTPError, ValueError, AttributeError) as err:
            raise IssuerUnavailable(f"OIDC discovery at {url} failed: {err}") from None
        if not isinstance(jwks_uri, str) or not jwks_uri:
            raise IssuerUnavailable(f"OIDC discovery at {url} names no jwks_uri")
        return jwks_uri

    async def identify(self, token: str) -> Identity:
        client = await self._jwks()
        claims = await run_in_threadpool(self._decode, client, token)
        name = claims.get(self.principal_claim)
        if not isinstance(name, str) or not name:
            raise InvalidToken(
                f"token has no {self.principal_claim!r} claim (REMEDIATOR_OIDC_PRINCIPAL_CLAIM)"
            )
        groups = claims.get(self.groups_claim, [])
        if isinstance(groups, str):
            groups = [groups]
        if not isinstance(groups, list):
            raise InvalidToken(f"token claim {self.groups_claim!r} is not a list of groups")
        return Identity(name=name, groups=tuple(g for g in groups if isinstance(g, str)))

    def _decode(self, client: jwt.PyJWKClient, token: str) -> dict[str, Any]:
        try:
            key = client.get_signing_key_from_jwt(token)
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWKClientConnectionError as err:
            raise IssuerUnavailable(f"cannot fetch the OIDC JWKS: {err}") from None
        except (jwt.PyJWKClientError, jwt.PyJWKError) as err:
            raise InvalidToken(f"token signing key not accepted: {err}") from None
        except jwt.InvalidTokenError as err:
            raise InvalidToken(f"token refused: {err}") from None
        return claims
