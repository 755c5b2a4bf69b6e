"""Routes against the real Temporal dev server, with no worker: incidents stay as the API left them."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from activities.config import Settings
from api.app import create_app
from tests.api.support import load, serve, uniquely, wait_for
from tests.credentials import ApiKeys, ByRoute
from worker.devserver import DevServer, free_port
from workflows import search_attributes as sa
from workflows.alerts import Alert
from workflows.incident_models import IncidentInput

pytestmark = pytest.mark.integration


async def post(http: httpx.AsyncClient, path: str, payload: Any) -> list[dict[str, Any]]:
    response = await http.post(path, json=payload)
    assert response.status_code == 202, response.text
    outcomes: list[dict[str, Any]] = response.json()
    return outcomes


async def signals(client: Client, workflow_id: str) -> list[Alert]:
    """The `alert` signals the current run received, decoded."""
    received: list[Alert] = []
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            attrs = event.workflow_execution_signaled_event_attributes
            assert attrs.signal_name == "alert"
            [alert] = await client.data_converter.decode(attrs.input.payloads, [Alert])
            received.append(alert)
    return received


async def start_input(client: Client, workflow_id: str) -> IncidentInput:
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
        attrs = event.workflow_execution_started_event_attributes
        [inp] = await client.data_converter.decode(attrs.input.payloads, [IncidentInput])
        assert isinstance(inp, IncidentInput)
        return inp
    raise AssertionError(f"{workflow_id} has no history")


async def runs(client: Client, workflow_id: str, expected: int) -> int:
    async def counted() -> int | None:
        count = (await client.count_workflows(f"WorkflowId='{workflow_id}'")).count
        return count if count == expected else None

    found: int = await wait_for(counted, timeout=15)
    return found


async def test_duplicate_and_refired_alerts_are_one_workflow(
    idle_http: httpx.AsyncClient, dev_client: Client
) -> None:
    payload = uniquely(load("alertmanager_firing.json"))
    [first] = await post(idle_http, "/alerts/alertmanager", payload)
    assert first["outcome"] == "started"
    assert first["incident_id"] == f"incident-{payload['alerts'][0]['fingerprint']}"
    # Alertmanager retries and re-notifies; two copies may even arrive at the same moment.
    again = await asyncio.gather(*(post(idle_http, "/alerts/alertmanager", payload) for _ in range(3)))
    assert [o["outcome"] for [o] in again] == ["signalled"] * 3
    assert {o["incident_id"] for [o] in again} == {first["incident_id"]}

    assert await runs(dev_client, first["incident_id"], 1) == 1
    received = await signals(dev_client, first["incident_id"])
    # The three identical copies arrived within REMEDIATOR_ALERT_COALESCE_WINDOW of the first signal:
    # one more signal carries all three, and the incident still counts four notifications.
    assert [a.repeats for a in received] == [1, 3] and {a.status for a in received} == {"firing"}
    assert all("one signal for 3 identical notifications" in o["reason"] for [o] in again)
    description = await dev_client.get_workflow_handle(first["incident_id"]).describe()
    assert description.status == WorkflowExecutionStatus.RUNNING
    attrs = description.typed_search_attributes
    assert (attrs.get(sa.ALERT_NAME), attrs.get(sa.SERVICE)) == ("InstanceDown", "checkout")
    assert (attrs.get(sa.SEVERITY), attrs.get(sa.ENVIRONMENT)) == ("critical", "production")
    assert attrs.get(sa.INCIDENT_PHASE) == "Received"


async def test_resolved_without_an_incident_is_ignored(
    idle_http: httpx.AsyncClient, dev_client: Client
) -> None:
    payload = uniquely(load("alertmanager_resolved.json"))
    [outcome] = await post(idle_http, "/alerts/alertmanager", payload)
    assert outcome["outcome"] == "ignored"
    with pytest.raises(RPCError) as caught:
        await dev_client.get_workflow_handle(outcome["incident_id"]).describe()
    assert caught.value.status == RPCStatusCode.NOT_FOUND


async def test_resolved_reaches_the_running_incident(
    idle_http: httpx.AsyncClient, dev_client: Client
) -> None:
    token = uuid.uuid4().hex[:8]
    [fired] = await post(idle_http, "/alerts/alertmanager", uniquely(load("alertmanager_firing.json"), token))
    [resolved] = await post(
        idle_http, "/alerts/alertmanager", uniquely(load("alertmanager_resolved.json"), token)
    )
    assert (fired["outcome"], resolved["outcome"]) == ("started", "signalled")
    assert fired["incident_id"] == resolved["incident_id"]
    received = await signals(dev_client, fired["incident_id"])
    assert [a.status for a in received] == ["firing", "resolved"]
    assert received[-1].ends_at is not None


async def test_a_group_of_alerts_is_delivered_alert_by_alert(
    idle_http: httpx.AsyncClient, dev_client: Client
) -> None:
    payload = uniquely(load("alertmanager_multi.json"))
    outcomes = await post(idle_http, "/alerts/alertmanager", payload)
    assert [o["outcome"] for o in outcomes] == ["started", "started", "ignored"]
    assert [o["fingerprint"] for o in outcomes] == [a["fingerprint"] for a in payload["alerts"]]
    for outcome in outcomes[:2]:
        inp = await start_input(dev_client, outcome["incident_id"])
        assert inp.alert.source == "alertmanager" and inp.alert.name == "TargetDown"


async def test_a_closed_incidents_fingerprint_opens_a_new_run(
    idle_http: httpx.AsyncClient, dev_client: Client
) -> None:
    token = uuid.uuid4().hex[:8]
    firing = uniquely(load("alertmanager_firing.json"), token)
    [first] = await post(idle_http, "/alerts/alertmanager", firing)
    handle = dev_client.get_workflow_handle(first["incident_id"])
    first_run = (await handle.describe()).run_id
    await handle.terminate(reason="test closes the incident")

    [resolved] = await post(
        idle_http, "/alerts/alertmanager", uniquely(load("alertmanager_resolved.json"), token)
    )
    assert resolved["outcome"] == "ignored", "a resolve must not reopen a closed incident"
    [second] = await post(idle_http, "/alerts/alertmanager", firing)
    assert second["outcome"] == "started"
    assert (await handle.describe()).run_id != first_run
    assert await runs(dev_client, first["incident_id"], 2) == 2


async def test_grafana_and_generic_alerts_start_incidents(
    idle_http: httpx.AsyncClient, dev_client: Client
) -> None:
    grafana = await post(idle_http, "/alerts/grafana", uniquely(load("grafana_firing.json")))
    assert [o["outcome"] for o in grafana] == ["started", "ignored"]
    inp = await start_input(dev_client, grafana[0]["incident_id"])
    assert inp.alert.source == "grafana"
    assert inp.alert.annotations["panel_url"].endswith("viewPanel=4")
    assert inp.config == Settings().incident_config()

    generic = await post(idle_http, "/alerts", uniquely(load("generic_list.json")))
    assert [(o["alertname"], o["outcome"]) for o in generic] == [
        ("ServiceDown", "started"),
        ("QueueBacklog", "started"),
    ]
    inp = await start_input(dev_client, generic[0]["incident_id"])
    assert inp.alert.source == "generic" and inp.alert.service == "billing"
    [single] = await post(idle_http, "/alerts", {"alertname": "Single", "labels": {"run": uuid.uuid4().hex}})
    assert single["outcome"] == "started"


async def test_incidents_are_listed_and_filtered_from_visibility(idle_http: httpx.AsyncClient) -> None:
    name = f"ListTest{uuid.uuid4().hex[:8]}"
    for service in ("alpha", "beta"):
        await post(idle_http, "/alerts", {"alertname": name, "service": service, "severity": "page"})

    async def listed(**params: str) -> list[dict[str, Any]]:
        response = await idle_http.get("/incidents", params={"alertname": name, **params})
        assert response.status_code == 200, response.text
        rows: list[dict[str, Any]] = response.json()
        return rows

    async def both() -> list[dict[str, Any]] | None:
        rows = await listed()
        return rows if len(rows) == 2 else None

    rows = await wait_for(both, timeout=15)
    assert {(r["service"], r["phase"], r["severity"], r["workflow_status"]) for r in rows} == {
        ("alpha", "Received", "page", "RUNNING"),
        ("beta", "Received", "page", "RUNNING"),
    }
    assert all(r["incident_id"].startswith("incident-") and r["started_at"] for r in rows)
    assert [r["service"] for r in await listed(service="beta")] == ["beta"]
    assert len(await listed(phase="Received")) == 2
    assert await listed(phase="Resolved") == []
    assert len(await listed(limit="1")) == 1
    # A filter value that would break out of the query literal is refused, never run.
    response = await idle_http.get("/incidents", params={"alertname": f"{name}' OR WorkflowType!='x"})
    assert response.status_code == 422


async def test_unknown_incidents_are_404(idle_http: httpx.AsyncClient) -> None:
    unknown = f"nosuch{uuid.uuid4().hex[:8]}"
    for response in (
        await idle_http.get(f"/incidents/{unknown}"),
        await idle_http.get(f"/incidents/incident-{unknown}"),
        await idle_http.post(f"/incidents/{unknown}/approve", json={"approver": "alice"}),
        await idle_http.post(f"/incidents/incident-{unknown}/reject", json={"approver": "alice"}),
    ):
        assert response.status_code == 404, response.text
        assert response.json()["message"] == f"no incident incident-{unknown}"


async def test_deciding_on_a_closed_incident_is_409(idle_http: httpx.AsyncClient, dev_client: Client) -> None:
    [started] = await post(idle_http, "/alerts", {"alertname": "Closed", "labels": {"run": uuid.uuid4().hex}})
    await dev_client.get_workflow_handle(started["incident_id"]).terminate()
    fingerprint = started["incident_id"].removeprefix("incident-")
    response = await idle_http.post(f"/incidents/{fingerprint}/approve", json={"approver": "alice"})
    assert response.status_code == 409
    assert (
        response.json()["message"] == f"incident {started['incident_id']} is no longer running (TERMINATED)"
    )


async def test_without_a_worker_queries_and_updates_answer_503(
    idle_http: httpx.AsyncClient, idle_settings: Settings
) -> None:
    [started] = await post(
        idle_http, "/alerts", {"alertname": "NoWorker", "labels": {"run": uuid.uuid4().hex}}
    )
    for response in (
        await idle_http.get(f"/incidents/{started['incident_id']}"),
        await idle_http.post(f"/incidents/{started['incident_id']}/approve", json={"approver": "alice"}),
    ):
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"] == "5"
        assert f"is a worker polling {idle_settings.task_queue!r}" in response.json()["message"]


async def test_ready_when_temporal_answers(idle_http: httpx.AsyncClient, dev_server: DevServer) -> None:
    response = await idle_http.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "temporal": dev_server.address}
    assert (await idle_http.get("/healthz")).json() == {"status": "ok"}


async def test_temporal_down_is_503_until_it_comes_up(tmp_path: Any, api_keys: ApiKeys) -> None:
    """The API starts without Temporal, answers 503 (so senders retry), and works once it is up."""
    port = free_port()
    settings = Settings(task_queue=f"api-late-{port}", api_keys_file=api_keys.path)
    alert = {"alertname": "Late", "labels": {"run": uuid.uuid4().hex}}
    async with (
        serve(create_app(settings, f"127.0.0.1:{port}")) as url,
        httpx.AsyncClient(base_url=url, auth=ByRoute(api_keys)) as http,
    ):
        assert (await http.get("/healthz")).status_code == 200
        for response in (
            await http.post("/alerts", json=alert),
            await http.post("/alerts/alertmanager", json=load("alertmanager_firing.json")),
            await http.get("/readyz"),
            await http.get("/incidents"),
        ):
            assert response.status_code == 503, response.text
            assert response.headers["Retry-After"] == "5"
            assert f"Temporal at 127.0.0.1:{port} is unreachable" in response.json()["message"]

        server = DevServer(port=port, ui_port=free_port(), log_file=tmp_path / "temporal.log")
        await server.start()
        try:
            assert (await http.get("/readyz")).status_code == 200
            [outcome] = (await http.post("/alerts", json=alert)).json()
            assert outcome["outcome"] == "started"
        finally:
            server.stop()
        # Temporal gone again after a connection existed: still a 503, not a 500.
        response = await http.post("/alerts", json=alert)
        assert response.status_code == 503, response.text
        assert (await http.get("/readyz")).status_code == 503
