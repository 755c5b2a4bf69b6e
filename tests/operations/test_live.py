"""`remediator run ... --wait`, `operation` and `history` end to end: the CLI, the API, the real dev
server and a real worker running Ansible on localhost."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest
from typer.testing import Result

from activities.config import Settings
from api.app import create_app
from tests.api.support import serve, wait_for
from tests.api.test_cli import cli, failed_cleanly
from worker.devserver import free_port

pytestmark = [pytest.mark.integration, pytest.mark.ansible]
STARTED = re.compile(r"^started (operation-\S+):", re.MULTILINE)
BIG = b"GET /orders 200\n" * 70_000  # 1.1 MB: over the 1m threshold


def _log(ops_dir: Path, node: str, name: str, content: bytes) -> Path:
    path = ops_dir / node / "logs" / name
    path.write_bytes(content)
    return path


async def test_run_wait_rotates_the_logs_of_every_target(ops_api: str, ops_dir: Path) -> None:
    big = {node: _log(ops_dir, node, "app.log", BIG) for node in ("node-a", "node-b")}
    small = _log(ops_dir, "node-a", "audit.log", b"small\n")

    result = await cli(
        "run", "OpsLogRotation", "-t", "node-a", "-t", "node-b", "-p", "min_size=1m",
        "-e", "dev", "--concurrency", "2", "--wait", "--api-url", ops_api,
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert "2 of 2 target(s) resolved (2 resolved); health score 100" in result.output
    for node, log in big.items():
        assert log.stat().st_size == 0, node  # truncated in place, so writers keep their file
        [rotated] = list(log.parent.glob("app.log.*.gz"))
        assert gzip.decompress(rotated.read_bytes()) == BIG
    assert small.read_bytes() == b"small\n"


async def test_health_check_then_operation_and_history_show_it(ops_api: str) -> None:
    healthy, closed = ops_api.removeprefix("http://"), f"127.0.0.1:{free_port()}"
    result = await cli(
        "run", "OpsHealthCheck", "-t", healthy, "-t", closed, "-p", "path=/healthz", "-c", "2",
        "--api-url", ops_api,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    [operation_id] = STARTED.findall(result.output)

    async def finished() -> Result | None:
        shown = await cli("operation", operation_id, "--api-url", ops_api)
        return shown if "COMPLETED" in shown.output.splitlines()[0] else None

    shown = await wait_for(finished, timeout=60, every=0.5)
    assert shown.exit_code == 0, shown.output
    assert f"{operation_id}  OpsHealthCheck (sha256 " in shown.output
    assert "phase Escalated  COMPLETED" in shown.output
    assert re.search(rf"{healthy}\s+│\s+resolved\s+│\s+Resolved", shown.output), shown.output
    assert re.search(rf"{closed}\s+│\s+escalated\s+│\s+Escalated\s+│\s+1\s+│\s+down: ", shown.output)
    assert "1 of 2 target(s) resolved (1 resolved, 1 escalated); health score 50" in shown.output

    listed = await cli("history", "--kind", "operations", "--limit", "20", "--api-url", ops_api)
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.output.splitlines() if operation_id in line)
    assert "OpsHealthCheck" in row and "Escalated" in row and "COMPLETED" in row
    assert operation_id in (await cli("history", "--api-url", ops_api)).output
    incidents_only = await cli("history", "--kind", "incidents", "--api-url", ops_api)
    assert incidents_only.exit_code == 0 and operation_id not in incidents_only.output


async def test_batch_restart_dry_run_previews_and_restarts_nothing(ops_api: str, ops_dir: Path) -> None:
    target = ops_api.removeprefix("http://")  # 127.0.0.1:<port>: Ansible's host, and the probe's
    result = await cli(
        "run", "OpsBatchRestart", "-t", target, "-p", "service=shop", "-p", "path=/healthz", "-e", "dev",
        "--dry-run", "--wait", "--api-url", ops_api,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "1 of 1 target(s) resolved (1 resolved); health score 100; dry-run: nothing was executed" in (
        result.output
    )
    assert "Escalated" in result.output  # like a dry-run incident: nothing was done, a human must act
    assert not (ops_dir / "shop.restarted").exists()


async def test_bad_requests_fail_in_one_line(ops_api: str) -> None:
    failed_cleanly(
        await cli("run", "NoSuchPlaybook", "-t", "x", "--api-url", ops_api),
        "playbook: no playbook named 'NoSuchPlaybook' (known: ",
    )
    failed_cleanly(
        await cli("run", "OpsBackup", "-t", "x", "-p", "paths=/etc", "--api-url", ops_api),
        "params: OpsBackup has no param 'paths' (its params: none) (HTTP 422)",
    )
    failed_cleanly(
        await cli("run", "OpsBatchRestart", "-t", "web-1", "--api-url", ops_api),
        "params: target 'web-1': param service: no default and the alert has no 'service' label",
    )
    failed_cleanly(
        await cli("run", "OpsLogRotation", "-t", "node-a", "-p", "min_size=lots", "--api-url", ops_api),
        "param min_size: 'lots' does not match '[0-9]+[kmg]?'",
    )
    failed_cleanly(await cli("run", "OpsBackup", "-t", "x", "-p", "=v", "--api-url", ops_api), "--param '=v'")
    failed_cleanly(
        await cli("run", "OpsBackup", "-t", "a b", "--api-url", ops_api), "target 'a b': letters, digits"
    )
    failed_cleanly(
        await cli("operation", "operation-nope-1", "--api-url", ops_api), "no operation operation-nope-1"
    )
    failed_cleanly(await cli("history", "--kind", "alerts", "--api-url", ops_api), "--kind 'alerts'")


async def test_temporal_or_api_unreachable_is_one_line(ops_settings: Settings) -> None:
    async with serve(create_app(ops_settings, f"127.0.0.1:{free_port()}")) as url:
        failed_cleanly(await cli("run", "OpsBackup", "-t", "x", "--api-url", url), "is unreachable")
        failed_cleanly(await cli("history", "--api-url", url), "(HTTP 503)")
    failed_cleanly(
        await cli("run", "OpsBackup", "-t", "x", "--api-url", f"http://127.0.0.1:{free_port()}"),
        "cannot reach the Remediator API",
    )
