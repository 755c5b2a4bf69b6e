"""POST /slack/interactions without Temporal: what is refused before any decision could be made."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from slack_sdk.signature import SignatureVerifier

from activities.config import Settings
from activities.slack import APPROVE_ACTION
from api.app import create_app
from api.routes_slack import SignatureRefused, verify_signature
from tests.api.support import serve
from tests.credentials import ApiKeys
from tests.notify.fake_slack import FakeSlack, fake_slack
from tests.notify.support import receiver
from worker.devserver import free_port

SECRET = "endpoint-test-signing-secret"
POLICY = "access:\n  slack_users:\n    UALICE001: {principal: alice, roles: [approver]}\n"


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with fake_slack(SECRET, "xoxb-endpoint") as fake:
        yield fake


@pytest.fixture
async def endpoint(slack: FakeSlack, api_keys: ApiKeys, tmp_path: Path) -> AsyncIterator[str]:
    (tmp_path / "policy.yaml").write_text(POLICY)
    settings = Settings(
        api_keys_file=api_keys.path,
        policy_file=tmp_path / "policy.yaml",
        slack_bot_token="xoxb-endpoint",
        slack_signing_secret=SECRET,
        slack_channel="C0REMEDY",
        slack_api_url=slack.api_url,
    )
    async with serve(create_app(settings, f"127.0.0.1:{free_port()}")) as url:
        yield f"{url}/slack/interactions"


async def test_without_slack_configured_the_endpoint_is_404(api_keys: ApiKeys) -> None:
    app = create_app(Settings(api_keys_file=api_keys.path), f"127.0.0.1:{free_port()}")
    async with serve(app) as url, httpx.AsyncClient() as http:
        answer = await http.post(f"{url}/slack/interactions", data={"payload": "{}"})
    assert answer.status_code == 404
    assert answer.json()["message"] == "Slack is not configured (REMEDIATOR_SLACK_SIGNING_SECRET is not set)"


async def test_an_api_key_is_no_substitute_for_slacks_signature(endpoint: str, api_keys: ApiKeys) -> None:
    async with httpx.AsyncClient() as http:
        answer = await http.post(endpoint, data={"payload": "{}"}, headers=api_keys.headers("admin"))
    assert answer.status_code == 401
    assert answer.json() == {
        "error": "unauthenticated",
        "message": "missing X-Slack-Request-Timestamp or X-Slack-Signature: not a request from Slack",
    }


async def test_a_tampered_body_is_refused(endpoint: str, slack: FakeSlack) -> None:
    payload = slack.interaction("UALICE001", APPROVE_ACTION, "incident-0123456789abcdef")
    sent_at = str(int(time.time()))
    good = await slack.click(endpoint, payload, timestamp=int(sent_at))
    # Past every check; Temporal is unreachable here, which the clicker is told.
    assert good.status_code == 200 and "could not reach Temporal" in good.json()["text"]
    signature = SignatureVerifier(SECRET).generate_signature(timestamp=sent_at, body="payload=%7B%7D")
    tampered = await slack.click(endpoint, payload, timestamp=int(sent_at), signature=signature)
    assert tampered.status_code == 401 and "does not match" in tampered.json()["message"]


def test_the_signature_check_itself() -> None:
    body, now = b"payload=%7B%7D", time.time()
    ts = str(int(now))
    signature = SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body) or ""
    verify_signature(SECRET, ts, signature, body, now)  # Slack's own signature passes
    verify_signature(SECRET, ts, signature, body, now + 299)  # inside the window
    for args, why in [
        ((SECRET, ts, signature, body, now + 301), "more than 300s"),
        ((SECRET, ts, signature, body, now - 301), "more than 300s"),
        ((SECRET, "soon", signature, body, now), "not a Unix time"),
        ((SECRET, ts, signature.upper(), body, now), "does not match"),
        ((SECRET, ts, "v1=" + signature[3:], body, now), "does not match"),
        ((SECRET, ts, signature, body + b" ", now), "does not match"),
        (("another-secret", ts, signature, body, now), "does not match"),
        ((SECRET, None, signature, body, now), "missing"),
        ((SECRET, ts, "", body, now), "missing"),
    ]:
        with pytest.raises(SignatureRefused, match=why):
            verify_signature(*args)


async def test_only_slacks_hooks_get_the_answer(endpoint: str, slack: FakeSlack) -> None:
    """A response_url elsewhere (not hooks.slack.com, nor the configured Slack API's host) is not called."""
    async with receiver() as elsewhere:
        for user, value, why in [
            ("UNOBODY01", "incident-0123456789abcdef", "is not mapped to a Remediator principal"),
            ("UALICE001", "not an id", "The button names no incident ('not an id')"),
        ]:
            payload = slack.interaction(user, APPROVE_ACTION, value)
            payload["response_url"] = elsewhere.url
            answer = await slack.click(endpoint, payload)
            assert answer.status_code == 200 and answer.json()["response_type"] == "ephemeral"
            assert why in answer.json()["text"]
        assert elsewhere.received == []
    # The configured Slack API's host does get it (as hooks.slack.com would).
    await slack.click(endpoint, slack.interaction("UNOBODY01", APPROVE_ACTION, "incident-0123456789abcdef"))
    assert "is not mapped" in slack.responses[-1]["text"]


async def test_other_interactions_are_acknowledged_and_ignored(endpoint: str, slack: FakeSlack) -> None:
    for payload in [
        {"type": "view_submission", "user": {"id": "UALICE001"}},
        slack.interaction("UALICE001", "someone.elses.button", "incident-0123456789abcdef"),
    ]:
        answer = await slack.click(endpoint, payload)
        assert (answer.status_code, answer.json()) == (200, {})
    async with httpx.AsyncClient() as http:
        sent_at = str(int(time.time()))
        body = "not=a&payload"
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": sent_at,
            "X-Slack-Signature": SignatureVerifier(SECRET).generate_signature(timestamp=sent_at, body=body)
            or "",
        }
        malformed = await http.post(endpoint, content=body, headers=headers)
    assert (
        malformed.status_code == 400
        and "expected Slack's form field `payload`" in malformed.json()["message"]
    )
