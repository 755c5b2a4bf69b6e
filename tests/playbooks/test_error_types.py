"""Error types as playbook authors see them: the README's table is the enum, and a playbook names
only types that exist (a typo in `non_retryable_error_types` would otherwise never match)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from activities.config import REPO_ROOT
from worker.playbooks import load_playbook, playbook_files
from worker.yaml_source import SourceError
from workflows.error_types import ErrorType
from workflows.playbook import RetrySpec

SHIPPED = REPO_ROOT / "playbooks"
README = SHIPPED / "README.md"


def error_table() -> str:
    rows = [f"| `{t.value}` | {t.retry.value} | {t.meaning} |" for t in ErrorType]
    return "\n".join(["| type | retried | meaning |", "|---|---|---|", *rows]) + "\n"


def test_the_readme_table_is_the_enum() -> None:
    text = README.read_text()
    section = text.split("## Error types\n", 1)[1].split("\n## ", 1)[0]
    table = section[section.index("| type |") :]
    assert table.rstrip("\n") + "\n" == error_table(), "replace the table in playbooks/README.md with:\n" + (
        error_table()
    )


@pytest.mark.parametrize("path", playbook_files(SHIPPED), ids=lambda p: p.stem)
def test_shipped_playbooks_name_only_known_error_types(path: Path) -> None:
    loaded = load_playbook(path, SHIPPED / "ansible")
    named = [
        t for _, step in loaded.playbook.walk() if step.retry for t in step.retry.non_retryable_error_types
    ]
    assert all(isinstance(t, ErrorType) for t in named), named


def test_a_known_type_reaches_temporal_as_its_string() -> None:
    policy = RetrySpec(non_retryable_error_types=["AnsibleTaskFailed", "StateLocked"]).policy()
    assert policy.non_retryable_error_types == ["AnsibleTaskFailed", "StateLocked"]
    assert all(type(name) is str for name in policy.non_retryable_error_types)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("StateLock", "unknown error type 'StateLock' (did you mean 'StateLocked'?)"),
        ("Boom", "unknown error type 'Boom'; playbooks/README.md lists the error types"),
        (3, "unknown error type 3;"),
    ],
)
def test_an_unknown_type_is_refused_by_name(given: object, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        RetrySpec.model_validate({"non_retryable_error_types": ["KubernetesForbidden", given]})
    [error] = caught.value.errors()
    assert error["loc"] == ("non_retryable_error_types", 1)
    assert message in error["msg"]


def test_an_unknown_type_in_a_playbook_names_file_line_and_path(tmp_path: Path) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text(
        "name: Typo\n"
        "match: {matchers: ['alertname=\"Typo\"']}\n"
        "steps:\n"
        "  - id: run\n"
        "    kind: action\n"
        "    action: {executor: ansible, name: restart, playbook: restart_service.yml}\n"
        "    retry: {non_retryable_error_types: [AnsibleTaskFailed, BadPlaybok]}\n"
    )
    with pytest.raises(SourceError) as caught:
        load_playbook(path, SHIPPED / "ansible")
    assert str(caught.value) == (
        f"{path}:7: steps[0].retry.non_retryable_error_types[1]: unknown error type 'BadPlaybok' "
        "(did you mean 'BadPlaybook'?); playbooks/README.md lists the error types"
    )
