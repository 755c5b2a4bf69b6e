"""Per-alert acceptance, caps and storm control against the real dev server (no worker on `idle`).

Every valid alert of a request is delivered and acknowledged; refused ones are listed with their
index and reason and never reach Temporal; only a request without a valid alert is a 422.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.config import Settings
from api.alert_caps import SEARCH_ATTRIBUTE_BYTES
from api.app import create_app
from api.auth.keys import KeyStore
from api.auth.principal import Role
from tests.api.support import LIVE_SERVICE, serve, state_of, wait_for
from tests.api.test_routes import start_input
from tests.credentials import ApiKeys, ByRoute
from worker.devserver import DevServer
from workflows import search_attributes as sa
from workflows.alerts import prometheus_fingerprint
from workflows.incident_models import IncidentState
from workflows.phases import Phase
from workflows.storm import STORM_WORKFLOW, Absorbed

pytestmark = pytest.mark.integration


def sender_key(api_keys: ApiKeys, environments: list[str], services: list[str]) -> dict[str, str]:
    _, key = KeyStore(api_keys.path).create(
        f"sender-{uuid.uuid4().hex[:8]}", [Role.SENDER], environments=environments, services=services
    )
    return {"Authorization": f"Bearer {key}"}


def am_alert(labels: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {"status": "firing", "labels": labels, "fingerprint": prometheus_fingerprint(labels), **extra}


async def never_started(client: Client, incident_id: str) -> None:
    with pytest.raises(RPCError) as caught:
        await client.get_workflow_handle(incident_id).describe()
    assert caught.value.status == RPCStatusCode.NOT_FOUND, incident_id


async def test_a_group_delivers_every_valid_alert_and_lists_the_refused(
    idle_http: httpx.AsyncClient, dev_client: Client, api_keys: ApiKeys
) -> None:
    headers = sender_key(api_keys, ["prod"], ["api*"])
    run = uuid.uuid4().hex[:8]
    base = {"alertname": "TargetDown", "environment": "prod", "service": "api", "run": run}
    borrowed = {**base, "service": "api-admin", "instance": "b"}
    alerts = [
        am_alert({**base, "instance": "a"}),
        am_alert({**base, "environment": "dev", "instance": "c"}),  # a claim the key does not hold
        {**am_alert(borrowed), "fingerprint": prometheus_fingerprint({**base, "instance": "a"})},
        {**am_alert({**base, "instance": "d"}), "status": "pending"},  # malformed
        am_alert(
            {**base, "instance": "e", "blob": "x" * 3000},
            annotations={"description": "y" * 20_000, "summary": "short"},
        ),
        am_alert({**base, "service": "payments", "instance": "f"}),  # a service outside the key's scope
    ]
    response = await idle_http.post(
        "/alerts/alertmanager", json={"version": "4", "status": "firing", "alerts": alerts}, headers=headers
    )
    assert response.status_code == 202, response.text
    outcomes = response.json()
    assert [o["index"] for o in outcomes] == list(range(6))
    assert [o["outcome"] for o in outcomes] == [
        "started",
        "refused",
        "refused",
        "refused",
        "started",
        "refused",
    ]
    reasons = [o["reason"] for o in outcomes]
    assert reasons[1].startswith("alerts[1].labels.environment: 'dev' is not one"), reasons[1]
    assert reasons[2].startswith("alerts[2].fingerprint: "), reasons[2]
    assert reasons[3].startswith("alerts[3].status: Input should be 'firing' or 'resolved'"), reasons[3]
    assert reasons[5].startswith("alerts[5].labels.service: 'payments' is not one"), reasons[5]
    for index in (1, 5):  # parsed, so named, but refused: nothing reached Temporal
        await never_started(dev_client, outcomes[index]["incident_id"])
    # The borrowed fingerprint named alert 0's incident, which kept alert 0's labels.
    assert outcomes[2]["incident_id"] == outcomes[0]["incident_id"]
    assert (await start_input(dev_client, outcomes[0]["incident_id"])).alert.labels["instance"] == "a"

    # The oversized alert was cut, not refused, and its fingerprint still names the labels as sent.
    big = outcomes[4]
    assert big["truncated"] == [
        "labels.blob: 3000 bytes cut to 1024",
        "annotations.description: 20000 bytes cut to 16384",
    ]
    assert big["fingerprint"] == alerts[4]["fingerprint"]
    alert = (await start_input(dev_client, big["incident_id"])).alert
    assert (
        alert.labels["blob"].endswith("…[truncated 2001 bytes]")
        and len(alert.labels["blob"].encode()) == 1024
    )
    assert alert.annotations["description"].startswith("y" * 16_000)
    assert alert.annotations["description"].endswith("bytes]") and alert.annotations["summary"] == "short"


async def test_a_request_with_no_valid_alert_is_422_naming_each(
    idle_http: httpx.AsyncClient, api_keys: ApiKeys
) -> None:
    headers = sender_key(api_keys, ["prod"], ["*"])
    alerts = [
        am_alert({"alertname": "X", "environment": "dev", "run": uuid.uuid4().hex}),
        {"status": "firing"},
    ]
    response = await idle_http.post(
        "/alerts/alertmanager", json={"version": "4", "status": "firing", "alerts": alerts}, headers=headers
    )
    assert response.status_code == 422, response.text
    message = response.json()["message"]
    assert "alerts[0].labels.environment: 'dev' is not one" in message
    assert "alerts[1].labels: Field required" in message


async def test_long_label_values_fit_temporals_search_attributes(
    idle_http: httpx.AsyncClient, dev_client: Client
) -> None:
    run = uuid.uuid4().hex
    for name in ("a" * 3000, "é" * 2000, "\x01" * 1000):  # \x01 is 6 bytes once JSON-encoded
        response = await idle_http.post("/alerts", json={"alertname": name, "labels": {"run": run}})
        assert response.status_code == 202, response.text
        [outcome] = response.json()
        assert outcome["outcome"] == "started" and outcome["truncated"][0].startswith("labels.alertname: ")
        description = await dev_client.get_workflow_handle(outcome["incident_id"]).describe()
        shown = description.typed_search_attributes.get(sa.ALERT_NAME)
        assert shown is not None and shown.endswith("bytes]") and shown[:10] == name[:10]
        assert len(json.dumps(shown)) <= SEARCH_ATTRIBUTE_BYTES


@pytest.fixture
async def capped_http(
    dev_server: DevServer, idle_settings: Settings, api_keys: ApiKeys
) -> AsyncIterator[httpx.AsyncClient]:
    """An app of its own (storm control counts per process): 3 new incidents a minute, 2 per sender."""
    settings = idle_settings.model_copy(
        update={"alert_new_incidents_per_minute": 3, "alert_sender_new_incidents_per_minute": 2}
    )
    async with (
        serve(create_app(settings, dev_server.address)) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        yield http


async def absorbed(client: Client, storm_id: str) -> list[Absorbed]:
    found: list[Absorbed] = []
    async for event in client.get_workflow_handle(storm_id).fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            attrs = event.workflow_execution_signaled_event_attributes
            [batch] = await client.data_converter.decode(attrs.input.payloads, [list[Absorbed]])
            found.extend(batch)
    return found


async def test_past_the_caps_new_alerts_join_one_storm_per_alertname_and_refires_still_signal(
    capped_http: httpx.AsyncClient, dev_client: Client, api_keys: ApiKeys
) -> None:
    flood, other = sender_key(api_keys, ["*"], ["*"]), sender_key(api_keys, ["*"], ["*"])
    run = uuid.uuid4().hex[:8]

    async def post(headers: dict[str, str], alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        response = await capped_http.post("/alerts", json=alerts, headers=headers)
        assert response.status_code == 202, response.text
        outcomes: list[dict[str, Any]] = response.json()
        return outcomes

    def new(name: str, instance: int) -> dict[str, Any]:
        return {"alertname": f"{name}{run}", "labels": {"instance": str(instance)}}

    [first] = await post(flood, [new("Flood", 0)])
    assert first["outcome"] == "started"
    # A re-fire of a running incident takes no slot: two more new incidents still fit for this sender.
    [again] = await post(flood, [{**new("Flood", 0), "annotations": {"n": "2"}}])
    assert again["outcome"] == "signalled"
    burst = await post(flood, [new("Flood", i) for i in range(1, 7)] + [new("Other", i) for i in range(3)])
    started = [o for o in burst if o["outcome"] == "started"]
    grouped = [o for o in burst if o["outcome"] == "grouped"]
    assert len(started) == 1 and len(grouped) == 8, burst  # the sender's cap of 2 a minute, first included
    storms = {o["alertname"]: o["incident_id"] for o in grouped}
    assert len(storms) == 2 and all(s.startswith("incident-storm-") for s in storms.values())
    assert all(
        o["reason"].startswith(f"grouped into storm incident {o['incident_id']}: 2 new") for o in grouped
    )
    for name, storm_id in storms.items():
        expected = sorted(o["fingerprint"] for o in grouped if o["alertname"] == name)
        assert sorted(a.fingerprint for a in await absorbed(dev_client, storm_id)) == expected
        description = await dev_client.get_workflow_handle(storm_id).describe()
        assert description.workflow_type == STORM_WORKFLOW
        assert description.typed_search_attributes.get(sa.INCIDENT_PHASE) == "Escalated"
        assert description.typed_search_attributes.get(sa.ALERT_NAME) == name
    for outcome in grouped:
        await never_started(dev_client, f"incident-{outcome['fingerprint']}")

    # Over its cap, the flooding sender's re-fire still reaches its incident; another sender still opens one.
    [refire] = await post(flood, [{**new("Flood", 0), "annotations": {"n": "3"}}])
    assert refire["outcome"] == "signalled" and refire["incident_id"] == first["incident_id"]
    [fresh] = await post(other, [new("Fresh", 0)])
    assert fresh["outcome"] == "started"


@pytest.fixture
async def capped_live_http(
    dev_server: DevServer, live_settings: Settings, live_worker: None, api_keys: ApiKeys
) -> AsyncIterator[httpx.AsyncClient]:
    """The live worker's task queue, one new incident a minute: storms and re-fires reach a real worker."""
    settings = live_settings.model_copy(update={"alert_sender_new_incidents_per_minute": 1})
    async with (
        serve(create_app(settings, dev_server.address)) as url,
        httpx.AsyncClient(base_url=url, timeout=60, auth=ByRoute(api_keys)) as http,
    ):
        yield http


