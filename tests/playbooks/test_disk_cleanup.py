"""The Ansible playbook DiskFull runs, with real ansible-runner on localhost."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import ansible_runner
import pytest

from activities.config import REPO_ROOT

pytestmark = pytest.mark.ansible
PLAYBOOK = REPO_ROOT / "playbooks" / "ansible" / "disk_cleanup.yml"


def test_deletes_rotated_logs_past_retention_and_keeps_the_rest(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    old = time.time() - 20 * 86400
    for name in ("app.log.1", "old.gz"):
        (logs / name).write_text("x")
        os.utime(logs / name, (old, old))
    for name in ("app.log", "new.gz"):
        (logs / name).write_text("x")
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    runner = ansible_runner.run(
        private_data_dir=str(tmp_path),
        playbook=str(PLAYBOOK),
        inventory={"all": {"hosts": {"localhost": host}}},
        extravars={"cleanup_dirs": [str(logs)], "rotate_logs": False, "retain_days": 7},
        envvars={"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"},
        quiet=True,
    )
    assert runner.status == "successful", runner.stdout.read()
    assert sorted(p.name for p in logs.iterdir()) == ["app.log", "new.gz"]
