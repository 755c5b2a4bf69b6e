"""Runs ansible-playbook for the Ansible executor, so that nothing it started outlives a stop.

ansible-runner starts this module (in a session of its own, on a pty) instead of ansible-playbook:

    python -m activities.ansible.supervisor <worker pid> <ansible-playbook> <arguments>...

Two things stop a run: SIGTERM from the executor (the activity was cancelled or ran out of time) and
the death of the worker, which the kernel turns into the same SIGTERM (PR_SET_PDEATHSIG, Linux).
ansible-playbook's workers call setsid, so no process group holds them, and once ansible-playbook
has gone they belong to init; ansible-playbook does pass SIGTERM on to them, but not when it dies
first (seen when the worker's pty closes at the same moment). So the supervisor snapshots the process
tree before it signals, sends SIGTERM, and SIGKILLs whatever of that snapshot still runs after
`GRACE`. Daemons that a task started and detached earlier have left the tree and are not touched.

Standard library only: it starts with every run.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time

from activities.processes import alive, process_tree

GRACE = 5.0  # under the executor's STOP_GRACE, after which ansible-runner SIGKILLs this process group
_PR_SET_PDEATHSIG = 1


def stop(child: subprocess.Popen[bytes]) -> None:
    tree = process_tree(child.pid)
    child.terminate()
    deadline = time.monotonic() + GRACE
    while any(alive(pid) for pid in tree) and time.monotonic() < deadline:
        child.poll()  # reap ansible-playbook as soon as it exits
        time.sleep(0.1)
    for pid in tree:
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    child.wait()


def main(argv: list[str]) -> int:
    worker, command = int(argv[0]), argv[1:]
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != worker:
        return 1  # the worker died before prctl: nobody would stop us
    stopping: list[int] = []
    # The handler only takes note: the loop below acts, so a signal can never interrupt Popen halfway.
    signal.signal(signal.SIGTERM, lambda signum, _: stopping.append(signum))
    child = subprocess.Popen(command)
    while child.poll() is None and not stopping:
        time.sleep(0.1)
    if stopping:
        stop(child)
        return 128 + stopping[0]
    return child.returncode if child.returncode >= 0 else 128 - child.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
