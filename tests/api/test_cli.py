"""The incident CLI against the real API (uvicorn on a free port) and the real dev server."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from api.cli import app
from tests.api.support import LIVE_SERVICE, LiveService, load, uniquely, wait_for, wait_for_phase
from tests.credentials import APPROVERS, ApiKeys, ByRoute
from worker.devserver import free_port
from workflows.phases import Phase

pytestmark = pytest.mark.integration

runner = CliRunner()
INCIDENT_ID = re.compile(r"incident-[A-Za-z0-9._-]+")


KEYS: list[ApiKeys] = []  # the session's keys, for `cli` (shared with tests/operations)


@pytest.fixture(autouse=True)
def cli_keys(api_keys: ApiKeys) -> None:
    KEYS[:] = [api_keys]


def key_for(args: tuple[str, ...]) -> str:
    """REMEDIATOR_API_KEY as each person would set it: the sender's for alerts, the approver's own."""
    keys = KEYS[0]
    if args[:1] == ("alert",):
        return keys.keys["sender"]
    if args[:1] == ("run",) or args[:2] in (
        ("schedule", "create"),
        ("schedule", "delete"),
        ("schedule", "trigger"),
    ):
        return keys.keys["operator"]
    if args[:1] in (("approve",), ("reject",)):
        named = args[args.index("--as") + 1] if "--as" in args else "alice"
        return keys.keys[named if named in APPROVERS else "alice"]
    return keys.keys["viewer"]


async def cli(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run `remediator ARGS` in a thread, so this event loop keeps serving the API and the worker."""
    wide = {"COLUMNS": "250", "REMEDIATOR_API_KEY": key_for(args), **(env or {})}
    return await asyncio.to_thread(runner.invoke, app, list(args), env=wide)


def ids(output: str) -> list[str]:
    return INCIDENT_ID.findall(output)


def rows(output: str) -> list[list[str]]:
    """The cells of each table row that names an incident."""
    return [[c.strip() for c in line.strip("│ ").split("│")] for line in output.splitlines() if ids(line)]


