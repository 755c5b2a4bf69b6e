"""`remediator playbook list|show|validate|test` through typer's CliRunner."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from activities.config import REPO_ROOT
from api.cli import app

runner = CliRunner()
SHIPPED = REPO_ROOT / "playbooks"
SAMPLES = Path(__file__).parent / "samples"
MALFORMED = Path(__file__).parent / "malformed"
WIDE = {"COLUMNS": "250"}


def test_list_shows_every_playbook_with_its_hash() -> None:
    result = runner.invoke(app, ["playbook", "list"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "ServiceDown" in result.output and "TerraformDrift" in result.output
    assert 'alertname=~"NodeNotReady|KubeNodeNotReady"' in result.output
    assert result.output.count("priority 10") == 10


def test_show_prints_params_and_the_step_tree() -> None:
    result = runner.invoke(app, ["playbook", "show", "HighLatency"], env=WIDE)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "param:    scale_to = 4 (fixed)" in lines
    assert "param:    namespace = None (label namespace)" in lines
    assert "  saturated (decide)" in lines and "      scale_out (action)" in lines and "    else:" in lines


def test_show_by_file_and_with_source() -> None:
    result = runner.invoke(app, ["playbook", "show", str(SHIPPED / "disk_full.yaml"), "--source"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "playbook: disk_cleanup.yml" in result.output  # the YAML as written


def test_show_unknown_name_fails_cleanly() -> None:
    result = runner.invoke(app, ["playbook", "show", "NoSuchThing"], env=WIDE)
    assert result.exit_code == 1
    assert "error: no playbook named 'NoSuchThing'" in result.output
    assert "Traceback" not in result.output


def test_validate_the_shipped_directory() -> None:
    result = runner.invoke(app, ["playbook", "validate"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "ok: 14 playbook(s) valid; policy from (built-in defaults) valid" in result.output


def test_validate_names_file_and_line_of_each_error() -> None:
    files = [str(MALFORMED / "bad_template.yaml"), str(MALFORMED / "duplicate_step_id.yaml")]
    result = runner.invoke(app, ["playbook", "validate", *files], env=WIDE)
    assert result.exit_code == 1
    assert f"{MALFORMED / 'bad_template.yaml'}:15: steps[0].action.extravars.host: " in result.output
    assert (
        f"{MALFORMED / 'duplicate_step_id.yaml'}:12: steps[1].then[0].id: duplicate step id 'tell'"
        in result.output
    )
    assert "Traceback" not in result.output


def test_validate_checks_the_policy_and_its_groups(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("groups:\n  sre: [alice]\nenvironments:\n  prod: {auto_approve: [destructive]}\n")
    result = runner.invoke(app, ["playbook", "validate", "--policy", str(policy)], env=WIDE)
    assert result.exit_code == 1
    assert f"{policy}:4: environments.prod.auto_approve[0]" in result.output
    assert "cannot auto-approve" in result.output

    policy.write_text("groups:\n  sre: [alice]\n")
    book = tmp_path / "book.yaml"
    book.write_text(
        "name: Ask\nmatch: {matchers: ['alertname=\"Ask\"']}\n"
        "steps: [{id: go, kind: approval, groups: [sre, dba]}]\n"
    )
    result = runner.invoke(app, ["playbook", "validate", str(book), "--policy", str(policy)], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "group 'dba' is not in the policy" in result.output and "group 'sre'" not in result.output


def test_test_prints_the_path_and_the_policy_verdicts(tmp_path: Path) -> None:
    sample = tmp_path / "sample.json"
    shutil.copy(SAMPLES / "high_cpu.json", sample)
    result = runner.invoke(
        app, ["playbook", "test", str(SHIPPED / "high_cpu.yaml"), "--alert", str(sample)], env=WIDE
    )
    assert result.exit_code == 0, result.output
    assert "decide sustained: then: gt(${steps.cpu.value}=0.93, 0.8) -> true" in result.output
    assert (
        "policy for scale_out: dry-run, needs 1 approver(s): prod needs approval for change actions"
        in result.output
    )
    assert "path: cpu[ok] -> sustained[ok] -> scale_out[dry-run] -> relieved[ok]" in result.output
    assert "outcome: resolved (dry-run)" in result.output


def test_test_fails_when_the_path_is_not_the_expected_one(tmp_path: Path) -> None:
    sample = json.loads((SAMPLES / "high_cpu.json").read_text())
    sample["outputs"]["cpu"]["value"] = 0.5  # not sustained: the playbook stops early
    path = tmp_path / "sample.json"
    path.write_text(json.dumps(sample))
    result = runner.invoke(
        app, ["playbook", "test", str(SHIPPED / "high_cpu.yaml"), "--alert", str(path)], env=WIDE
    )
    assert result.exit_code == 1
    assert (
        "expected the path cpu -> sustained -> scale_out -> relieved, got cpu -> sustained -> not_sustained"
        in (result.output)
    )


def test_test_reports_a_missing_canned_output_as_the_failed_path(tmp_path: Path) -> None:
    sample = tmp_path / "bare.json"
    sample.write_text(
        json.dumps({"labels": {"alertname": "HighCPU", "namespace": "shop", "deployment": "web"}})
    )
    result = runner.invoke(
        app, ["playbook", "test", str(SHIPPED / "high_cpu.yaml"), "--alert", str(sample)], env=WIDE
    )
    assert result.exit_code == 1
    assert "no canned output for step 'cpu': add outputs.cpu to the sample" in result.output
    assert "outcome: failed (dry-run)" in result.output


def test_test_names_the_line_of_a_bad_sample(tmp_path: Path) -> None:
    sample = tmp_path / "bad.json"
    sample.write_text('{\n  "alert": {\n    "labels": {"alertname": 7}\n  },\n  "outptus": {}\n}\n')
    result = runner.invoke(
        app, ["playbook", "test", str(SHIPPED / "high_cpu.yaml"), "--alert", str(sample)], env=WIDE
    )
    assert result.exit_code == 1
    assert f"{sample}:3: alert.labels.alertname: Input should be a valid string" in result.output
    assert f"{sample}:5: outptus: Extra inputs are not permitted" in result.output
    assert "Traceback" not in result.output
