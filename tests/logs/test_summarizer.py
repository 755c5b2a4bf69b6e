"""Drain3 summaries: formats, masking, first/last seen, caps and the `new` flag."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from activities.logs import LogFormatError, decode, detect_format, parse_lines, summarize, summarize_lines

NGINX = """\
10.0.0.12 - - [01/May/2024:10:00:03 +0000] "GET /api/cart/123 HTTP/1.1" 200 512 "-" "curl/8.0"
10.0.0.13 - - [01/May/2024:10:00:04 +0000] "GET /api/cart/124 HTTP/1.1" 200 518 "-" "curl/8.0"
10.0.0.14 - - [01/May/2024:10:00:05 +0000] "GET /api/cart/125 HTTP/1.1" 502 157 "-" "curl/8.0"
10.0.0.15 - - [01/May/2024:10:00:09 +0000] "GET /api/cart/126 HTTP/1.1" 200 520 "-" "curl/8.0"
"""


def test_text_lines_become_templates_with_counts_and_times() -> None:
    summary = summarize(NGINX)
    assert summary.total_lines == 4
    ok = next(t for t in summary.templates if t.count == 3)
    assert "<IP>" in ok.template and "<NUM>" in ok.template
    assert ok.first_seen == datetime(2024, 5, 1, 10, 0, 3, tzinfo=UTC)
    assert ok.last_seen == datetime(2024, 5, 1, 10, 0, 9, tzinfo=UTC)
    assert (ok.first_line, ok.last_line) == (1, 4)


def test_an_error_line_is_not_absorbed_into_its_healthy_look_alike() -> None:
    summary = summarize(NGINX)
    failing = [t for t in summary.templates if t.level == "error"]
    assert len(failing) == 1 and failing[0].count == 1
    assert '" 502 ' in failing[0].template
    assert summary.templates[0] == failing[0]  # failures come first


def test_masks_hide_ids_but_keep_what_differs_in_meaning() -> None:
    text = "\n".join(
        f"2024-05-01T10:00:0{i}Z ERROR job {uid} failed on {ip} after {n}ms trace=0x{h}"
        for i, (uid, ip, n, h) in enumerate(
            [
                ("3f2a1b4c-1111-2222-3333-444455556666", "10.1.2.3:8080", 120, "7f3a9c"),
                ("9a8b7c6d-aaaa-bbbb-cccc-ddddeeeeffff", "10.1.2.4:8080", 87, "1b2c3d"),
            ]
        )
    )
    (template,) = summarize(text).templates
    assert template.template == "ERROR job <UUID> failed on <IP> after <NUM> trace=<HEX>"
    assert template.count == 2
    assert len(template.examples) == 2  # the second line names another peer


def test_lines_without_timestamps_are_placed_by_line_number() -> None:
    summary = summarize("worker started\nworker started\nshutting down the worker now\n")
    started = next(t for t in summary.templates if t.count == 2)
    assert started.first_seen is None
    assert (started.first_line, started.last_line) == (1, 2)


def test_json_lines_take_the_message_level_and_time_fields() -> None:
    text = (
        '{"ts": "2024-05-01T10:00:00Z", "level": "error", "msg": "payment 1 declined"}\n'
        '{"time": 1714557605, "severity": "ERROR", "message": "payment 2 declined"}\n'
        '{"@timestamp": 1714557610000, "log": "healthy"}\n'
    )
    summary = summarize(text)
    declined = next(t for t in summary.templates if t.count == 2)
    assert declined.level == "error"
    assert declined.first_seen == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    assert declined.last_seen == datetime(2024, 5, 1, 10, 0, 5, tzinfo=UTC)
    assert summary.total_lines == 3


def test_csv_takes_the_message_column() -> None:
    text = 'timestamp,level,message\n2024-05-01T10:00:00Z,warn,"disk at 91%, cleaning"\n2024-05-01T10:00:01Z,info,ok\n'
    summary = summarize(text)
    assert detect_format(text) == "csv"
    warned = next(t for t in summary.templates if t.level == "warning")
    assert warned.examples == ["disk at 91%, cleaning"]


@pytest.mark.parametrize(
    ("text", "fmt", "line", "words"),
    [
        ('{"msg": "a"}\n{"msg": "b"\n', "jsonl", 2, "invalid JSON"),
        ('{"msg": "a"}\n\n["not", "an", "object"]\n', "jsonl", 3, "JSON object"),
        ('{"msg": "a"}\n{"level": "info"}\n', "jsonl", 2, "no message field"),
        ("time,level\n2024-05-01,info\n", "csv", 1, "no message column"),
        ("time,message\n2024-05-01,ok\n2024-05-01,too,many\n", "csv", 3, "3 columns"),
        ("fine\nbinary\x00junk\n", "text", 2, "NUL"),
    ],
)
def test_bad_input_names_the_line(text: str, fmt: str, line: int, words: str) -> None:
    with pytest.raises(LogFormatError) as caught:
        parse_lines(text, fmt)  # type: ignore[arg-type]
    assert caught.value.line == line
    assert words in str(caught.value)


def test_undecodable_bytes_name_their_line() -> None:
    with pytest.raises(LogFormatError) as caught:
        decode(b"one\ntwo\nthree \xff\xfe\n")
    assert caught.value.line == 3


def test_templates_not_in_the_baseline_are_new() -> None:
    baseline = (
        "2024-05-01T09:00:00Z INFO GET /api/cart 200 12ms\n2024-05-01T09:00:01Z INFO GET /api/cart 200 15ms\n"
    )
    current = (
        "2024-05-01T10:00:00Z INFO GET /api/cart 200 14ms\n"
        "2024-05-01T10:00:01Z ERROR NullPointerException in TaxService.rateFor\n"
    )
    summary = summarize(current, baseline=baseline)
    flags = {t.level: t.new for t in summary.templates}
    assert flags == {"info": False, "error": True}
    assert summary.baseline_lines == 2
    assert summary.total_lines == 2  # the baseline is not counted as the logs under study
    assert [t.level for t in summary.anomalies()] == ["error"]


def test_without_a_baseline_nothing_is_new() -> None:
    assert not any(t.new for t in summarize(NGINX).templates)


def test_the_number_and_length_of_templates_are_capped() -> None:
    # 300 structurally different lines: nothing can be merged, so only the cap keeps this small.
    lines = [
        f"event{i} " + " ".join(f"w{i}x{j}" for j in range(i % 7 + 3)) + " " + "z" * 400 for i in range(300)
    ]
    lines.append("ERROR the one failure that must survive the cap")
    summary = summarize_lines(parse_lines("\n".join(lines)), max_templates=20, max_chars=100)
    assert len(summary.templates) == 20
    assert summary.omitted_templates + len(summary.templates) >= 21
    assert summary.omitted_lines + sum(t.count for t in summary.templates) == 301
    assert all(len(t.template) <= 100 and all(len(e) <= 100 for e in t.examples) for t in summary.templates)
    assert summary.templates[0].level == "error"
    assert "omitted" in summary.render().splitlines()[-1]
