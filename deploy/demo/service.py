"""The demo service: a tiny HTTP server whose `GET /health` answers 200.

`remediator dev` starts it, kills it to cause a real outage, and Ansible restarts it with the very
same `start` command (the demo inventory's `restart_commands`). Standard library only, because
Ansible runs it as a plain script.

    service.py start --port 8099 --pidfile demo.pid --log demo.log   # (re)start, detached
    service.py kill --pidfile demo.pid                               # crash it: SIGKILL
    service.py stop --pidfile demo.pid                               # clean stop: SIGTERM
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NoReturn

SCRIPT = Path(__file__).name.encode()


class Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        ok = self.path == "/health"
        body = b'{"status": "ok"}\n' if ok else b'{"error": "not found"}\n'
        self.send_response(200 if ok else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Silent: the verify activity probes every few seconds and would flood the log."""


def running_pid(pidfile: Path) -> int | None:
    """The pid in `pidfile` if that process is alive and is this service.

    A pidfile outlives a crash and pids get reused, so a live pid alone proves nothing: the
    command line must name this script. A zombie has an empty command line, so it counts as gone.
    """
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.parent.exists() and SCRIPT not in cmdline.read_bytes():
        return None
    return pid


def signal_service(pidfile: Path, sig: signal.Signals, timeout: float = 10.0) -> int | None:
    """Send `sig` to the running service and wait until it is gone; the pid, or None if none ran."""
    pid = running_pid(pidfile)
    if pid is None:
        return None
    os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while running_pid(pidfile) == pid:
        if time.monotonic() > deadline:
            sys.exit(f"demo service (pid {pid}) did not exit after {sig.name}")
        time.sleep(0.05)
    return pid


def detach(log: Path) -> int:
    """Double fork into a new session, so the service outlives its caller (a shell, Ansible's run).

    The caller's process returns only once the service closes the returned pipe end (or dies), so
    whoever runs `start` can rely on the pidfile and the bound port as soon as it returns.
    """
    ready_r, ready_w = os.pipe()
    if os.fork():
        os.close(ready_w)
        os.read(ready_r, 1)  # EOF when the service closes its end, or dies
        os._exit(0)
    os.close(ready_r)
    os.setsid()  # no SIGHUP when the caller's terminal or Ansible's pty goes away
    if os.fork():
        os._exit(0)  # the service is not a session leader, so it can never regain a terminal
    devnull = os.open(os.devnull, os.O_RDONLY)
    out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(devnull, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    return ready_w


def start(port: int, pidfile: Path, log: Path) -> NoReturn:
    stopped = signal_service(pidfile, signal.SIGTERM)  # a restart replaces a running instance
    try:
        # Bound before detaching: a probe sent right after `start` returns is queued, not refused.
        server = ThreadingHTTPServer(("127.0.0.1", port), Health)
    except OSError as err:
        sys.exit(f"demo service: cannot listen on 127.0.0.1:{port}: {err.strerror}")
    ready = detach(log)
    pidfile.write_text(f"{os.getpid()}\n")
    print(f"demo service listening on 127.0.0.1:{port} (pid {os.getpid()}, replaced {stopped})", flush=True)
    os.close(ready)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.serve_forever()
    finally:
        if running_pid(pidfile) == os.getpid():
            pidfile.unlink()
        print(f"demo service (pid {os.getpid()}) stopped", flush=True)
    sys.exit(0)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["start", "kill", "stop"])
    parser.add_argument("--pidfile", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--log", type=Path, default=Path(os.devnull))
    args = parser.parse_args()
    if args.command == "start":
        if not args.port:
            parser.error("start needs --port")
        start(args.port, args.pidfile, args.log)
    sig = signal.SIGKILL if args.command == "kill" else signal.SIGTERM
    pid = signal_service(args.pidfile, sig)
    print(f"demo service {'pid ' + str(pid) if pid else 'was not running'}: {args.command} done")


if __name__ == "__main__":
    main()
