"""The Ansible playbooks of the backup operation, with real ansible-runner on localhost: the backup is
made with its checksum, verification catches an empty or corrupted archive, and rollback removes it."""

from __future__ import annotations

import hashlib
import os
import sys
import tarfile
from pathlib import Path
from typing import Any

import ansible_runner
import pytest

from activities.config import REPO_ROOT

pytestmark = pytest.mark.ansible
PLAYBOOKS = REPO_ROOT / "playbooks" / "ansible"


def play(tmp: Path, playbook: str, **extravars: Any) -> Any:
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    (tmp / "runner").mkdir(exist_ok=True)
    return ansible_runner.run(
        private_data_dir=str(tmp / "runner"),
        playbook=str(PLAYBOOKS / playbook),
        inventory={"all": {"hosts": {"localhost": host}}},
        extravars=extravars,
        envvars={"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"},
        quiet=True,
    )


def failures(runner: Any) -> str:
    return " ".join(
        str(e["event_data"]["res"].get("msg", "")) for e in runner.events if e["event"] == "runner_on_failed"
    )


def test_backup_is_verified_and_a_damaged_one_is_caught_and_removed(tmp_path: Path) -> None:
    data, backups = tmp_path / "data", tmp_path / "backups"
    data.mkdir()
    (data / "orders.csv").write_text("id,total\n1,9.99\n")
    names = {"backup_name": "nightly-1", "backup_paths": [str(data)], "backup_dir": str(backups)}
    archive = backups / "nightly-1.tar.gz"

    made = play(tmp_path, "backup.yml", **names)
    assert made.status == "successful", made.stdout.read()
    with tarfile.open(archive) as tar:
        assert any(name.endswith("data/orders.csv") for name in tar.getnames())
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert (backups / "nightly-1.tar.gz.sha256").read_text() == f"{digest}  nightly-1.tar.gz\n"
    assert play(tmp_path, "backup_verify.yml", **names).status == "successful"

    archive.write_bytes(archive.read_bytes() + b"garbage")
    corrupted = play(tmp_path, "backup_verify.yml", **names)
    assert corrupted.status == "failed" and "non-zero return code" in failures(corrupted)

    archive.write_bytes(b"")
    empty = play(tmp_path, "backup_verify.yml", **names)
    assert empty.status == "failed" and f"{archive} is missing or empty" in failures(empty)

    assert play(tmp_path, "rollback_backup.yml", **names).status == "successful"
    assert list(backups.iterdir()) == []


def test_backup_refuses_a_name_that_is_a_path(tmp_path: Path) -> None:
    runner = play(tmp_path, "backup.yml", backup_name="../../etc/x", backup_dir=str(tmp_path / "b"))
    assert runner.status == "failed"
    assert "is not a plain file name" in failures(runner)
    assert not (tmp_path / "b").exists()
