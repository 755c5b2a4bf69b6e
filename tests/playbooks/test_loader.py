"""Loading playbook files: every error names the file, the line and the field."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from activities.config import REPO_ROOT
from worker.playbooks import CatalogueError, load_catalogue, load_files, load_playbook
from worker.yaml_source import SourceError
from workflows.alerts import Alert, label_fingerprint

MALFORMED = Path(__file__).parent / "malformed"
SHIPPED = REPO_ROOT / "playbooks"
ANSIBLE = SHIPPED / "ansible"
EXPECT = re.compile(r"#\s*expect:\s*(\S+):\s*(.+?)\s*$")


def _expected(path: Path) -> tuple[int, str, str]:
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if found := EXPECT.search(line):
            return number, found.group(1), found.group(2)
    raise AssertionError(f"{path.name} has no `# expect:` line")


@pytest.mark.parametrize("path", sorted(MALFORMED.glob("*.yaml")), ids=lambda p: p.stem)
def test_malformed_playbook_names_file_line_and_field(path: Path) -> None:
    line, field, message = _expected(path)
    with pytest.raises(SourceError) as caught:
        load_playbook(path, ANSIBLE)
    problems = caught.value.problems
    assert any(p.line == line and p.field == field and message in p.message for p in problems), str(
        caught.value
    )
    # The text a person reads starts with file:line: field.
    assert f"{path}:{line}: {field}: " in str(caught.value)


def test_every_problem_in_a_file_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "many.yaml"
    path.write_text(
        "name: Many\n"
        "match: {matchers: ['alertname=\"Many\"']}\n"
        "steps:\n"
        "  - {id: a, kind: notify, message: '${params.x}'}\n"
        "  - {id: a, kind: notify, message: '${steps.zzz.ok}'}\n"
    )
    with pytest.raises(SourceError) as caught:
        load_playbook(path)
    assert [(p.line, p.field) for p in caught.value.problems] == [
        (4, "steps[0].message"),
        (5, "steps[1].id"),
        (5, "steps[1].message"),
    ]


def test_a_catalogue_reports_every_bad_file_and_duplicate_names(tmp_path: Path) -> None:
    shutil.copy(SHIPPED / "service_down.yaml", tmp_path / "a.yaml")
    shutil.copy(SHIPPED / "service_down.yaml", tmp_path / "b.yaml")
    shutil.copy(MALFORMED / "unreachable.yaml", tmp_path / "c.yaml")
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(tmp_path, ANSIBLE)
    text = str(caught.value)
    assert f"{tmp_path / 'b.yaml'}:2: name: 'ServiceDown' is already defined in {tmp_path / 'a.yaml'}" in text
    assert f"{tmp_path / 'c.yaml'}:9: steps[1]: step 'never' is unreachable" in text


def test_ties_between_overlapping_playbooks_are_warned_about(tmp_path: Path) -> None:
    for name, matcher in (
        ("one", 'alertname=~"High.*"'),
        ("two", 'alertname="HighCPU"'),
        ("three", 'alertname="Other"'),
    ):
        (tmp_path / f"{name}.yaml").write_text(
            f"name: {name}\nmatch: {{matchers: ['{matcher}'], priority: 1}}\nsteps: [{{id: a, kind: notify, message: x}}]\n"
        )
    (tmp_path / "four.yaml").write_text(
        "name: four\nmatch: {matchers: ['alertname=~\"Hi.*\"']}\nsteps: [{id: a, kind: notify, message: x}]\n"
    )
    catalogue = load_catalogue(tmp_path)
    # one and two have equal priority but different specificity: no tie. four has its own priority.
    assert catalogue.warnings == []
    (tmp_path / "five.yaml").write_text(
        "name: five\nmatch: {matchers: ['alertname=~\"H.*\"'], priority: 1}\nsteps: [{id: a, kind: notify, message: x}]\n"
    )
    warnings = load_catalogue(tmp_path).warnings
    assert (
        len(warnings) == 1 and "five.yaml (five) and one.yaml (one) may match the same alert" in warnings[0]
    )


def test_every_shipped_playbook_validates() -> None:
    catalogue = load_catalogue(SHIPPED, ANSIBLE)
    assert sorted(p.name for p in catalogue.playbooks) == [
        "CertificateExpiringSoon",
        "DiskFull",
        "HighCPU",
        "HighLatency",
        "HighMemory",
        "KubeDeploymentReplicasMismatch",
        "KubePodCrashLooping",
        "NodeNotReady",
        "OpsBackup",
        "OpsBatchRestart",
        "OpsHealthCheck",
        "OpsLogRotation",
        "ServiceDown",
        "TerraformDrift",
    ]
    assert catalogue.warnings == []
    assert all(len(p.sha256) == 64 for p in catalogue.playbooks)


@pytest.mark.parametrize(
    ("alertname", "playbook"),
    [
        ("ServiceDown", "ServiceDown"),
        ("InstanceDown", "ServiceDown"),
        ("HighCPU", "HighCPU"),
        ("OOMKilled", "HighMemory"),
        ("HighMemory", "HighMemory"),
        ("DiskFull", "DiskFull"),
        ("HighLatency", "HighLatency"),
        ("KubePodCrashLooping", "KubePodCrashLooping"),
        ("KubeDeploymentReplicasMismatch", "KubeDeploymentReplicasMismatch"),
        ("NodeNotReady", "NodeNotReady"),
        ("CertificateExpiringSoon", "CertificateExpiringSoon"),
        ("TerraformDrift", "TerraformDrift"),
        ("SomethingElse", None),
    ],
)
def test_shipped_playbooks_are_chosen_by_alert_name(alertname: str, playbook: str | None) -> None:
    labels = {"alertname": alertname}
    chosen, _ = load_catalogue(SHIPPED, ANSIBLE).select(
        Alert(fingerprint=label_fingerprint(labels), labels=labels)
    )
    assert (chosen.name if chosen else None) == playbook


def test_pinning_keeps_the_file_hash_and_content(tmp_path: Path) -> None:
    path = tmp_path / "sd.yaml"
    shutil.copy(SHIPPED / "service_down.yaml", path)
    before = load_files([path], ANSIBLE).playbooks[0].pinned()
    path.write_text(path.read_text().replace("interval: 10s", "interval: 20s"))
    after = load_files([path], ANSIBLE).playbooks[0].pinned()
    assert before.sha256 != after.sha256
    assert before.playbook != after.playbook  # a running incident keeps `before`, whatever the file says now
    assert before.source == str(path)
