"""`remediator memory search|copy`: moving a team's SQLite memory to a Qdrant server, and one-line errors."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from pathlib import Path

from click.testing import Result
from typer.testing import CliRunner

from activities.memory.sqlite import SqliteDocuments
from activities.memory.store import MemoryStore
from api.cli import app
from tests.memory.fake_qdrant import FakeQdrant
from tests.memory.test_memory_store import remember
from worker.devserver import free_port

runner = CliRunner()


async def invoke(args: list[str], env: dict[str, str]) -> Result:
    # in a thread: the command runs its own event loop, and the test's server answers on this one
    return await asyncio.to_thread(runner.invoke, app, args, env={"COLUMNS": "200", **env})


def qdrant_env(server: FakeQdrant, tmp_path: Path) -> dict[str, str]:
    return {
        "REMEDIATOR_STATE_DIR": str(tmp_path / "state"),
        "REMEDIATOR_RUNBOOK_DIR": str(tmp_path / "no-runbooks"),
        "REMEDIATOR_MEMORY_BACKEND": "qdrant",
        "REMEDIATOR_QDRANT_URL": server.url,
        "REMEDIATOR_QDRANT_API_KEY": server.api_key,
        "REMEDIATOR_QDRANT_COLLECTION": f"cli-{uuid.uuid4().hex[:8]}",
    }


async def test_a_sqlite_memory_copied_to_a_qdrant_server_is_recalled_there(
    fake_qdrant: FakeQdrant, tmp_path: Path
) -> None:
    old = tmp_path / "old" / "memory.sqlite3"
    await remember(MemoryStore(SqliteDocuments(old)))
    env = qdrant_env(fake_qdrant, tmp_path)

    copied = await invoke(["memory", "copy", str(old)], env)
    again = await invoke(["memory", "copy", str(old)], env)  # the same documents, overwritten
    found = await invoke(["memory", "search", "payments OOMKilled", "--kind", "incident", "--json"], env)
    table = await invoke(["memory", "search", "checkout health", "--limit", "2"], env)
    every = await invoke(["memory", "search", "restart", "--limit", "20", "--json"], env)

    assert copied.exit_code == 0, copied.output
    assert (
        copied.stdout
        == f"copied 4 incidents and 0 runbook sections from {old} to Qdrant at {fake_qdrant.url}\n"
    )
    assert again.exit_code == 0, again.output
    hits = json.loads(found.stdout)["hits"]
    assert (hits[0]["id"], hits[0]["category"]) == ("incident:incident-a2:2026-03-01T00:00:00+00:00", "oom")
    assert len(json.loads(every.stdout)["hits"]) == 4  # copied twice, stored once
    assert table.exit_code == 0, table.output
    assert "ServiceDown on checkout: Resolved" in table.stdout
    assert f"2 hits from Qdrant at {fake_qdrant.url}" in table.stdout


async def test_errors_name_the_file_or_the_server(fake_qdrant: FakeQdrant, tmp_path: Path) -> None:
    not_a_database = tmp_path / "notes.sqlite3"
    not_a_database.write_text("just notes\n")
    env = qdrant_env(fake_qdrant, tmp_path)
    broken = await invoke(["memory", "copy", str(not_a_database)], env)
    unreachable = f"http://127.0.0.1:{free_port()}"
    down = await invoke(["memory", "search", "disk"], {**env, "REMEDIATOR_QDRANT_URL": unreachable})
    itself = await invoke(
        ["memory", "copy", str(not_a_database)],
        {"REMEDIATOR_MEMORY_PATH": str(not_a_database), "REMEDIATOR_STATE_DIR": str(tmp_path)},
    )

    assert (broken.exit_code, broken.stderr) == (
        1,
        f"error: memory file {not_a_database}: file is not a database\n",
    )
    assert down.exit_code == 1
    assert down.stderr.startswith(f"error: Qdrant at {unreachable}: cannot create the collection: ")
    assert itself.exit_code == 1 and "is the configured memory itself" in itself.stderr


def test_invalid_settings_are_one_line_naming_the_variable(tmp_path: Path) -> None:
    remediator = Path(sys.executable).parent / "remediator"
    env = {"PATH": "/usr/bin:/bin", "REMEDIATOR_QDRANT_URL": "http://127.0.0.1:6333"}
    result = subprocess.run(
        [remediator, "memory", "search", "disk"], env=env, capture_output=True, text=True, timeout=60
    )
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        "remediator: invalid settings: REMEDIATOR_QDRANT_URL is set but REMEDIATOR_MEMORY_BACKEND is not qdrant\n"
    )