def failed_cleanly(result: Result, message: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: "), result.stderr
    assert message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output


@pytest.mark.ansible
async def test_send_list_show_approve_and_reject(
    live_api: str, live_service: LiveService, tmp_path: Path
) -> None:
    token = uuid.uuid4().hex[:8]
    # Each names an endpoint that is down until its incident's restart (the ServiceDown playbook probes).
    alerts = [
        {
            "alertname": "ServiceDown",
            "fingerprint": f"cli-{token}-{n}",
            "labels": {"service": LIVE_SERVICE, "instance": f"cli-{token}-{n}", "severity": "critical"},
            "annotations": {
                "probe_url": live_service.probe_url(f"cli-{token}-{n}"),
                "summary": "[FIRING] down",
            },
        }
        for n in (1, 2)
    ]
    file = tmp_path / "alerts.json"
    file.write_text(json.dumps(alerts))
    sent = await cli("alert", "send", str(file), "--api-url", live_api)
    assert sent.exit_code == 0, sent.output
    first, second = ids(sent.output)
    assert sent.output.count("started") == 2 and "ServiceDown" in sent.output

    for incident_id in (first, second):
        await wait_for_phase_via_api(live_api, incident_id)

    async def listed() -> Result | None:
        result = await cli(
            "incidents", "--service", LIVE_SERVICE, "--phase", "AwaitingApproval", "--api-url", live_api
        )
        return result if {first, second} <= set(ids(result.output)) else None

    table = await wait_for(listed, timeout=20)
    assert table.exit_code == 0
    [row] = [row for row in rows(table.stdout) if row[0] == first]
    assert row[1:5] == ["AwaitingApproval", "ServiceDown", LIVE_SERVICE, "critical"]
    assert row[-1] == "RUNNING"
    # On an 80-column terminal every other column gives way before an id is cut.
    narrow = await cli("incidents", "--service", LIVE_SERVICE, "--api-url", live_api, env={"COLUMNS": "80"})
    assert {first, second} <= {row[0] for row in rows(narrow.stdout)}, narrow.stdout
    as_json = await cli("incidents", "--service", LIVE_SERVICE, "--json", "--api-url", live_api)
    listed_json = {row["incident_id"]: row for row in json.loads(as_json.stdout)}
    assert listed_json[first]["phase"] == "AwaitingApproval" and listed_json[first]["service"] == LIVE_SERVICE

    shown = await cli("show", first.removeprefix("incident-"), "--api-url", live_api)
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert lines[0] == f"{first}  phase AwaitingApproval"
    assert any(line.split() == ["alert:", "ServiceDown", "(firing,", "from", "generic)"] for line in lines)
    for expected in (
        "timeline",
        "awaiting approval",
        "preview of restart",
        "actions",
        "ansible: restart-service",
    ):
        assert expected in shown.stdout, expected

    approved = await cli("approve", first, "--as", "alice", "--reason", "go ahead", "--api-url", live_api)
    assert approved.exit_code == 0, approved.output
    # The phase the decision led to, not the AwaitingApproval the update answered in.
    assert re.fullmatch(
        rf"approved {first} as alice; phase is now (Executing|Verifying|Resolved)\n", approved.stdout
    ), approved.stdout
    failed_cleanly(
        await cli("approve", first, "--as", "alice", "--api-url", live_api),
        f"incident {first} refused the decision",
    )

    rejected = await cli(
        "reject", second.removeprefix("incident-"), "--as", "bob", "--reason", "freeze", "--api-url", live_api
    )
    assert rejected.exit_code == 0, rejected.output
    assert rejected.stdout == f"rejected {second} as bob; phase is now Rejected\n"
    await wait_for_phase_via_api(live_api, second, Phase.REJECTED)
    failed_cleanly(
        await cli("approve", second, "--as", "carol", "--api-url", live_api),
        f"incident {second} is no longer running (COMPLETED) (HTTP 409)",
    )
    shown = await cli("show", second, "--api-url", live_api)
    assert "approvals" in shown.stdout
    approvals = [
        [c.strip() for c in line.strip("│ ").split("│")]
        for line in shown.stdout.splitlines()
        if "bob" in line
    ]
    assert any(row[:3] == ["bob", "rejected", "freeze"] for row in approvals), shown.stdout


async def wait_for_phase_via_api(api: str, incident_id: str, phase: Phase = Phase.AWAITING_APPROVAL) -> None:
    async with httpx.AsyncClient(base_url=api, timeout=30, auth=ByRoute(KEYS[0])) as http:
        await wait_for_phase(http, incident_id, phase)


async def test_send_detects_alertmanager_and_grafana_files(idle_api: str, tmp_path: Path) -> None:
    for fixture, expected in (
        ("alertmanager_multi.json", ["started", "started", "ignored"]),
        ("grafana_firing.json", ["started", "ignored"]),
    ):
        file = tmp_path / fixture
        file.write_text(json.dumps(uniquely(load(fixture))))
        result = await cli("alert", "send", str(file), "--api-url", idle_api)
        assert result.exit_code == 0, result.output
        assert [row[-1] for row in rows(result.stdout)] == expected, result.stdout


@pytest.fixture
def demo_state(tmp_path: Path) -> dict[str, str]:
    """REMEDIATOR_STATE_DIR of a `remediator dev` whose demo service last ran on port 18080."""
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "port").write_text("18080")
    return {"REMEDIATOR_STATE_DIR": str(tmp_path)}


async def test_send_sample_with_labels_and_resolution(idle_api: str, demo_state: dict[str, str]) -> None:
    instance = f"sample-{uuid.uuid4().hex[:8]}"
    args = [
        "alert",
        "send",
        "--sample",
        "servicedown",
        "--label",
        f"instance={instance}",
        "--api-url",
        idle_api,
    ]
    fired = await cli(*args, env=demo_state)
    assert fired.exit_code == 0, fired.output
    assert "started" in fired.stdout and "firing" in fired.stdout
    resolved = await cli(*args, "--resolved", env=demo_state)
    assert resolved.exit_code == 0, resolved.output
    assert ids(resolved.stdout) == ids(fired.stdout)
    assert "signalled" in resolved.stdout and "resolved" in resolved.stdout


