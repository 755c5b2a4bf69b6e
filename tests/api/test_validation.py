"""Bad input never becomes a 500: a property-style sweep over many malformed bodies.

The app points at a port where nothing listens, so a body that is still valid after a mutation
answers 503 (Temporal down) and an invalid one must answer 4xx naming the field: validation runs
before any call to Temporal.
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from activities.config import Settings
from api.app import create_app
from api.errors import field_path
from tests.api.support import load, serve
from tests.credentials import ApiKeys, ByRoute
from worker.devserver import free_port

MAX_BODY = 64 * 1024
Path = tuple[str | int, ...]
# Wrong types, wrong shapes and an over-long string (label values are capped at 2048 characters).
REPLACEMENTS: list[Any] = [None, 7, -1.5, True, "text", [], {}, ["x"], {"k": 1}, "x" * 3000]
ENDPOINTS = [
    ("/alerts/alertmanager", "alertmanager_multi.json", ()),
    ("/alerts/grafana", "grafana_firing.json", ()),
    ("/alerts", "generic_list.json", ("alerts",)),
]


def first_alert_only(doc: Any) -> Any:
    """Each alert is judged alone, so a mutated alert beside valid ones is a 202 listing it (see
    tests/api/test_acceptance.py); with one alert, every mutation that breaks it is a 422."""
    if isinstance(doc, list):
        return doc[:1]
    return {**doc, "alerts": doc["alerts"][:1]}


@pytest.fixture(scope="module")
async def down_http(api_keys: ApiKeys) -> AsyncIterator[httpx.AsyncClient]:
    # No coalescing window: the sweep re-sends the same valid alerts hundreds of times in a row.
    settings = Settings(
        max_body_bytes=MAX_BODY, api_keys_file=api_keys.path, alert_coalesce_window=timedelta(0)
    )
    app = create_app(settings, temporal_address=f"127.0.0.1:{free_port()}")
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=30, auth=ByRoute(api_keys)) as http:
        yield http


def paths(value: Any, prefix: Path = ()) -> Iterator[Path]:
    yield prefix
    children = (
        value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    )
    for key, child in children:
        yield from paths(child, (*prefix, key))


def replaced(doc: Any, path: Path, value: Any) -> Any:
    doc = copy.deepcopy(doc)
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return doc


def removed(doc: Any, path: Path) -> Any:
    doc = copy.deepcopy(doc)
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    return doc


def mutations(doc: Any) -> Iterator[tuple[Path, Any]]:
    for path in paths(doc):
        if not path:
            continue
        yield path, removed(doc, path)
        for value in REPLACEMENTS:
            yield path, replaced(doc, path, value)


def aliases(path: str) -> list[str]:
    """A missing `name` is reported as the field it stands for, `alertname`; a changed label of an
    Alertmanager alert as its `fingerprint`, which no longer names its labels (api/trust.py)."""
    if path.endswith(".name"):
        return [path, path.removesuffix(".name") + ".alertname"]
    if ".labels" in path and path.startswith("alerts["):
        return [path, path.split(".labels")[0] + ".fingerprint"]
    return [path]


def related(shown: str, mutated: str) -> bool:
    """The error is at the mutated field, inside it, or at an enclosing object (a model-level check)."""
    return any(
        longer == shorter or longer.startswith((f"{shorter}.", f"{shorter}["))
        for longer, shorter in ((shown, mutated), (mutated, shown))
    )


@pytest.mark.parametrize(("endpoint", "fixture", "prefix"), ENDPOINTS)
async def test_mutated_payloads_answer_4xx_naming_the_field_or_503(
    down_http: httpx.AsyncClient, endpoint: str, fixture: str, prefix: Path
) -> None:
    doc = first_alert_only(load(fixture))
    counts = {422: 0, 503: 0}
    for path, body in mutations(doc):
        response = await down_http.post(endpoint, json=body)
        where = f"{endpoint} with {field_path(('body', *path))} mutated"
        assert response.status_code in counts, f"{where}: {response.status_code} {response.text}"
        counts[response.status_code] += 1
        answer = response.json()
        assert answer["message"], where
        if response.status_code == 503:
            assert response.headers["Retry-After"], where
            continue
        mutated = field_path(("body", *prefix, *path))
        shown = [d["path"] for d in answer["detail"]]
        assert any(related(s, m) for s in shown if s != "body" for m in aliases(mutated)), (
            f"{where}: {answer}"
        )
        assert answer["message"].startswith(tuple(shown)), f"{where}: {answer}"
    # The sweep exercised both outcomes many times, so neither assertion above was vacuous.
    assert counts[422] > 50 and counts[503] > 5, counts


async def test_every_generic_single_object_error_is_prefixed_alert(down_http: httpx.AsyncClient) -> None:
    doc = load("generic_list.json")[0]
    seen = 0
    for path, body in mutations(doc):
        response = await down_http.post("/alerts", json=body)
        assert response.status_code in (422, 503), response.text
        if response.status_code == 422:
            seen += 1
            mutated = field_path(("body", "alert", *path))
            details = response.json()["detail"]
            assert any(related(d["path"], m) for d in details for m in aliases(mutated)), response.text
    assert seen > 20


def truncations(text: str) -> Iterator[str]:
    for cut in range(1, len(text) - 1, max(1, len(text) // 40)):
        yield text[:cut]


@pytest.mark.parametrize("endpoint", ["/alerts/alertmanager", "/alerts/grafana", "/alerts"])
async def test_truncated_json_is_a_422_saying_where(down_http: httpx.AsyncClient, endpoint: str) -> None:
    text = json.dumps(load("alertmanager_firing.json"), indent=2)
    for partial in truncations(text):
        response = await down_http.post(
            endpoint, content=partial, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 422, (partial[-30:], response.text)
        message = response.json()["message"]
        assert message.startswith("malformed JSON at line "), message
        line = int(message.split("line ")[1].split()[0])
        assert line == partial.count("\n") + 1 or line == partial.count("\n"), (message, partial[-40:])


@pytest.mark.parametrize(
    ("content", "content_type", "expected"),
    [
        (b"", "application/json", "a JSON request body is required"),
        (b"   ", "application/json", "malformed JSON"),
        (b"{'single': 'quotes'}", "application/json", "malformed JSON at line 1 column 2"),
        (b'{"alertname": "X"} trailing', "application/json", "malformed JSON at line 1 column 20"),
        (b"\xff\xfe\x00", "application/json", "body: not readable as JSON: 'utf-16-le' codec can't decode"),
        (b"null", "application/json", "alert: Input should be a valid dictionary"),
        (b'"a string"', "application/json", "alert: Input should be a valid dictionary"),
        (b"42", "application/json", "alert: Input should be a valid dictionary"),
        (b'{"alertname": NaN}', "application/json", "alert.alertname: Input should be a valid string"),
        (b"alertname=X", "application/x-www-form-urlencoded", "Content-Type: application/json"),
        (b'{"alertname": "X"}', "text/plain", "Content-Type: application/json"),
        (b"[" * 50_000, "application/json", "body: not readable as JSON: maximum recursion depth"),
    ],
)
async def test_malformed_bodies_are_4xx_with_a_message(
    down_http: httpx.AsyncClient, content: bytes, content_type: str, expected: str
) -> None:
    response = await down_http.post("/alerts", content=content, headers={"Content-Type": content_type})
    assert 400 <= response.status_code < 500, response.text
    assert expected in response.json()["message"]


async def test_a_group_with_no_valid_alert_is_422_naming_each_alert_and_field(
    down_http: httpx.AsyncClient,
) -> None:
    payload = load("alertmanager_multi.json")
    del payload["alerts"][2]["labels"]
    payload["alerts"][0]["status"] = "pending"
    payload["alerts"][1]["labels"] = {}
    response = await down_http.post("/alerts/alertmanager", json=payload)
    assert response.status_code == 422
    message = response.json()["message"]
    assert "alerts[2].labels: Field required" in message
    assert "alerts[0].status: Input should be 'firing' or 'resolved'" in message
    assert "alerts[1].labels: Dictionary should have at least 1 item" in message


async def test_many_errors_are_summarised(down_http: httpx.AsyncClient) -> None:
    payload = {"version": "4", "status": "firing", "alerts": [{"status": "firing"}] * 9}
    response = await down_http.post("/alerts/alertmanager", json=payload)
    assert response.status_code == 422
    answer = response.json()
    assert len(answer["detail"]) == 9
    assert answer["message"].endswith("; and 4 more")


async def test_declared_oversize_body_is_413_before_reading(down_http: httpx.AsyncClient) -> None:
    body = json.dumps({"alertname": "X", "annotations": {"blob": "x" * MAX_BODY}}).encode()
    response = await down_http.post("/alerts", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert (
        response.json()["message"]
        == f"request body is larger than {MAX_BODY} bytes (REMEDIATOR_MAX_BODY_BYTES)"
    )


async def test_chunked_oversize_body_is_413_while_streaming(down_http: httpx.AsyncClient) -> None:
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"alertname": "X", "annotations": {"blob": "'
        for _ in range(200):
            sent += 4096
            yield b"x" * 4096
        yield b'"}}'

    request = down_http.build_request(
        "POST", "/alerts", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in request.headers and request.headers["transfer-encoding"] == "chunked"
    response = await down_http.send(request)
    assert response.status_code == 413
    assert str(MAX_BODY) in response.json()["message"]


async def test_body_just_under_the_limit_is_read(down_http: httpx.AsyncClient) -> None:
    body = json.dumps({"alertname": "X", "annotations": {"blob": "x" * (MAX_BODY - 100)}}).encode()
    assert len(body) <= MAX_BODY
    response = await down_http.post("/alerts", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 503, "a valid body gets past the limit and only then meets Temporal"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/incidents?phase=Bogus", "query parameter phase: Input should be 'Received'"),
        ("/incidents?alertname=x'%20OR%20'1'='1", "query parameter alertname"),
        ("/incidents?service=a%22b", "query parameter service"),
        ("/incidents?service=a%5Cb", "query parameter service"),
        ("/incidents?service=", "query parameter service"),
        ("/incidents?limit=0", "query parameter limit"),
        ("/incidents/bad%20id", "path parameter incident_id"),
        ("/incidents/a;b", "path parameter incident_id"),
    ],
)
async def test_bad_parameters_are_422_naming_them(
    down_http: httpx.AsyncClient, path: str, expected: str
) -> None:
    response = await down_http.get(path)
    assert response.status_code == 422, response.text
    assert expected in response.json()["message"]


async def test_bad_decision_body_is_422(down_http: httpx.AsyncClient) -> None:
    response = await down_http.post("/incidents/abc/approve", json={"approver": ""})
    assert response.status_code == 422
    assert response.json()["message"].startswith("approver: String should have at least 1 character")
    response = await down_http.post("/incidents/abc/reject", json={"reason": ["no"]})
    assert response.status_code == 422
    assert "reason: Input should be a valid string" in response.json()["message"]
