"""`remediator logs analyze FILE`: table and JSON output, gzip, baselines and errors naming file and line."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from typer.testing import CliRunner

from api.cli import app

runner = CliRunner()
LOGS = (
    "2024/05/01 10:00:01 [error] 29#29: *50213 connect() failed (111: Connection refused) while connecting "
    'to upstream, client: 10.244.0.1, server: www, request: "GET /api/menu HTTP/1.1", '
    'upstream: "http://10.244.3.17:8080/api/menu", host: "www"\n'
    '10.244.0.1 - - [01/May/2024:10:00:01 +0000] "GET /api/menu HTTP/1.1" 502 157 "-" "curl/8.0"\n'
    '10.244.0.1 - - [01/May/2024:10:00:02 +0000] "GET /api/menu HTTP/1.1" 200 1157 "-" "curl/8.0"\n'
)


def test_table_output_shows_templates_and_the_reduction(tmp_path: Path) -> None:
    path = tmp_path / "web.log"
    path.write_text(LOGS)
    result = runner.invoke(app, ["logs", "analyze", str(path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "3 lines -> 3 templates" in result.stdout
    assert "[error]" in result.stdout  # rich markup in log text is shown, not interpreted
    assert "tokens (len/4 estimate)" in result.stdout


def test_json_output_of_a_gzipped_file_with_a_baseline(tmp_path: Path) -> None:
    path = tmp_path / "web.log.gz"
    path.write_bytes(gzip.compress(LOGS.encode()))
    baseline = tmp_path / "healthy.log"
    baseline.write_text(LOGS.splitlines()[-1] + "\n")
    result = runner.invoke(app, ["logs", "analyze", str(path), "--baseline", str(baseline), "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["source"] == str(path)
    assert body["summary"]["total_lines"] == 3
    assert body["summary"]["baseline_lines"] == 1
    assert sorted(t["new"] for t in body["summary"]["templates"]) == [False, True, True]
    assert len(body["anomalies"]) == 2


def test_a_malformed_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "app.jsonl"
    path.write_text('{"msg": "ok"}\n{"msg": "ok"}\n{"msg": oops}\n')
    result = runner.invoke(app, ["logs", "analyze", str(path)])
    assert result.exit_code == 2
    assert f"{path}: line 3: invalid JSON" in result.stderr
    assert "Traceback" not in result.output


def test_a_bad_baseline_is_named_as_such(tmp_path: Path) -> None:
    path, baseline = tmp_path / "now.log", tmp_path / "before.log"
    path.write_text('{"msg": "ok"}\n')
    baseline.write_text('{"msg": "ok"}\n{"level": "info"}\n')
    result = runner.invoke(app, ["logs", "analyze", str(path), "--baseline", str(baseline)])
    assert result.exit_code == 2
    assert f"{baseline}: line 2: no message field" in result.stderr


def test_binary_and_corrupt_files_are_errors_not_tracebacks(tmp_path: Path) -> None:
    binary, corrupt = tmp_path / "core.log", tmp_path / "broken.log.gz"
    binary.write_bytes(b"fine\n\x89PNG\xff\n")
    corrupt.write_bytes(b"not gzip at all")
    first = runner.invoke(app, ["logs", "analyze", str(binary)])
    assert first.exit_code == 2 and f"{binary}: line 2: not UTF-8" in first.stderr
    second = runner.invoke(app, ["logs", "analyze", str(corrupt)])
    assert second.exit_code == 2 and f"{corrupt}: cannot read" in second.stderr
