"""`remediator dev`, `worker` and the demo as real processes: Temporal, the API, Ansible, signals.

Two `dev` runs share one state dir: the first (approval by hand) then the second (`--auto-approve`),
which also shows that incidents survive a restart and that the demo copes with a re-run.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.auth.keys import KeyStore
from api.cli.demo import LABELS, SCRIPT
from tests.credentials import ApiKeys
from tests.stack.devstack import REMEDIATOR, Dev, alive, children, wait_for
from worker.devserver import free_port, port_is_free
from workflows import search_attributes as sa
from workflows.alerts import label_fingerprint
from workflows.incident_models import IncidentState
from workflows.phases import TERMINAL_PHASES, Phase

pytestmark = pytest.mark.integration

DEMO_ID = f"incident-{label_fingerprint(LABELS)}"
# Same alert, another environment: an incident of its own that waits for approval across a restart.
WAITING_LABELS = {**LABELS, "environment": "restart-check"}
WAITING_ID = f"incident-{label_fingerprint(WAITING_LABELS)}"


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stack") / "state"


@pytest.fixture(scope="module")
def leftover(state_dir: Path) -> Iterator[int]:
    """A demo service still running from an earlier `dev` that was killed: its pid."""
    service = [sys.executable, str(SCRIPT), "start", "--pidfile", str(state_dir / "demo" / "service.pid")]
    (state_dir / "demo").mkdir(parents=True)
    subprocess.run([*service, "--port", str(free_port())], check=True, timeout=30)
    pid = demo_pid(state_dir)
    yield pid
    if alive(pid):  # only when the demo failed to stop it; a test says so
        os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def first(state_dir: Path, leftover: int) -> Iterator[Dev]:
    dev = Dev(state_dir, []).start()
    yield dev
    dev.stop()


@pytest.fixture(scope="module")
def keys(first: Dev) -> ApiKeys:
    """The tests' own keys (test-sender, test-viewer ...) in the key file the first start made."""
    made = ApiKeys.create(first.keys_file, prefix="test-")
    first.reader_key = made.keys["viewer"]
    return made


@pytest.fixture(scope="module")
def bystander() -> Iterator[subprocess.Popen[bytes]]:
    """A live process that is not the demo service, for a stale pidfile to point at."""
    proc = subprocess.Popen(["sleep", "600"])
    yield proc
    proc.kill()
    proc.wait()


@pytest.fixture(scope="module")
def second(first: Dev, keys: ApiKeys, state_dir: Path, bystander: subprocess.Popen[bytes]) -> Iterator[Dev]:
    assert first.stop() == 0
    # A stale pidfile whose pid now belongs to someone else: the demo must not kill that process.
    (state_dir / "demo" / "service.pid").write_text(f"{bystander.pid}\n")
    dev = Dev(state_dir, ["--auto-approve"], reader_key=keys.keys["viewer"]).start()
    yield dev
    dev.stop()


def demo_pid(state_dir: Path) -> int:
    return int((state_dir / "demo" / "service.pid").read_text())


# --- the first run: approval by hand -----------------------------------------------------------


def test_dev_serves_api_ui_and_search_attributes(first: Dev) -> None:
    assert httpx.get(f"{first.api}/healthz").status_code == 200
    ready = httpx.get(f"{first.api}/readyz")
    assert ready.status_code == 200 and ready.json()["temporal"] == first.address
    assert httpx.get(first.ui, follow_redirects=True).status_code == 200
    listed = first.temporal("operator", "search-attribute", "list")
    for key in sa.ALL:
        assert re.search(rf"^\s*{key.name}\s+Keyword\b", listed, re.MULTILINE), listed
    banner = first.output()
    assert f"Temporal  {first.address}" in banner and f"Web UI    {first.ui}" in banner
    assert f"API       {first.api}" in banner and str(first.state_dir.resolve()) in banner


def test_the_dev_server_keeps_its_state_file_in_wal_mode(first: Dev) -> None:
    # WAL mode is recorded in the file itself; the server's own -wal file shows it is in use.
    db = first.state_dir / "temporal.db"
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert db.with_name("temporal.db-wal").exists()


