"""REMEDIATOR_POLICY_FILE: loaded, validated, errors as file:line: field: message."""

from __future__ import annotations

from pathlib import Path

import pytest

from activities.config import REPO_ROOT, Settings
from worker.policy_file import DEFAULT_SOURCE, load_policy, policy_from_settings
from worker.yaml_source import SourceError

EXAMPLE = REPO_ROOT / "deploy" / "policy.example.yaml"


def test_example_policy_loads() -> None:
    loaded = load_policy(EXAMPLE)
    policy = loaded.policy
    assert loaded.source == str(EXAMPLE) and len(loaded.sha256) == 64
    assert policy.destructive_approvers == 2
    assert policy.limits.actions_per_service_per_hour == 3
    assert policy.members(policy.approvers["destructive"]) != []


def test_settings_without_a_file_give_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REMEDIATOR_POLICY_FILE", raising=False)
    loaded = policy_from_settings(Settings())
    assert loaded.source == DEFAULT_SOURCE
    assert set(loaded.policy.environments) == {"dev", "prod"}


def test_settings_read_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REMEDIATOR_POLICY_FILE", str(EXAMPLE))
    assert policy_from_settings(Settings()).source == str(EXAMPLE)


@pytest.mark.parametrize(
    ("text", "line", "field", "message"),
    [
        ("dry_run: false\nlimtis: {}\n", 2, "limtis", "Extra inputs are not permitted"),
        (
            "environments:\n  dev:\n    auto_approve: [sometimes]\n",
            3,
            "environments.dev.auto_approve[0]",
            "Input should be 'read'",
        ),
        (
            "maintenance_windows:\n  - name: w\n    start: '25:00'\n    end: '02:00'\n",
            3,
            "maintenance_windows[0].start",
            "valid time",
        ),
        (
            "maintenance_windows:\n  - {name: w, start: '02:00', end: '02:00'}\n",
            2,
            "maintenance_windows[0]",
            "start and end are equal",
        ),
        ("default_environment: qa\n", 1, "(top)", "default_environment 'qa' is not in environments"),
        (
            "limits:\n  actions_per_service_per_hour: 0\n",
            2,
            "limits.actions_per_service_per_hour",
            "greater than or equal to 1",
        ),
        ("destructive_approvers: 1\n", 1, "destructive_approvers", "greater than or equal to 2"),
        ("max_wait: never\n", 1, "max_wait", "valid timedelta"),
        ("groups:\n  sre: [alice]\n  sre: [bob]\n", 3, "groups.sre", "duplicate key (first on line 2)"),
        ("services: {allow: [web], deny: 3}\n", 1, "services.deny", "valid list"),
        ("approvers:\n  risky: [sre]\n", 2, "approvers.risky", "Input should be 'read'"),
    ],
)
def test_bad_policy_names_file_line_and_field(
    tmp_path: Path, text: str, line: int, field: str, message: str
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(SourceError) as caught:
        load_policy(path)
    assert any(p.line == line and p.field == field and message in p.message for p in caught.value.problems), (
        str(caught.value)
    )
    assert str(caught.value).startswith(f"{path}:{line}: {field}: ")


def test_unreadable_and_non_yaml_files(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="cannot read"):
        load_policy(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("limits: {actions_per_service_per_hour: 3\n")
    with pytest.raises(SourceError, match=f"{broken}:2: \\(yaml\\)"):
        load_policy(broken)
