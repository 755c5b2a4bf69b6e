"""OIDC: tokens signed by a key the test generates, its JWKS and discovery document served locally."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from activities.config import Settings, SettingsError, load_settings
from api.app import create_app
from tests.api.support import serve
from worker.devserver import free_port

AUDIENCE = "remediator"
KID = "test-key-1"
POLICY = """\
access:
  groups:
    sre-oncall: {roles: [approver], environments: [prod], risks: [change]}
    platform:   {roles: [admin]}
"""


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@contextlib.contextmanager
def issuer(public_key: rsa.RSAPublicKey) -> Iterator[str]:
    """Discovery document and JWKS on 127.0.0.1, as an identity provider serves them."""
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(public_key))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    documents = {
        "/.well-known/openid-configuration": {"issuer": base, "jwks_uri": f"{base}/jwks"},
        "/jwks": {"keys": [{**jwk, "kid": KID, "use": "sig", "alg": "RS256"}]},
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            document = documents.get(self.path)
            body = json.dumps(document).encode()
            self.send_response(200 if document else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def issuer_url(signing_key: rsa.RSAPrivateKey) -> Iterator[str]:
    with issuer(signing_key.public_key()) as url:
        yield url


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("oidc") / "policy.yaml"
    path.write_text(POLICY)
    return path


@pytest.fixture(scope="module")
async def oidc_api(
    issuer_url: str, policy: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """OIDC only: no key file at all, and the JWKS found through the issuer's discovery document."""
    settings = Settings(
        state_dir=tmp_path_factory.mktemp("oidc-state"),
        policy_file=policy,
        oidc_issuer=issuer_url,
        oidc_audience=AUDIENCE,
    )
    async with serve(create_app(settings, f"127.0.0.1:{free_port()}")) as url:
        yield url


@pytest.fixture
async def oidc(oidc_api: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=oidc_api, timeout=30) as client:
        yield client


def token(key: Any, issuer_url: str, kid: str = KID, **overrides: Any) -> str:
    """An RS256 token; an override of None leaves that claim out."""
    claims = {
        "iss": issuer_url,
        "aud": AUDIENCE,
        "sub": "alice@example.com",
        "groups": ["sre-oncall"],
        "exp": int(time.time()) + 300,
        **overrides,
    }
    present = {name: value for name, value in claims.items() if value is not None}
    return jwt.encode(present, key, algorithm="RS256", headers={"kid": kid})


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


async def test_groups_map_to_roles_and_limits(
    oidc: httpx.AsyncClient, signing_key: rsa.RSAPrivateKey, issuer_url: str
) -> None:
    approver = bearer(token(signing_key, issuer_url))
    assert (await oidc.get("/incidents?limit=0", headers=approver)).status_code == 422  # may read
    refused = await oidc.post("/alerts", json={}, headers=approver)
    assert refused.status_code == 403
    assert refused.json()["message"] == "approver 'alice@example.com' lacks permission alerts:send"

    admin = bearer(token(signing_key, issuer_url, sub="bob", groups=["platform", "unmapped"]))
    assert (await oidc.get("/auth/keys", headers=admin)).status_code == 200


async def test_a_token_whose_groups_map_to_no_role_is_403(
    oidc: httpx.AsyncClient, signing_key: rsa.RSAPrivateKey, issuer_url: str
) -> None:
    for groups in (["interns"], []):
        response = await oidc.get(
            "/incidents", headers=bearer(token(signing_key, issuer_url, sub="eve", groups=groups))
        )
        assert response.status_code == 403, response.text
        assert "'eve' is authenticated but none of its groups" in response.json()["message"]


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"iss": "http://127.0.0.1:1"}, "Invalid issuer"),
        ({"aud": "another-app"}, "Audience doesn't match"),
        ({"exp": int(time.time()) - 600}, "Signature has expired"),
        ({"exp": None}, 'Token is missing the "exp" claim'),
        ({"kid": "unknown-kid"}, "Unable to find a signing key"),
    ],
)
async def test_bad_tokens_are_401(
    oidc: httpx.AsyncClient,
    signing_key: rsa.RSAPrivateKey,
    issuer_url: str,
    overrides: dict[str, Any],
    reason: str,
) -> None:
    raw = token(signing_key, issuer_url, **overrides)
    response = await oidc.get("/incidents", headers=bearer(raw))
    assert response.status_code == 401, response.text
    assert response.json()["message"].startswith("invalid OIDC token")
    assert reason in response.json()["message"]


async def test_a_token_signed_by_another_key_is_401(oidc: httpx.AsyncClient, issuer_url: str) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    response = await oidc.get("/incidents", headers=bearer(token(other, issuer_url)))
    assert response.status_code == 401 and "Signature verification failed" in response.json()["message"]


async def test_unsigned_and_symmetric_tokens_are_401(
    oidc: httpx.AsyncClient, signing_key: rsa.RSAPrivateKey, issuer_url: str
) -> None:
    claims = {"iss": issuer_url, "aud": AUDIENCE, "sub": "mallory", "groups": ["platform"]}
    claims["exp"] = int(time.time()) + 300
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": KID})
    assert (await oidc.get("/auth/keys", headers=bearer(unsigned))).status_code == 401
    # HS256 keyed with the issuer's public key, the classic algorithm-confusion forgery.
    public_pem = signing_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    forged = _hs256(claims, public_pem)
    assert (await oidc.get("/auth/keys", headers=bearer(forged))).status_code == 401


def _hs256(claims: dict[str, Any], secret: bytes) -> str:
    """By hand: PyJWT itself refuses to use a PEM public key as an HMAC secret."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = {"alg": "HS256", "typ": "JWT", "kid": KID}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


async def test_api_keys_still_work_beside_oidc(oidc: httpx.AsyncClient) -> None:
    response = await oidc.get("/incidents", headers=bearer("rmd_000000000000_unknown"))
    assert response.status_code == 401
    assert "not an active API key" in response.json()["message"]


async def test_an_explicit_jwks_url_and_an_unreachable_one(
    signing_key: rsa.RSAPrivateKey, issuer_url: str, policy: Path, tmp_path: Path
) -> None:
    for jwks_url, expected in ((f"{issuer_url}/jwks", 422), (f"http://127.0.0.1:{free_port()}/jwks", 503)):
        settings = Settings(
            state_dir=tmp_path,
            policy_file=policy,
            oidc_issuer=issuer_url,
            oidc_audience=AUDIENCE,
            oidc_jwks_url=jwks_url,
        )
        async with (
            serve(create_app(settings, f"127.0.0.1:{free_port()}")) as url,
            httpx.AsyncClient(base_url=url, timeout=30) as http,
        ):
            response = await http.get("/incidents?limit=0", headers=bearer(token(signing_key, issuer_url)))
        assert response.status_code == expected, response.text
        if expected == 503:
            assert "cannot fetch the OIDC JWKS" in response.json()["message"]
            assert response.headers["Retry-After"]


def test_oidc_needs_issuer_and_audience() -> None:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("REMEDIATOR_OIDC_JWKS_URL", "http://127.0.0.1:1/jwks")
        with pytest.raises(SettingsError, match="OIDC needs both REMEDIATOR_OIDC_ISSUER and"):
            load_settings()