def test_the_first_start_makes_an_admin_key_and_prints_it_once(first: Dev) -> None:
    key = first.printed_admin_key()
    assert key and first.output().count(key) == 2  # the key line and the export line
    record = KeyStore(first.keys_file).verify(key)
    assert record is not None and record.name == "admin" and record.roles == ["admin"]
    assert key not in first.keys_file.read_text()
    assert httpx.get(f"{first.api}/incidents").status_code == 401
    assert httpx.get(f"{first.api}/auth/keys", headers={"Authorization": f"Bearer {key}"}).status_code == 200


@pytest.mark.ansible
def test_demo_outage_is_fixed_by_ansible_after_a_bare_cli_approval(
    first: Dev, keys: ApiKeys, leftover: int
) -> None:
    state = first.wait_incident(DEMO_ID, lambda s: s.phase == Phase.AWAITING_APPROVAL, "awaiting approval")
    assert not alive(leftover), "the demo left an earlier run's service running"
    probe_url = state.alert.annotations["probe_url"]
    killed = demo_pid(first.state_dir)  # the pidfile a crash leaves behind
    assert not alive(killed)
    with pytest.raises(httpx.ConnectError):
        httpx.get(probe_url)
    approve = json.dumps({"approver": "alice"}, separators=(",", ":"))
    command = f"temporal workflow signal --workflow-id {DEMO_ID} --name approve --input '{approve}'"
    assert f"{command} --address {first.address}" in first.output()
    assert f"remediator approve {DEMO_ID} --as admin --api-url {first.api}" in first.output()
    assert '-H "Authorization: Bearer $REMEDIATOR_API_KEY"' in first.output()
    # The demo's alert came with its own sender key, so the admin may approve what it opened.
    sender = KeyStore(first.keys_file).active()
    assert [r.roles for r in sender if r.name == "demo-sender"] == [["sender", "viewer"]]
    assert f"{first.ui}/namespaces/default/workflows/{DEMO_ID}" in first.output()

    first.temporal("workflow", "signal", "--workflow-id", DEMO_ID, "--name", "approve", "--input", approve)

    state = first.wait_incident(DEMO_ID, lambda s: s.phase in (Phase.RESOLVED, Phase.FAILED), "ending")
    assert state.phase == Phase.RESOLVED, state.timeline
    assert [(a.approver, a.approved) for a in state.approvals] == [("alice", True)]
    assert state.plan and state.plan.actions[0].result and state.plan.actions[0].result.changed
    assert httpx.get(probe_url).json() == {"status": "ok"}
    restarted = demo_pid(first.state_dir)
    assert restarted != killed and alive(restarted)
    # Started by Ansible's shell task and detached: it outlived the run and is nobody's child here.
    assert restarted not in [pid for pid, _ in children(first.proc.pid if first.proc else 0)]
    wait_for("the demo to tell the end", lambda: "ended Resolved" in first.output(), timeout=15)


def test_an_incident_waits_for_approval_into_the_restart(first: Dev, keys: ApiKeys) -> None:
    body = {"labels": WAITING_LABELS, "annotations": {"probe_url": "http://127.0.0.1:9/health"}}
    response = httpx.post(f"{first.api}/alerts", json=body, headers=keys.headers("sender"))
    assert response.status_code == 202 and response.json()[0]["incident_id"] == WAITING_ID
    first.wait_incident(WAITING_ID, lambda s: s.phase == Phase.AWAITING_APPROVAL, "awaiting approval")


