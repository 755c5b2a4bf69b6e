"""Approving in Slack, end to end: the real API, worker and Temporal dev server, a local fake Slack.

An alert whose playbook runs a destructive Ansible action (so two distinct people must approve)
reaches AwaitingApproval; the worker posts the Block Kit message with its buttons; clicks come back
signed by Slack's own code. Refused: a bad or missing signature, a stale timestamp (401), and, with
an ephemeral answer and nothing decided, an unmapped Slack user, one without the approver role, one
outside its limits, and the incident's own opener. Two mapped approvers then approve, the playbook
runs, and the message is updated with the outcome and who decided.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from activities.config import Settings
from activities.slack import APPROVE_ACTION, REJECT_ACTION
from api.app import create_app
from tests.api.support import serve, wait_for
from tests.credentials import ApiKeys, ByRoute
from tests.notify.fake_slack import Call, FakeSlack, fake_slack
from tests.notify.support import Receiver, receiver
from worker.devserver import DevServer
from worker.main import activity_pool, build_worker

pytestmark = [pytest.mark.integration, pytest.mark.ansible]

TOKEN = "xoxb-flow-token"
SECRET = "e2e-slack-signing-secret-0123456789"
PLAYBOOK = """\
name: SlackDrill
description: Restart a service the hard way; destructive, so two people approve.
match:
  matchers: ['alertname="SlackDrill"']
params:
  service:
    label: service
    pattern: '[a-z0-9-]+'
steps:
  - id: hard_restart
    kind: action
    action:
      executor: ansible
      name: hard-restart
      risk: destructive
      playbook: restart_service.yml
      extravars: {service: "${params.service}", incident_id: "${incident.id}"}
"""
# `sender` is the API key that sends the test's alerts, so it opened the incident.
POLICY = """\
default_environment: prod
access:
  slack_users:
    UALICE001: {principal: alice, roles: [approver]}
    UBOB00001: {principal: bob, roles: [approver], environments: [prod], risks: [destructive]}
    UCAROL001: {principal: carol, roles: [approver], environments: [staging]}
    UVERA0001: {principal: vera, roles: [viewer]}
    USENDER01: {principal: sender, roles: [approver]}
