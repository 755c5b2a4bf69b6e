"""Routes whose incidents must progress: the real dev server plus a real worker (real Ansible).

ServiceDown alerts run the shipped ServiceDown playbook (pinned by the API): it probes first, so each
alert here names an endpoint of its own (`LiveService`) that is really down until the playbook's Ansible
restart brings it up. A probe that answered at once would, rightly, end the incident with no action.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from tests.api.support import LIVE_SERVICE, LiveService, state_of, wait_for_phase
from tests.credentials import ApiKeys
from workflows.phases import Phase

pytestmark = [pytest.mark.integration, pytest.mark.ansible]


def service_down(service: LiveService, status: str = "firing", token: str | None = None) -> dict[str, Any]:
    """An alert the ServiceDown playbook can fix: its endpoint is down until the restart runs."""
    token = token or uuid.uuid4().hex[:8]
    return {
        "alertname": "ServiceDown",
        "status": status,
        "fingerprint": f"live-{token}",
        "service": LIVE_SERVICE,
        "severity": "critical",
        "labels": {"instance": f"live-{token}"},
        "annotations": {"probe_url": service.probe_url(f"live-{token}")},
    }


async def fire(http: httpx.AsyncClient, alert: dict[str, Any]) -> dict[str, Any]:
    response = await http.post("/alerts", json=alert)
    assert response.status_code == 202, response.text
    [outcome] = response.json()
    return dict(outcome)


async def awaiting_approval(http: httpx.AsyncClient, service: LiveService) -> str:
    outcome = await fire(http, service_down(service))
    assert outcome["outcome"] == "started"
    await wait_for_phase(http, outcome["incident_id"], Phase.AWAITING_APPROVAL)
    return str(outcome["incident_id"])


async def test_approval_runs_the_plan_and_records_who_approved(
    live_http: httpx.AsyncClient, live_service: LiveService, dev_client: Client
) -> None:
    incident_id = await awaiting_approval(live_http, live_service)
    fingerprint = incident_id.removeprefix("incident-")
    assert (await state_of(live_http, fingerprint)) == (await state_of(live_http, incident_id))

    response = await live_http.post(
        f"/incidents/{fingerprint}/approve", json={"approver": "alice", "reason": "ok"}
    )
    assert response.status_code == 200, response.text
    state = response.json()
    assert [(a["approver"], a["approved"], a["reason"]) for a in state["approvals"]] == [
        ("alice", True, "ok")
    ]

    again = await live_http.post(f"/incidents/{incident_id}/approve", json={"approver": "alice"})
    assert again.status_code == 409, again.text
    assert again.json()["message"].startswith(f"incident {incident_id} refused the decision: ")

    final = await wait_for_phase(live_http, incident_id, Phase.RESOLVED, Phase.FAILED, Phase.ROLLED_BACK)
    assert final.phase == Phase.RESOLVED, final.timeline
    assert any(e.event == "approval by alice" for e in final.timeline)
    assert final.plan and final.plan.actions[0].result and final.plan.actions[0].result.ok
    assert final.playbook is not None and final.playbook.name == "ServiceDown"
    assert any(e.event == "verify healthy passed" for e in final.timeline)  # the restart brought it up

    await dev_client.get_workflow_handle(incident_id).result()  # Resolved comes before its last activities
    late = await live_http.post(f"/incidents/{incident_id}/reject", json={"approver": "bob"})
    assert late.status_code == 409
    assert late.json()["message"] == f"incident {incident_id} is no longer running (COMPLETED)"


async def test_rejection_ends_the_incident(live_http: httpx.AsyncClient, live_service: LiveService) -> None:
    incident_id = await awaiting_approval(live_http, live_service)
    response = await live_http.post(
        f"/incidents/{incident_id}/reject", json={"approver": "bob", "reason": "freeze"}
    )
    assert response.status_code == 200, response.text
    assert [(a["approver"], a["approved"]) for a in response.json()["approvals"]] == [("bob", False)]
    final = await wait_for_phase(live_http, incident_id, Phase.REJECTED)
    assert final.plan and final.plan.actions[0].result is None, "nothing ran"


async def test_one_principal_cannot_approve_under_two_names(
    live_http: httpx.AsyncClient, live_service: LiveService, api_keys: ApiKeys
) -> None:
    incident_id = await awaiting_approval(live_http, live_service)
    alice = api_keys.headers("alice")
    url = f"/incidents/{incident_id}/approve"
    posing = await live_http.post(url, json={"approver": "bob"}, headers=alice)
    assert posing.status_code == 403, posing.text
    assert posing.json()["message"] == "approver 'bob' is not the authenticated caller 'alice'"
    first = await live_http.post(url, json={}, headers=alice)
    assert first.status_code == 200, first.text
    assert [(a["approver"], a["via"]) for a in first.json()["approvals"]] == [("alice", "api")]
    # A second approval by the same key is the same principal, whatever name it gives: never counted.
    again = await live_http.post(url, json={"reason": "me again"}, headers=alice)
    assert again.status_code == 409 and "refused the decision" in again.json()["message"]
    final = await wait_for_phase(live_http, incident_id, Phase.RESOLVED, Phase.FAILED, Phase.ROLLED_BACK)
    assert [a.approver for a in final.approvals] == ["alice"]


async def test_resolution_cancels_a_pending_fix(
    live_http: httpx.AsyncClient, live_service: LiveService
) -> None:
    token = uuid.uuid4().hex[:8]
    fired = await fire(live_http, service_down(live_service, token=token))
    await wait_for_phase(live_http, fired["incident_id"], Phase.AWAITING_APPROVAL)
    resolved = await fire(live_http, service_down(live_service, "resolved", token))
    assert (resolved["incident_id"], resolved["outcome"]) == (fired["incident_id"], "signalled")
    final = await wait_for_phase(live_http, fired["incident_id"], Phase.CANCELLED)
    assert final.resolved_at is not None and final.alert_updates == 2
    response = await live_http.post(f"/incidents/{fired['incident_id']}/approve", json={"approver": "alice"})
    assert response.status_code == 409


async def test_a_closed_incident_reopens_as_a_new_run(
    live_http: httpx.AsyncClient, dev_client: Client
) -> None:
    alert = {"alertname": "NothingKnown", "service": "elsewhere", "labels": {"run": uuid.uuid4().hex[:8]}}
    first = await fire(live_http, alert)
    closed = await wait_for_phase(live_http, first["incident_id"], Phase.ESCALATED)
    assert closed.alert_updates == 1
    # Escalated is entered before the run's last activities (notification, memory): wait until it closed.
    await dev_client.get_workflow_handle(first["incident_id"]).result()

    second = await fire(live_http, alert)
    assert (second["incident_id"], second["outcome"]) == (first["incident_id"], "started")
    await wait_for_phase(live_http, first["incident_id"], Phase.ESCALATED)
    await dev_client.get_workflow_handle(first["incident_id"]).result()
    resolved = await fire(live_http, {**alert, "status": "resolved"})
    assert resolved["outcome"] == "ignored"
