"""deploy/Dockerfile, read as a builder would: no Docker engine runs here, so its rules are checked."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass

from tests.deploy.support import DEPLOY, REPO_ROOT, image_pinned, unknown_settings

DOCKERFILE = DEPLOY / "Dockerfile"
IGNORE = DEPLOY / "Dockerfile.dockerignore"


@dataclass(frozen=True)
class Instruction:
    line: int
    keyword: str
    args: str


def instructions() -> list[Instruction]:
    """Instructions with their continuation lines joined; comments and blank lines dropped."""
    found: list[Instruction] = []
    pending, start = "", 0
    for number, raw in enumerate(DOCKERFILE.read_text().splitlines(), 1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        start = start or number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        found.append(Instruction(start, keyword.upper(), args.strip()))
        pending, start = "", 0
    return found


def final_stage() -> list[Instruction]:
    every = instructions()
    last_from = max(i for i, ins in enumerate(every) if ins.keyword == "FROM")
    return every[last_from:]


def test_base_images_are_pinned_slim_python() -> None:
    bases = [ins.args.split()[0] for ins in instructions() if ins.keyword == "FROM"]
    assert bases, "no FROM"
    for base in bases:
        assert image_pinned(base), f"{base} is not pinned to a version"
        assert base.startswith("python:") and "-slim" in base, base


def test_runs_as_a_numeric_non_root_user() -> None:
    users = [ins.args for ins in final_stage() if ins.keyword == "USER"]
    assert users, "the final stage never leaves root"
    uid, _, gid = users[-1].partition(":")
    # numeric, so that Kubernetes' runAsNonRoot can check it
    assert uid.isdigit() and int(uid) != 0, users[-1]
    assert not gid or (gid.isdigit() and int(gid) != 0), users[-1]


def test_entrypoint_is_remediator_in_exec_form() -> None:
    [entrypoint] = [ins for ins in final_stage() if ins.keyword == "ENTRYPOINT"]
    command = json.loads(entrypoint.args)  # exec form, so SIGTERM reaches the process
    assert command[-1] == "remediator", command


def test_pip_installs_the_project() -> None:
    runs = " ".join(ins.args for ins in instructions() if ins.keyword == "RUN")
    assert "pip install ." in runs


def copied_sources() -> list[tuple[Instruction, str]]:
    sources = []
    for ins in instructions():
        if ins.keyword != "COPY" or "--from=" in ins.args:
            continue
        *paths, _destination = [a for a in ins.args.split() if not a.startswith("--")]
        sources += [(ins, path) for path in paths]
    return sources


def test_every_copied_path_exists_and_is_in_the_build_context() -> None:
    kept = {line[1:].rstrip("/") for line in IGNORE.read_text().splitlines() if line.startswith("!")}
    assert "*" in IGNORE.read_text().splitlines(), "the ignore file should exclude everything by default"
    for ins, path in copied_sources():
        assert (REPO_ROOT / path).exists(), f"deploy/Dockerfile:{ins.line}: {path} does not exist"
        assert path.rstrip("/") in kept, f"deploy/Dockerfile:{ins.line}: {path} is excluded from the context"


def test_every_package_of_the_project_is_copied() -> None:
    found = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    packages = {pattern.rstrip("*") for pattern in found["find"]["include"]}  # "api*" -> the api folder
    copied = {path.rstrip("/") for _, path in copied_sources()}
    assert set(packages) <= copied, f"pip install . would miss {set(packages) - copied}"
    assert {"pyproject.toml", "README.md"} <= copied  # the build reads both


def test_settings_it_sets_exist_and_point_at_copied_data() -> None:
    env: dict[str, str] = {}
    for ins in final_stage():
        if ins.keyword == "ENV":
            env.update(pair.split("=", 1) for pair in ins.args.split() if "=" in pair)
    assert not unknown_settings(env), unknown_settings(env)
    destinations = [ins.args.split()[-1].rstrip("/") for ins in final_stage() if ins.keyword == "COPY"]
    for name in ("PLAYBOOK_DIR", "RUNBOOK_DIR", "TERRAFORM_MODULES_DIR"):
        value = env[f"REMEDIATOR_{name}"]
        assert any(value == d or value.startswith(d + "/") for d in destinations), (name, value)
