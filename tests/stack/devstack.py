"""`remediator dev` as a real subprocess on free ports, and what the stack tests look at."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx

from worker.devserver import free_port, temporal_cli
from workflows.incident_models import IncidentState

REMEDIATOR = str(Path(sys.executable).parent / "remediator")
T = TypeVar("T")


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 60.0, every: float = 0.25) -> T:
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


def children(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the processes whose parent is `pid`."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rpartition(")")[2].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError, IndexError):
            continue  # the process exited while we looked
        if ppid == pid:
            found.append((int(stat.parent.name), cmdline))
    return found


def alive(pid: int) -> bool:
    """Running, and not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


@dataclass
class Dev:
    state_dir: Path
    args: list[str]
    temporal_port: int = field(default_factory=free_port)
    ui_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    reader_key: str = ""  # what `incident` reads with (set once the stack has made its key file)

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.temporal_port}"

    @property
    def ui(self) -> str:
        return f"http://127.0.0.1:{self.ui_port}"

    @property
    def log(self) -> Path:
        return self.state_dir.parent / f"{self.state_dir.name}-dev-{self.api_port}.out"

    def command(self) -> list[str]:
        ports = ["--temporal-port", str(self.temporal_port), "--ui-port", str(self.ui_port)]
        ports += ["--api-port", str(self.api_port), "--state-dir", str(self.state_dir)]
        return [REMEDIATOR, "dev", *ports, *self.args]

    def output(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def start(self) -> Dev:
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT)
        wait_for(f"{self.api}/readyz ({self.output()})", self._ready, timeout=90)
        return self

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"remediator dev exited with {self.proc.returncode}:\n{self.output()}")
        try:
            return httpx.get(f"{self.api}/readyz", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def temporal_pid(self) -> int:
        assert self.proc is not None
        pids = [pid for pid, cmd in children(self.proc.pid) if "server start-dev" in cmd]
        assert len(pids) == 1, children(self.proc.pid)
        return pids[0]

    def stop(self, timeout: float = 30.0, sig: signal.Signals = signal.SIGINT) -> int:
        """SIGINT as Ctrl-C sends it (or `sig`); the exit code. Idempotent."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)

    @property
    def keys_file(self) -> Path:
        return self.state_dir / "api-keys.json"

    def printed_admin_key(self) -> str | None:
        """The admin key the first start of `dev` prints (and no later start does)."""
        found = re.search(r"export REMEDIATOR_API_KEY=(rmd_\S+)", self.output())
        return found.group(1) if found else None

    def incident(self, incident_id: str) -> IncidentState | None:
        headers = {"Authorization": f"Bearer {self.reader_key}"}
        response = httpx.get(f"{self.api}/incidents/{incident_id}", timeout=15, headers=headers)
        return IncidentState.model_validate_json(response.content) if response.status_code == 200 else None

    def wait_incident(
        self, incident_id: str, done: Callable[[IncidentState], bool], what: str, timeout: float = 90
    ) -> IncidentState:
        def check() -> IncidentState | None:
            state = self.incident(incident_id)
            return state if state and done(state) else None

        return wait_for(f"{incident_id} {what}", check, timeout=timeout, every=0.5)

    def temporal(self, *args: str) -> str:
        """The bare Temporal CLI against this stack, as a person would type it."""
        result = subprocess.run(
            [temporal_cli(), *args, "--address", self.address],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout
