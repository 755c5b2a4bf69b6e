"""POST /logs/analyze on the real app (create_app): raw bodies, multipart uploads and bad input."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from activities.config import Settings
from api.app import create_app
from tests.credentials import ApiKeys

LOGS = (
    "2024-05-01T10:00:00Z INFO GET /api/cart 200 14ms\n"
    "2024-05-01T10:00:01Z INFO GET /api/cart 200 12ms\n"
    "2024-05-01T10:00:02Z ERROR dial tcp 10.96.44.12:5432: connect: connection refused\n"
)


@pytest.fixture(scope="module")
def http(api_keys: ApiKeys) -> Iterator[TestClient]:
    # The logs route needs no Temporal: the lifespan's client is lazy and never connects.
    settings = Settings(max_body_bytes=64 * 1024, api_keys_file=api_keys.path)
    with TestClient(create_app(settings), headers=api_keys.headers("viewer")) as client:
        yield client


def test_raw_body(http: TestClient) -> None:
    answer = http.post("/logs/analyze", content=LOGS, headers={"content-type": "text/plain"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["source"] == "request body"
    assert body["summary"]["total_lines"] == 3
    assert [t["level"] for t in body["anomalies"]] == ["error"]
    assert body["raw_tokens"] == len(LOGS) // 4
    assert body["summary_tokens"] > 0


def test_multipart_with_a_baseline_flags_new_templates(http: TestClient) -> None:
    baseline = "2024-05-01T09:00:00Z INFO GET /api/cart 200 11ms\n"
    answer = http.post(
        "/logs/analyze",
        files={"file": ("app.log", LOGS.encode()), "baseline": ("healthy.log", baseline.encode())},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["source"] == "app.log"
    assert {t["level"]: t["new"] for t in body["summary"]["templates"]} == {"error": True, "info": False}


def test_format_query_parameter_and_cap(http: TestClient) -> None:
    jsonl = "".join(f'{{"msg": "job {i} kind{i % 5} finished state{i % 5}"}}\n' for i in range(50))
    answer = http.post("/logs/analyze?format=jsonl&max_templates=2", content=jsonl)
    assert answer.status_code == 200, answer.text
    summary = answer.json()["summary"]
    assert len(summary["templates"]) <= 2
    assert summary["total_lines"] == 50


@pytest.mark.parametrize(
    ("url", "kwargs", "status", "words"),
    [
        (
            "/logs/analyze?format=jsonl",
            {"content": '{"msg": "a"}\n{"msg": \n'},
            422,
            "request body: line 2: invalid JSON",
        ),
        ("/logs/analyze?format=xml", {"content": LOGS}, 422, "format"),
        ("/logs/analyze", {"content": b"ok\n\xff\xfe\n"}, 422, "line 2: not UTF-8"),
        ("/logs/analyze", {"content": ""}, 422, "no log lines"),
        ("/logs/analyze", {"files": {"other": ("x.log", b"line\n")}}, 422, "field named 'file'"),
        ("/logs/analyze", {"data": {"file": "not a file"}, "files": {"x": ("x", b"")}}, 422, "file upload"),
        (
            "/logs/analyze?format=csv",
            {"files": {"file": ("app.csv", b"time,message\n1,ok\n2,too,many\n")}},
            422,
            "app.csv: line 3",
        ),
        ("/logs/analyze", {"content": "x" * (65 * 1024)}, 413, "larger than"),
    ],
)
def test_bad_input_is_a_4xx_naming_what_and_where(
    http: TestClient, url: str, kwargs: dict[str, object], status: int, words: str
) -> None:
    answer = http.post(url, **kwargs)  # type: ignore[arg-type]
    assert answer.status_code == status, answer.text
    assert words in answer.json()["message"]
