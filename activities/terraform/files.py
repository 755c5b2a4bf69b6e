"""The files the Terraform executor keeps: working copies, configuration hashes, state metadata.

Everything is plain JSON or Terraform's own formats, so a person can inspect an incident's
directory with nothing but `cat` and `terraform show`.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Our two generated files. `_override` makes Terraform merge the backend over whatever the module
# declares; `.tf.json` avoids quoting HCL. Both are regenerated for every working copy.
BACKEND_FILE = "_remediator_override.tf.json"
MARKER_FILE = "_remediator.tf.json"
TFVARS_FILE = "terraform.tfvars.json"
MARKER_OUTPUT = "remediator_idempotency_key"
_SKIP = {".terraform", ".git", BACKEND_FILE, MARKER_FILE, TFVARS_FILE}
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,100}")


def safe_name(name: str) -> str:
    """A path component for an incident or step id; anything unusual becomes a stable hash."""
    if _SAFE.fullmatch(name) and ".." not in name:
        return name
    return "x-" + hashlib.sha256(name.encode()).hexdigest()[:16]


def _module_files(source: Path) -> list[Path]:
    files = []
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        if path.is_file() and not (set(rel.parts) & _SKIP) and ".tfstate" not in path.name:
            files.append(path)
    return files


def config_digest(source: Path, variables: dict[str, Any], workspace: str) -> str:
    """sha256 over the module's files (names and contents), the variables and the workspace."""
    digest = hashlib.sha256()
    for path in _module_files(source):
        digest.update(str(path.relative_to(source)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    digest.update(json.dumps({"variables": variables, "workspace": workspace}, sort_keys=True).encode())
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _literal(value: str) -> str:
    """Strings in .tf.json are templates; escape the markers so a value stays what it says."""
    return value.replace("${", "$${").replace("%{", "%%{")


def prepare_workdir(
    dest: Path, source: Path, variables: dict[str, Any], backend: dict[str, str], marker: str
) -> None:
    """A fresh copy of the module with its variables, our local backend and the idempotency marker.

    The marker is a root output holding the action's idempotency key: Terraform writes it into the
    state in the same operation as the resources, so the state itself records which action applied it.
    """
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for path in _module_files(source):
        target = dest / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    (dest / TFVARS_FILE).write_text(json.dumps(variables, indent=2, sort_keys=True))
    local = {key: _literal(value) for key, value in backend.items()}
    (dest / BACKEND_FILE).write_text(json.dumps({"terraform": {"backend": {"local": local}}}, indent=2))
    output = {MARKER_OUTPUT: {"value": _literal(marker), "description": "the Remediator action that applied"}}
    (dest / MARKER_FILE).write_text(json.dumps({"output": output}, indent=2))


def write_json(path: Path, data: Any) -> None:
    """Atomically, so a crash never leaves half a record behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    tmp.replace(path)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else None


def _address(resource: dict[str, Any], instance: dict[str, Any]) -> str:
    prefix = f"{resource['module']}." if resource.get("module") else ""
    base = f"{prefix}{resource['type']}.{resource['name']}"
    if "index_key" not in instance:
        return base
    return f"{base}[{json.dumps(instance['index_key'])}]"


@dataclass
class StateMeta:
    """What we need from a state file: its identity, its managed resources and its outputs."""

    serial: int | None = None
    lineage: str = ""
    resources: list[str] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    @property
    def version(self) -> dict[str, Any]:
        return {"serial": self.serial, "lineage": self.lineage}


def read_state(path: Path) -> StateMeta:
    """Metadata of a local state file; no file means the empty state Terraform would start from."""
    if not path.exists() or path.stat().st_size == 0:
        return StateMeta()
    state = json.loads(path.read_text())
    resources = [
        _address(resource, instance)
        for resource in state.get("resources", [])
        if resource.get("mode") == "managed"
        for instance in resource.get("instances", [])
    ]
    outputs = {name: out.get("value") for name, out in (state.get("outputs") or {}).items()}
    return StateMeta(state.get("serial"), state.get("lineage", ""), sorted(resources), outputs)