"""


@dataclass
class Flow:
    slack: FakeSlack
    hook: Receiver
    api: httpx.AsyncClient
    endpoint: str


@pytest.fixture(scope="module")
async def flow(
    dev_server: DevServer, dev_client: Client, api_keys: ApiKeys, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Flow]:
    state = tmp_path_factory.mktemp("slack-flow")
    (state / "playbooks").mkdir()
    (state / "playbooks" / "slack_drill.yaml").write_text(PLAYBOOK)
    (state / "policy.yaml").write_text(POLICY)
    (state / "inventory.yml").write_text(
        "all:\n  hosts:\n    localhost:\n"
        f"      ansible_connection: local\n      ansible_python_interpreter: {sys.executable}\n"
        f"      remediator_marker_dir: {state / 'markers'}\n"
        "      restart_commands: {checkout: 'true'}\n"
    )
    async with fake_slack(SECRET, TOKEN) as slack, receiver() as hook:
        settings = Settings(
            task_queue=f"slack-flow-{uuid.uuid4().hex[:8]}",
            state_dir=state,
            playbook_dir=state / "playbooks",
            policy_file=state / "policy.yaml",
            ansible_inventory=str(state / "inventory.yml"),
            api_keys_file=api_keys.path,
            slack_bot_token=TOKEN,
            slack_signing_secret=SECRET,
            slack_channel="#incidents",
            slack_api_url=slack.api_url,
            notify_url=hook.url,
        )
        with activity_pool(settings) as pool:
            async with (
                build_worker(dev_client, settings, pool),
                serve(create_app(settings, dev_server.address)) as url,
                httpx.AsyncClient(base_url=url, timeout=60, auth=ByRoute(api_keys)) as api,
            ):
                yield Flow(slack=slack, hook=hook, api=api, endpoint=f"{url}/slack/interactions")


def asked(slack: FakeSlack, incident_id: str) -> Call | None:
    for call in slack.posted():
        values = [e["value"] for b in call.body["blocks"] if b["type"] == "actions" for e in b["elements"]]
        if incident_id in values:
            return call
    return None


def buttons(call: Call) -> dict[str, dict[str, Any]]:
    return {e["action_id"]: e for b in call.body["blocks"] if b["type"] == "actions" for e in b["elements"]}


def shown(call: Call) -> str:
    return "\n".join(b["text"]["text"] for b in call.body["blocks"] if "text" in b)


async def test_two_people_approve_in_slack_and_the_message_tells_the_outcome(flow: Flow) -> None:
    slack, api = flow.slack, flow.api
    # The first message post fails once (Slack 503): the retry must not repeat the webhook.
    slack.fail_next = [(503, {"ok": False, "error": "service_unavailable"})]
    token = uuid.uuid4().hex[:8]
    sent = await api.post(
        "/alerts",
        json={
            "alertname": "SlackDrill",
            "service": "checkout",
            "severity": "critical",
            "labels": {"run": token},
        },
    )
    assert sent.status_code < 300, sent.text
    incident_id = sent.json()[0]["incident_id"]

    message = await until(lambda: asked(slack, incident_id), timeout=90)
    assert message.token == TOKEN and message.body["channel"] == "#incidents"
    approve = buttons(message)[APPROVE_ACTION]
    assert approve["value"] == incident_id and buttons(message)[REJECT_ACTION]["value"] == incident_id
    assert approve["confirm"]["title"]["text"] == "Approve a destructive action?"
    assert "*Diagnosis*" in shown(message)
    assert "hard_restart: hard-restart (destructive)" in shown(message)
    assert "needs 2 distinct approver(s)" in shown(message)

    def click(user: str, action: str = APPROVE_ACTION) -> dict[str, Any]:
        return slack.interaction(user, action, incident_id, message)

    # Not Slack: 401, with a message saying which check failed.
    forged = await slack.click(flow.endpoint, click("UALICE001"), secret="another-apps-secret")
    assert forged.status_code == 401 and "X-Slack-Signature does not match" in forged.json()["message"]
    stale = await slack.click(flow.endpoint, click("UALICE001"), timestamp=int(time.time()) - 600)
    assert stale.status_code == 401 and "more than 300s" in stale.json()["message"]
    async with httpx.AsyncClient() as http:
        bare = await http.post(flow.endpoint, data={"payload": "{}"})
    assert bare.status_code == 401 and "missing X-Slack-Request-Timestamp" in bare.json()["message"]

    # Slack, but nobody who may decide this: an ephemeral answer, to the clicker only.
    refusals = {
        "UNOBODY01": "Slack user UNOBODY01 is not mapped to a Remediator principal",
        "UVERA0001": "viewer 'vera' lacks permission incidents:decide",
        "UCAROL001": "carol may decide only in staging, not prod",
        "USENDER01": "sender opened this incident and so may not approve it",
    }
    for user, why in refusals.items():
        answer = await slack.click(flow.endpoint, click(user))
        assert answer.status_code == 200, answer.text
        assert answer.json()["response_type"] == "ephemeral" and why in answer.json()["text"]
        assert why in slack.responses[-1]["text"] and slack.responses[-1]["replace_original"] is False
    assert (await api.get(f"/incidents/{incident_id}")).json()["approvals"] == []

    first = await slack.click(flow.endpoint, click("UALICE001"))
    assert "Your approval of" in first.json()["text"] and "recorded as alice" in first.json()["text"]
    assert "(approved so far: alice)" in first.json()["text"]  # destructive: one more person
    again = await slack.click(flow.endpoint, click("UALICE001"))
    assert "alice has already decided on this" in again.json()["text"]
    second = await slack.click(flow.endpoint, click("UBOB00001"))
    assert "recorded as bob (approved so far: alice, bob)" in second.json()["text"]

    async def ended() -> Any:
        state = (await api.get(f"/incidents/{incident_id}")).json()
        return state if state["phase"] == "Resolved" else None

    state = await wait_for(ended, timeout=120)
    assert [(a["approver"], a["via"], a["approved"]) for a in state["approvals"]] == [
        ("alice", "slack", True),
        ("bob", "slack", True),
    ]
    assert state["approvals"][0]["reason"] == "clicked in Slack by ualice001 (UALICE001)"
    assert state["slack_message"]["ts"] == message.answer["ts"]

    def outcome() -> Call | None:
        updates = [u for u in slack.updates() if u.body["ts"] == message.answer["ts"]]
        return updates[-1] if updates and "*Resolved*" in shown(updates[-1]) else None

    update = await until(outcome, timeout=30)
    assert update.body["channel"] == message.answer["channel"] and buttons(update) == {}
    assert "approved by alice via slack" in shown(update) and "approved by bob via slack" in shown(update)

    # The webhook saw each phase change once, though Slack's first answer failed the activity once.
    phases = [r.body for r in flow.hook.received if incident_id.encode() in r.body]
    ids = [r.headers["webhook-id"] for r in flow.hook.received if incident_id.encode() in r.body]
    assert len(ids) == len(set(ids)), "a retried notification repeated the webhook"
    assert len(phases) >= 6  # Received, Gathering, Diagnosing, AwaitingApproval, Executing, Resolved


async def test_a_rejection_in_slack_ends_the_incident_and_the_message_says_so(flow: Flow) -> None:
    slack, api = flow.slack, flow.api
    sent = await api.post(
        "/alerts",
        json={"alertname": "SlackDrill", "service": "checkout", "labels": {"run": uuid.uuid4().hex[:8]}},
    )
    incident_id = sent.json()[0]["incident_id"]
    message = await until(lambda: asked(slack, incident_id), timeout=90)
    answer = await slack.click(
        flow.endpoint, slack.interaction("UBOB00001", REJECT_ACTION, incident_id, message)
    )
    assert (
        answer.json()["text"]
        == f"Your rejection of {incident_id} was recorded as bob; the incident ends Rejected."
    )

    def outcome() -> Call | None:
        updates = [u for u in slack.updates() if u.body["ts"] == message.answer["ts"]]
        return updates[-1] if updates and "*Rejected*" in shown(updates[-1]) else None

    update = await until(outcome, timeout=30)
    assert "rejected by bob via slack" in shown(update) and buttons(update) == {}


async def until(check: Callable[[], Any], timeout: float) -> Any:
    """Poll a plain `check` until it returns something truthy."""

    async def poll() -> Any:
        return check()

    return await wait_for(poll, timeout=timeout)
