"""Every shipped playbook, dry-run against a realistic alert on the time-skipping server.

The canned reads come from tests/playbooks/samples (the format `remediator playbook test` takes);
the check is that templates render, rendered actions validate, and the expected path is taken.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.config import REPO_ROOT
from worker.dry_run import dry_run_on, load_sample
from worker.playbooks import load_playbook
from workflows.dry_run import DryRunReport
from workflows.policy import Policy

SAMPLES = Path(__file__).parent / "samples"
SHIPPED = REPO_ROOT / "playbooks"


async def dry_run(
    env: WorkflowEnvironment, playbook: Path, sample_file: Path, policy: Policy
) -> DryRunReport:
    item = load_playbook(playbook, SHIPPED / "ansible")
    sample = load_sample(sample_file)
    assert item.playbook.match.matches(sample.alert.labels)
    return await dry_run_on(env.client, item.pinned(), policy, sample)


def test_every_shipped_playbook_has_a_sample() -> None:
    assert sorted(p.stem for p in SAMPLES.glob("*.json")) == sorted(p.stem for p in SHIPPED.glob("*.yaml"))


@pytest.mark.parametrize("sample", sorted(SAMPLES.glob("*.json")), ids=lambda p: p.stem)
async def test_shipped_playbook_takes_its_path(time_env: WorkflowEnvironment, sample: Path) -> None:
    report = await dry_run(time_env, SHIPPED / f"{sample.stem}.yaml", sample, Policy())
    result = report.result
    assert result.outcome == "resolved", result.reason
    assert [r.step for r in result.path] == json.loads(sample.read_text())["expect"]
    assert result.applied == []
    previews = [e.detail for e in report.events if e.event.startswith("preview of ")]
    actions = [r for r in result.path if r.kind == "action"]
    assert len(previews) == len(actions) and all(p.startswith("would run ") for p in previews)


async def test_high_cpu_renders_typed_arguments_for_kubernetes(time_env: WorkflowEnvironment) -> None:
    report = await dry_run(time_env, SHIPPED / "high_cpu.yaml", SAMPLES / "high_cpu.json", Policy())
    preview = next(e.detail for e in report.events if e.event == "preview of scale_out")
    assert "'replicas': 4" in preview and "'namespace': 'shop'" in preview
    decision = next(e.detail for e in report.events if e.event == "decide sustained: then")
    assert decision == "gt(${steps.cpu.value}=0.93, 0.8) -> true"


async def test_node_not_ready_is_recorded_as_needing_two_approvers(time_env: WorkflowEnvironment) -> None:
    report = await dry_run(
        time_env, SHIPPED / "node_not_ready.yaml", SAMPLES / "node_not_ready.json", Policy()
    )
    verdict = next(e.detail for e in report.events if e.event == "policy for drain")
    assert verdict.startswith("dry-run, needs 2 approver(s): ")
    assert "destructive actions need 2 distinct approvers" in verdict
    assert any(e.event == "rollback for cordon registered" for e in report.events)


async def test_healthy_probe_stops_service_down_before_acting(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    sample = json.loads((SAMPLES / "service_down.json").read_text())
    sample["outputs"]["probe"] = {"ok": True, "status": 200}
    path = tmp_path / "healed.json"
    path.write_text(json.dumps(sample))
    report = await dry_run(time_env, SHIPPED / "service_down.yaml", path, Policy())
    assert [r.step for r in report.result.path] == ["probe", "still_down", "healed"]
    assert report.result.reason == "healed: http://web-1:8080/health answers 200 again; nothing to do"


async def test_crash_looping_undoes_a_recent_rollout(time_env: WorkflowEnvironment, tmp_path: Path) -> None:
    sample = json.loads((SAMPLES / "kube_pod_crash_looping.json").read_text())
    now = await time_env.get_current_time()  # the decision uses workflow time, which the server keeps
    sample["outputs"]["history"]["revisions"][-1]["changed_at"] = (now - timedelta(minutes=10)).isoformat()
    path = tmp_path / "recent.json"
    path.write_text(json.dumps(sample))
    report = await dry_run(time_env, SHIPPED / "kube_pod_crash_looping.yaml", path, Policy())
    assert [r.step for r in report.result.path] == [
        "logs",
        "events",
        "history",
        "recent_rollout",
        "undo",
        "stopped_crashing",
    ]
    logs = next(e.detail for e in report.events if e.event == "check logs")
    assert "DATABASE_URL missing" in logs  # what the crashed run said is in the timeline