async def test_api_url_comes_from_the_environment(idle_api: str) -> None:
    result = await cli(
        "incidents", "--alertname", f"None{uuid.uuid4().hex[:8]}", env={"REMEDIATOR_API_URL": idle_api}
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "no incidents match"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "nosuchincident"], "no incident incident-nosuchincident (HTTP 404)"),
        (["approve", "nosuchincident", "--as", "alice"], "no incident incident-nosuchincident (HTTP 404)"),
        (
            ["reject", "incident-nosuchincident", "--as", "bob"],
            "no incident incident-nosuchincident (HTTP 404)",
        ),
        (["show", "bad id"], "path parameter incident_id"),
        (["incidents", "--service", "x'y"], "query parameter service"),
        (["approve", "abc", "--as", ""], "approver: String should have at least 1 character (HTTP 422)"),
        (
            ["alert", "send"],
            "give either a FILE or --sample NAME; for --sample, choose one of: servicedown (",
        ),
        (["alert", "send", "--sample", "nosuch"], "unknown sample 'nosuch'; choose one of: servicedown ("),
        (
            ["alert", "send", "--sample", "servicedown", "--label", "novalue"],
            "--label 'novalue': expected KEY=VALUE",
        ),
    ],
)
async def test_errors_are_one_line_and_exit_1(idle_api: str, args: list[str], message: str) -> None:
    failed_cleanly(await cli(*args, "--api-url", idle_api), message)


async def test_bad_files_name_the_file_and_line(idle_api: str, tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('[\n  {"alertname": "X",\n   "labels": {"a": "b"}\n  }\n  {"alertname": "Y"}\n]\n')
    failed_cleanly(
        await cli("alert", "send", str(broken), "--api-url", idle_api),
        f"{broken}:5:3: invalid JSON: Expecting ',' delimiter",
    )
    failed_cleanly(
        await cli("alert", "send", str(tmp_path / "missing.json"), "--api-url", idle_api), "cannot read"
    )
    invalid = tmp_path / "invalid.json"
    invalid.write_text(json.dumps({"labels": {"instance": "x"}}))
    failed_cleanly(
        await cli("alert", "send", str(invalid), "--api-url", idle_api),
        "alert.alertname: Field required (HTTP 422)",
    )


async def test_a_bare_sample_option_lists_the_choices() -> None:
    failed_cleanly(
        await cli("alert", "send", "--sample"),
        "--sample needs a NAME; choose one of: servicedown (the `remediator dev` demo service is down",
    )


async def test_the_sample_needs_a_demo_to_verify_with(idle_api: str, tmp_path: Path) -> None:
    failed_cleanly(
        await cli("alert", "send", "--sample", "servicedown", env={"REMEDIATOR_STATE_DIR": str(tmp_path)}),
        f"the servicedown sample probes the `remediator dev` demo service, and {tmp_path.resolve()} has none",
    )


async def test_unreachable_api_is_a_clear_error(demo_state: dict[str, str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    for args in (
        ["incidents"],
        ["show", "abc"],
        ["approve", "abc", "--as", "alice"],
        ["alert", "send", "--sample", "servicedown"],
    ):
        failed_cleanly(
            await cli(*args, "--api-url", url, env=demo_state), f"cannot reach the Remediator API at {url}"
        )


async def test_bad_api_url_or_environment_is_a_clear_error() -> None:
    failed_cleanly(await cli("incidents", "--api-url", "http://"), "cannot reach the Remediator API at http:")
    failed_cleanly(
        await cli("incidents", "--api-url", "ftp://x"), "cannot reach the Remediator API at ftp://x"
    )
    bad_setting = await cli("incidents", env={"REMEDIATOR_MAX_BODY_BYTES": "lots"})
    assert (bad_setting.exit_code, bad_setting.stderr) == (
        2,
        "remediator: invalid settings: REMEDIATOR_MAX_BODY_BYTES: "
        "Input should be a valid integer, unable to parse string as an integer\n",
    )


async def test_usage_errors_exit_2() -> None:
    result = await cli("incidents", "--phase", "Bogus")
    assert result.exit_code == 2
    assert "Bogus" in result.output and "Traceback" not in result.output


async def test_alert_text_is_printed_verbatim(idle_api: str, tmp_path: Path) -> None:
    file = tmp_path / "markup.json"
    file.write_text(json.dumps({"alertname": "Disk[bold]Full[/bold]", "labels": {"run": uuid.uuid4().hex}}))
    result = await cli("alert", "send", str(file), "--api-url", idle_api)
    assert result.exit_code == 0, result.output
    assert "Disk[bold]Full[/bold]" in result.stdout
