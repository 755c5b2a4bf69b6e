"""The demo of `remediator dev`: a real service, a real outage, a real fix by Ansible.

It starts `deploy/demo/service.py` as a process of its own, kills it, and sends our API the alert a
monitoring system would send. The incident waits for approval (unless auto-approved), Ansible runs
`restart_service.yml`, which takes the restart command from the demo inventory's `restart_commands`,
and `verify` sees /health answer again.

The alert is sent with a `demo-sender` key of its own, made afresh at every run (a key is shown only
once, so last run's is unknown): an incident's opener may never approve it, so a person approves with
the admin key `remediator dev` printed on its first start.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import typer
import yaml

from activities.config import REPO_ROOT, Settings
from activities.outbound import AllowList
from activities.probe import probe
from api.auth.keys import KeyStore, KeyStoreError
from api.auth.principal import Role
from api.cli.dev_console import remediator_command
from worker.devserver import free_port, port_is_free
from worker.stack import StackInfo
from workflows.incident_models import IncidentState
from workflows.phases import TERMINAL_PHASES
from workflows.policy import Policy

SCRIPT = REPO_ROOT / "deploy" / "demo" / "service.py"
LABELS = {"alertname": "DemoServiceDown", "service": "demo", "severity": "critical", "environment": "dev"}
DEFAULT_API_URL = Settings.model_fields["api_url"].default
FOLLOW_EVERY = 1.0  # seconds between looks at the incident while the demo narrates it
DEMO_HOST = "127.0.0.1"  # the demo service's address: the one host its probes may reach
DEMO_ALLOW = AllowList.parse([DEMO_HOST])
SENDER = "demo-sender"
DEV_ADMIN = "admin"  # the principal of the admin key `remediator dev` makes on its first start


class DemoError(Exception):
    pass


def _health(port: int) -> str:
    return f"http://{DEMO_HOST}:{port}/health"


def say(message: str) -> None:
    typer.echo(f"demo: {message}")


@dataclass(frozen=True)
class Demo:
    state_dir: Path  # absolute: the inventory is handed to Ansible as a path
    port: int = 0  # 0: the previous run's port when free (an open incident probes it), else any

    @property
    def dir(self) -> Path:
        return self.state_dir / "demo"

    @property
    def pidfile(self) -> Path:
        return self.dir / "service.pid"

    @property
    def inventory(self) -> Path:
        return self.dir / "inventory.yml"

    def configure(self, settings: Settings) -> Settings:
        """Point Ansible at the demo inventory (`run` writes it before any incident needs it) and,
        unless REMEDIATOR_POLICY_FILE names one, use the demo policy."""
        self.dir.mkdir(parents=True, exist_ok=True)
        update: dict[str, object] = {
            "ansible_inventory": str(self.inventory),
            "probe_allow": [*settings.probe_allow, DEMO_HOST],
        }
        if settings.policy_file is None:
            update["policy_file"] = self._write_policy(settings.auto_approve)
        return settings.model_copy(update=update)

    def _write_policy(self, auto_approve: bool) -> Path:
        """The built-in policy, except that dev asks a human for changes unless --auto-approve: the
        built-in one auto-approves them, and the demo is there to show an approval."""
        environments = {
            name: env.model_dump(mode="json", exclude_defaults=True)
            for name, env in Policy().environments.items()
        }
        environments[LABELS["environment"]] = {
            "auto_approve": ["read", "change"] if auto_approve else ["read"]
        }
        path = self.dir / "policy.yaml"
        header = "# Written by `remediator dev` for its demo; REMEDIATOR_POLICY_FILE replaces it.\n"
        path.write_text(header + yaml.safe_dump({"environments": environments}, sort_keys=False))
        return path

    def service(self, command: str, port: int = 0) -> list[str]:
        args = [sys.executable, str(SCRIPT), command, "--pidfile", str(self.pidfile)]
        return [*args, "--port", str(port), "--log", str(self.dir / "service.log")] if port else args

    @property
    def _port_file(self) -> Path:
        return self.dir / "port"

    def _recorded_port(self) -> int:
        text = self._port_file.read_text().strip() if self._port_file.exists() else ""
        return int(text) if text.isdigit() else 0

    def health_url(self) -> str | None:
        """The demo service's /health on the port its last run used; None before any run."""
        port = self._recorded_port()
        return _health(port) if port else None

    def _choose_port(self) -> int:
        previous = self._recorded_port()
        port = self.port or (previous if previous and port_is_free(previous) else free_port())
        self._port_file.write_text(str(port))
        return port

    def _write_inventory(self, port: int) -> None:
        host = {
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            # Idempotency markers of the demo's runs stay in the state dir, not in ~/.remediator.
            "remediator_marker_dir": str(self.dir / "markers"),
            # `start` replaces a running instance and detaches, so the service outlives Ansible's run.
            "restart_commands": {LABELS["service"]: shlex.join(self.service("start", port))},
        }
        self.inventory.write_text(yaml.safe_dump({"all": {"hosts": {"localhost": host}}}, sort_keys=False))

    async def _run(self, args: list[str]) -> None:
        proc = await asyncio.create_subprocess_exec(*args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out, _ = await proc.communicate()
        if proc.returncode:
            raise DemoError(out.decode().strip() or f"{shlex.join(args)} exited with {proc.returncode}")

    def sender_key(self, keys: KeyStore) -> str:
        """A new key that may send the demo's alert and read its incident, and nothing else."""
        if any(r.name == SENDER for r in keys.active()):
            keys.revoke(SENDER)
        _, key = keys.create(SENDER, [Role.SENDER, Role.VIEWER], [LABELS["environment"]], [LABELS["service"]])
        return key

    async def run(self, info: StackInfo, auto_approve: bool, keys: KeyStore) -> None:
        """Break the service, raise the alert, narrate the incident; stop the service with the stack."""
        try:
            try:
                headers = {"Authorization": f"Bearer {self.sender_key(keys)}"}
                async with httpx.AsyncClient(timeout=10, headers=headers) as http:
                    incident, health = await self._break_and_alert(http, info)
                    self._explain(info, incident, auto_approve)
                    await self._follow(http, info.api_url, incident)
                    result = await probe(http, health, DEMO_ALLOW)
                    say(f"{health} answers {result.status or result.error}")
            except (DemoError, KeyStoreError, httpx.HTTPError) as err:
                say(f"stopped: {err}")
            await asyncio.Event().wait()  # the service stays up for people to look at, until Ctrl-C
        finally:
            # Also when Ctrl-C comes mid-demo. Blocking on purpose: the loop is shutting down, and
            # the stop takes milliseconds.
            subprocess.run(self.service("stop"), capture_output=True, check=False)

    async def _break_and_alert(self, http: httpx.AsyncClient, info: StackInfo) -> tuple[str, str]:
        """The incident id and the health URL it probes."""
        await self._run(self.service("stop"))  # one left running by an earlier run that was killed
        port = self._choose_port()
        self._write_inventory(port)
        health = _health(port)
        await self._run(self.service("start", port))
        if not (await probe(http, health, DEMO_ALLOW)).ok:
            raise DemoError(f"the demo service started but {health} is not healthy")
        say(f"demo service up: {health} (pidfile {self.pidfile})")
        await self._run(self.service("kill"))
        result = await probe(http, health, DEMO_ALLOW)
        if result.ok:
            raise DemoError(f"the demo service was killed but {health} still answers")
        say(f"killed the demo service for real: {result.error}")
        body = {"labels": LABELS, "annotations": {"probe_url": health, "summary": "demo /health is down"}}
        response = await http.post(f"{info.api_url}/alerts", json=body)
        if response.status_code != 202:
            raise DemoError(f"POST {info.api_url}/alerts answered {response.status_code}: {response.text}")
        outcome = response.json()[0]
        say(f"fired DemoServiceDown at our API: incident {outcome['incident_id']} ({outcome['outcome']})")
        return str(outcome["incident_id"]), health

    def _explain(self, info: StackInfo, incident: str, auto_approve: bool) -> None:
        api = "" if info.api_url == DEFAULT_API_URL else f" --api-url {info.api_url}"
        remediator = remediator_command()
        typer.echo(f"\n  watch it:   {info.ui_url}/namespaces/default/workflows/{incident}")
        typer.echo(f"              {remediator} show {incident}{api}")
        if auto_approve:
            typer.echo("  approval:   --auto-approve is on, so Ansible runs without waiting\n")
            return
        payload = json.dumps({"approver": "alice"}, separators=(",", ":"))
        body = json.dumps({"approver": DEV_ADMIN}, separators=(",", ":"))
        typer.echo(f"  approve it on the board, {info.api_url}/board/incidents/{incident} (log in with the")
        typer.echo("  admin key), or with the admin key in REMEDIATOR_API_KEY, either of:")
        typer.echo(f"    {remediator} approve {incident} --as {DEV_ADMIN}{api}")
        typer.echo(
            f"    curl -X POST {info.api_url}/incidents/{incident}/approve "
            f"-H \"Authorization: Bearer $REMEDIATOR_API_KEY\" -H 'content-type: application/json' -d '{body}'"
        )
        typer.echo("  or, as a trusted operator with access to Temporal itself (no API key involved):")
        typer.echo(
            f"    temporal workflow signal --workflow-id {incident} --name approve "
            f"--input '{payload}' --address {info.temporal_address}\n"
        )

    async def _follow(self, http: httpx.AsyncClient, api_url: str, incident: str) -> None:
        """Wait for the incident to end; the console prints each phase it passes (api/cli/dev_console.py)."""
        state: IncidentState | None = None
        while state is None or state.phase not in TERMINAL_PHASES:
            await asyncio.sleep(FOLLOW_EVERY)
            response = await http.get(f"{api_url}/incidents/{incident}")
            if response.status_code == 200:  # else e.g. 503 while the worker is busy starting
                state = IncidentState.model_validate_json(response.content)
        say(f"{incident} ended {state.phase}")
