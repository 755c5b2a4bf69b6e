"""POST /logs/analyze stays bounded: huge lines are clipped with a marker, lines past the cap are not
read, and a body past the size limit is a 413, never a 500."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from activities.config import Settings
from activities.logs import LineLimits, analyze
from api.app import create_app
from tests.credentials import ApiKeys

MB = 1_048_576


@pytest.fixture(scope="module")
def http(api_keys: ApiKeys) -> Iterator[TestClient]:
    settings = Settings(
        max_body_bytes=2 * MB, logs_max_line_chars=1000, logs_max_lines=500, api_keys_file=api_keys.path
    )
    with TestClient(create_app(settings), headers=api_keys.headers("viewer")) as client:
        yield client


@pytest.mark.parametrize("fmt", ["text", "jsonl", "csv"])
def test_a_one_megabyte_line_is_clipped_with_a_marker(http: TestClient, fmt: str) -> None:
    huge = "ERROR " + "x" * MB
    body = {
        "text": f"INFO started\n{huge}\n",
        "jsonl": f'{{"msg": "INFO started"}}\n{{"msg": "{huge}"}}\n',
        "csv": f"level,message\ninfo,started\nerror,{huge}\n",
    }[fmt]
    answer = http.post(f"/logs/analyze?format={fmt}", content=body)
    if fmt == "csv":  # Python's csv reader refuses fields past 128 KiB: a clear 422 naming the line
        assert answer.status_code == 422 and "line 3: malformed CSV" in answer.text, answer.text
        return
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["clipped_lines"] == 1 and result["summary"]["total_lines"] == 2
    examples = [e for t in result["summary"]["templates"] for e in t["examples"]]
    assert all(len(e) < 1200 for e in examples)


def test_lines_past_the_cap_are_not_read(http: TestClient) -> None:
    body = "".join(f"INFO request {i} served\n" for i in range(2000))
    result = http.post("/logs/analyze", content=body).json()
    assert result["summary"]["total_lines"] == 500 and result["line_cap_reached"] is True


def test_a_body_past_the_limit_is_413(http: TestClient) -> None:
    answer = http.post("/logs/analyze", content="E" * (3 * MB))
    assert answer.status_code == 413 and "REMEDIATOR_MAX_BODY_BYTES" in answer.json()["message"]


def test_the_marker_says_how_much_was_cut() -> None:
    result = analyze("x", "ERROR " + "y" * 100 + "\n", "text", limits=LineLimits(line_chars=10, lines=5))
    [template] = result.summary.templates
    assert template.examples == ["ERROR yyyy… [truncated 96 chars]"]
