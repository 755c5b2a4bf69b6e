"""`remediator auth key ...` on the local file, and what the CLI says when the API refuses it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from typer.testing import CliRunner, Result

from api.auth.keys import KeyStore
from api.cli import app
from tests.credentials import ApiKeys

runner = CliRunner()


def run(keys_file: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return runner.invoke(
        app, list(args), env={"COLUMNS": "250", "REMEDIATOR_API_KEYS_FILE": str(keys_file), **(env or {})}
    )


def test_create_prints_the_key_once_list_never_shows_it_revoke_ends_it(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys.json"
    created = run(
        keys_file, "auth", "key", "create", "--name", "am-prod", "--role", "sender",
        "--environment", "prod", "--service", "payments-*",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    key = created.stdout.strip()
    assert key.startswith("rmd_") and "export REMEDIATOR_API_KEY=" in created.stderr
    [record] = json.loads(keys_file.read_text())
    assert key not in keys_file.read_text() and record["name"] == "am-prod"
    assert KeyStore(keys_file).verify(key) is not None

    listed = run(keys_file, "auth", "key", "list")
    assert listed.exit_code == 0, listed.output
    assert "am-prod" in listed.stdout and "sender" in listed.stdout and "payments-*" in listed.stdout
    assert key not in listed.output and key.split("_")[-1] not in listed.output
    assert record["sha256"] not in listed.output

    revoked = run(keys_file, "auth", "key", "revoke", "am-prod")
    assert revoked.exit_code == 0 and f"revoked key {record['id']} of 'am-prod'" in revoked.stdout
    assert KeyStore(keys_file).verify(key) is None
    again = run(keys_file, "auth", "key", "revoke", record["id"])
    assert again.exit_code == 1 and "no active key with id or name" in again.stderr


def test_bad_create_arguments_are_one_line_errors(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys.json"
    risk = run(keys_file, "auth", "key", "create", "--name", "a", "--role", "approver", "--risk", "huge")
    assert (
        risk.exit_code == 1 and risk.stderr == "error: --risk 'huge': choose from read, change, destructive\n"
    )
    role = run(keys_file, "auth", "key", "create", "--name", "a", "--role", "root")
    assert role.exit_code == 2 and "root" in role.output
    name = run(keys_file, "auth", "key", "create", "--name", "no spaces", "--role", "viewer")
    assert name.exit_code == 1 and "name: String should match pattern" in name.stderr
    assert not keys_file.exists() or json.loads(keys_file.read_text()) == []
    empty = run(keys_file, "auth", "key", "list")
    assert empty.stdout.strip() == f"no keys in {keys_file}"


async def cli(api_url: str, *args: str, key: str | None) -> Result:
    env = {"COLUMNS": "250", "REMEDIATOR_API_URL": api_url, "REMEDIATOR_API_KEY": key or ""}
    return await asyncio.to_thread(runner.invoke, app, list(args), env=env)


async def test_the_cli_sends_the_key_and_says_what_to_do_when_refused(
    api_url: str, api_keys: ApiKeys, tmp_path: Path
) -> None:
    alert = tmp_path / "alert.json"
    alert.write_text(
        json.dumps({"alertname": "DiskFull", "labels": {"service": "web", "environment": "dev"}})
    )
    missing = await cli(api_url, "incidents", key=None)
    assert missing.exit_code == 1
    assert missing.stderr == (
        "error: the API needs a key: export REMEDIATOR_API_KEY=<key> "
        "(`remediator auth key create` makes one) (HTTP 401)\n"
    )
    wrong = await cli(api_url, "incidents", key="rmd_000000000000_wrong")
    assert wrong.exit_code == 1 and wrong.stderr.startswith("error: the API refused REMEDIATOR_API_KEY: ")
    forbidden = await cli(api_url, "alert", "send", str(alert), key=api_keys.keys["viewer"])
    assert forbidden.exit_code == 1
    assert forbidden.stderr == (
        "error: viewer 'viewer' lacks permission alerts:send; use a key whose role grants alerts:send "
        "in REMEDIATOR_API_KEY (HTTP 403)\n"
    )
    # With the right key the request gets past access control (Temporal is unreachable here).
    allowed = await cli(api_url, "alert", "send", str(alert), key=api_keys.keys["sender"])
    assert allowed.exit_code == 1 and "(HTTP 503)" in allowed.stderr