async def test_coalesced_refires_and_a_storm_read_as_incidents_on_a_real_worker(
    capped_live_http: httpx.AsyncClient,
) -> None:
    environment = f"co-{uuid.uuid4().hex[:8]}"
    labels = {"service": LIVE_SERVICE, "severity": "critical", "environment": environment}
    alert = {"alertname": "ServiceDown", "labels": {**labels, "instance": "a"}}
    response = await capped_live_http.post("/alerts", json=alert)
    [first] = response.json()
    assert first["outcome"] == "started", response.text
    # Three identical copies within the coalescing window: one signal, three notifications counted.
    copies = await asyncio.gather(*(capped_live_http.post("/alerts", json=alert) for _ in range(3)))
    assert [r.json()[0]["outcome"] for r in copies] == ["signalled"] * 3

    async def counted() -> IncidentState | None:
        state = await state_of(capped_live_http, first["incident_id"])
        return state if state.alert_updates == 4 else None

    state = await wait_for(counted, timeout=30)
    assert any(
        e.detail == "notification #4 for this fingerprint (3 identical, coalesced)" for e in state.timeline
    )

    # Past the cap, new alerts join the storm incident, which reads like an incident.
    storm = await capped_live_http.post(
        "/alerts", json=[{"alertname": "ServiceDown", "labels": {**labels, "instance": i}} for i in "bc"]
    )
    [grouped] = {o["incident_id"] for o in storm.json() if o["outcome"] == "grouped"}

    async def absorbed_both() -> IncidentState | None:
        response = await capped_live_http.get(f"/incidents/{grouped}")
        if response.status_code != 200:
            return None
        state = IncidentState.model_validate(response.json())
        return state if state.alert_updates == 2 else None

    storm_state = await wait_for(absorbed_both, timeout=30)
    assert storm_state.phase == Phase.ESCALATED and storm_state.environment == environment
    listed = await capped_live_http.get(
        "/incidents", params={"alertname": "ServiceDown", "phase": "Escalated"}
    )
    assert grouped in [row["incident_id"] for row in listed.json()], listed.text
