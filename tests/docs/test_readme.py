"""The README is part of the product: its settings table and commands must stay true."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from activities.config import Settings
from api.cli import app

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
CODE = "\n".join(re.findall(r"```(?:sh|bash|console)?\n(.*?)```", README, flags=re.S))
COMMANDS = sorted(
    {
        " ".join(word for word in shlex.split(line.split("#")[0])[1:3] if not word.startswith("-"))
        for line in CODE.splitlines()
        if line.strip().startswith("remediator ")
    }
)


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_documented(name: str) -> None:
    assert f"REMEDIATOR_{name.upper()}" in README, f"README has no row for REMEDIATOR_{name.upper()}"


def test_quick_start_has_exactly_the_two_commands() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("##", 1)[0]
    block = re.search(r"```sh\n(.*?)```", quick_start, flags=re.S)
    assert block is not None
    assert [line.split("#")[0].strip() for line in block.group(1).splitlines()] == ["make run", "make test"]


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_cli_commands_exist(command: str) -> None:
    words = [w for w in command.split() if not re.fullmatch(r"[A-Z_<>.\-]+|incident-\w+|\S*[./]\S*", w)]
    result = CliRunner().invoke(app, [*words, "--help"])
    assert result.exit_code == 0, f"`remediator {command}` from the README does not exist: {result.output}"