@pytest.mark.ansible
def test_the_sample_alert_restarts_the_demo_and_the_console_tells_each_phase(
    first: Dev, keys: ApiKeys
) -> None:
    first.wait_incident(DEMO_ID, lambda s: s.phase == Phase.RESOLVED, "resolved")  # the service is up
    pidfile = first.state_dir / "demo" / "service.pid"
    subprocess.run([sys.executable, str(SCRIPT), "kill", "--pidfile", str(pidfile)], check=True, timeout=30)
    # As the README's quick start does it: state dir and API from the environment, an 80-column terminal.
    env = {**os.environ, "REMEDIATOR_STATE_DIR": str(first.state_dir), "REMEDIATOR_API_URL": first.api}
    env["COLUMNS"] = "80"

    def remediator(key: str, *args: str) -> str:
        done = subprocess.run(
            [REMEDIATOR, *args],
            capture_output=True,
            text=True,
            timeout=60,
            env={**env, "REMEDIATOR_API_KEY": key},
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    [incident] = re.findall(
        r"incident-[0-9a-f]{16}", remediator(keys.keys["sender"], "alert", "send", "--sample", "servicedown")
    )
    first.wait_incident(incident, lambda s: s.phase == Phase.AWAITING_APPROVAL, "awaiting approval")
    assert incident in remediator(keys.keys["viewer"], "incidents")  # uncut at 80 columns
    approved = remediator(keys.keys["alice"], "approve", incident)
    assert re.fullmatch(
        rf"approved {incident} as test-alice; phase is now (Executing|Verifying|Resolved)\n", approved
    )
    state = first.wait_incident(incident, lambda s: s.phase in TERMINAL_PHASES, "ending")
    assert state.phase == Phase.RESOLVED, state.timeline
    assert any(e.event == "verify healthy passed" for e in state.timeline), state.timeline
    assert httpx.get(state.alert.annotations["probe_url"]).status_code == 200  # the demo's /health

    def told(phase: Phase) -> str:
        return f"{incident} (ServiceDown, demo) is {phase}: "

    wait_for("the console to tell Resolved", lambda: told(Phase.RESOLVED) in first.output(), timeout=15)
    phases = [Phase.RECEIVED, Phase.GATHERING, Phase.DIAGNOSING, Phase.AWAITING_APPROVAL, Phase.EXECUTING]
    for phase in [*phases, Phase.VERIFYING, Phase.RESOLVED]:
        assert first.output().count(told(phase)) == 1, (phase, first.output())


def assert_stops_everything(dev: Dev, sig: signal.Signals) -> None:
    temporal = dev.temporal_pid()
    service = demo_pid(dev.state_dir)
    started = time.monotonic()
    assert dev.stop(timeout=30, sig=sig) == 0, dev.output()
    assert time.monotonic() - started < 20
    assert not alive(temporal) and not alive(service)
    assert not (dev.state_dir / "demo" / "service.pid").exists()
    for port in (dev.temporal_port, dev.ui_port, dev.api_port):
        assert port_is_free(port), port
    assert "Traceback" not in dev.output()


def test_sigint_stops_the_worker_api_temporal_and_demo(first: Dev) -> None:
    assert_stops_everything(first, signal.SIGINT)


# --- the second run on the same state dir: --auto-approve ------------------------------------


def test_incidents_and_search_attributes_survive_a_restart(first: Dev, second: Dev, keys: ApiKeys) -> None:
    listed = second.temporal("operator", "search-attribute", "list")
    assert all(re.search(rf"^\s*{key.name}\s+Keyword\b", listed, re.MULTILINE) for key in sa.ALL), listed
    incidents = httpx.get(f"{second.api}/incidents", headers=keys.headers("viewer")).json()
    assert {DEMO_ID, WAITING_ID} <= {row["incident_id"] for row in incidents}
    state = second.incident(WAITING_ID)
    assert state and state.phase == Phase.AWAITING_APPROVAL and not state.approvals
    # The workflow itself carried on: this run's worker takes the decision, made with the CLI as the
    # demo prints it and the admin key the first start printed.
    admin = first.printed_admin_key()
    assert admin and second.printed_admin_key() is None
    assert f"API keys  {second.keys_file.resolve()}" in second.output()
    env = {**os.environ, "REMEDIATOR_API_KEY": admin}
    decided = subprocess.run(
        [REMEDIATOR, "reject", WAITING_ID, "--as", "admin", "--reason", "test", "--api-url", second.api],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert decided.returncode == 0, decided.stderr
    assert decided.stdout.startswith(f"rejected {WAITING_ID} as admin;"), decided.stdout
    second.wait_incident(WAITING_ID, lambda s: s.phase == Phase.REJECTED, "rejected")


@pytest.mark.ansible
def test_demo_rerun_with_auto_approve_resolves_unattended(
    second: Dev, bystander: subprocess.Popen[bytes]
) -> None:
    def ended_unattended(state: IncidentState) -> bool:  # this run, not the first run's (alice approved)
        return not state.approvals and state.phase in (Phase.RESOLVED, Phase.FAILED)

    state = second.wait_incident(DEMO_ID, ended_unattended, "to end without an approver")
    assert state.phase == Phase.RESOLVED, state.timeline
    assert any("auto-approves change" in entry.detail for entry in state.timeline), state.timeline
    assert httpx.get(state.alert.annotations["probe_url"]).status_code == 200
    assert bystander.poll() is None, "the demo killed the process a stale pidfile named"
    assert "--auto-approve is on" in second.output()


def test_worker_and_api_alone_use_temporal_environment_settings(second: Dev, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": second.address,
        "TEMPORAL_NAMESPACE": "default",
        "REMEDIATOR_API_KEYS_FILE": str(second.keys_file),
    }
    api_port = free_port()
    out = tmp_path / "out"
    with out.open("wb") as sink:
        worker = subprocess.Popen([REMEDIATOR, "worker"], stdout=sink, stderr=subprocess.STDOUT, env=env)
        api = subprocess.Popen(
            [REMEDIATOR, "api", "--port", str(api_port)], stdout=sink, stderr=subprocess.STDOUT, env=env
        )
    try:
        ready = wait_for("the lone API", lambda: _ready(f"http://127.0.0.1:{api_port}"), timeout=30)
        assert ready["temporal"] == second.address
        wait_for("the worker to poll", lambda: f"of {second.address}" in out.read_text(), timeout=30)
    finally:
        worker.send_signal(signal.SIGTERM)
        api.send_signal(signal.SIGINT)
        for proc in (worker, api):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()  # and the assertion below shows what it printed
                proc.wait()
    assert [worker.returncode, api.returncode] == [0, 0], out.read_text()
    assert "Traceback" not in out.read_text()


def test_sigterm_stops_the_second_run_too(second: Dev) -> None:
    assert_stops_everything(second, signal.SIGTERM)


def _ready(api: str) -> dict[str, str] | None:
    try:
        response = httpx.get(f"{api}/readyz")
    except httpx.HTTPError:
        return None
    return response.json() if response.status_code == 200 else None


# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["api", "temporal"])
def test_a_taken_port_is_named_and_nothing_starts(which: str, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ports = {"api": free_port(), "temporal": free_port(), "ui": free_port(), which: port}
        result = subprocess.run(
            [REMEDIATOR, "dev", "--no-demo", "--state-dir", str(tmp_path)]
            + [arg for name, p in ports.items() for arg in (f"--{name}-port", str(p))],
            capture_output=True,
            text=True,
            timeout=60,
        )
    what = {"api": "API", "temporal": "Temporal"}[which]
    assert result.returncode != 0
    assert f"{what} port {port} is already in use" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "temporal.db").exists()


def test_worker_alone_says_temporal_is_unreachable() -> None:
    env = {**os.environ, "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}"}
    result = subprocess.run([REMEDIATOR, "worker"], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode != 0
    assert "cannot connect to Temporal" in result.stderr and env["TEMPORAL_ADDRESS"] in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_malformed_policy_is_named_with_its_line_before_anything_starts(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("environments:\n  dev: {auto_approve: [bogus]}\n")
    env = {**os.environ, "REMEDIATOR_POLICY_FILE": str(policy)}
    state = tmp_path / "state"
    result = subprocess.run(
        [REMEDIATOR, "dev", "--state-dir", str(state), "--api-port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode != 0
    assert f"{policy}:2: environments.dev.auto_approve[0]" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (state / "temporal.db").exists()


def test_a_dev_server_that_cannot_start_points_at_its_log(tmp_path: Path) -> None:
    (tmp_path / "temporal.db").write_text("not a database")
    ports = [f"--{name}-port={free_port()}" for name in ("temporal", "ui", "api")]
    result = subprocess.run(
        [REMEDIATOR, "dev", "--no-demo", "--state-dir", str(tmp_path), *ports],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode != 0
    assert f"temporal dev server exited with code 1; see {tmp_path / 'temporal.log'}" in result.stderr
    assert "file is not a database" in (tmp_path / "temporal.log").read_text()
    assert "Traceback" not in result.stderr
