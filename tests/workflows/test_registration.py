"""Activity names are one contract: whatever a workflow or a shipped playbook can call, the real worker
registers, and the test fakes answer only to names it registers."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import get_args

import pytest

from activities.config import REPO_ROOT
from activities.llm import activity_names
from tests.operations.fakes import OpsFakes
from tests.playbooks.host import Fakes as PlaybookFakes
from tests.registration import called_by, executor_ops, fake, real_activity_names
from tests.workflows.fakes import PLAYBOOKS, Fakes
from worker.dry_run import CannedActivities
from worker.playbooks import load_playbook, playbook_files
from workflows import activity_names as names
from workflows.actions import ActionSpec
from workflows.checks import CheckSpec, PreviewCheck
from workflows.investigation_tools import TOOLS

DRY_RUN = {names.DRYRUN_CHECK, names.DRYRUN_PREVIEW}  # the `playbook test` worker's, not build_worker's


def constants() -> set[str]:
    return {v for k, v in vars(names).items() if k.isupper() and isinstance(v, str)}


def test_every_named_activity_is_registered_by_the_real_worker() -> None:
    assert constants() - DRY_RUN == real_activity_names()


def test_every_executor_implements_every_operation() -> None:
    executors = {
        get_args(kind.model_fields["executor"].annotation)[0] for kind in get_args(get_args(ActionSpec)[0])
    }
    assert executors == set(names.EXECUTORS)
    for executor in executors:
        assert executor_ops(executor) <= real_activity_names()


def test_every_check_kind_calls_a_registered_activity() -> None:
    for kind in get_args(get_args(CheckSpec)[0]):
        called = (
            {names.executor_op(e, "preview") for e in names.EXECUTORS}
            if kind is PreviewCheck
            else {kind.ACTIVITY}
        )
        assert called <= real_activity_names(), f"{kind.__name__} calls {called}"


def test_every_investigation_tool_is_registered() -> None:
    assert {tool.activity for tool in TOOLS.values()} <= real_activity_names()


def playbook_calls(path: Path) -> set[str]:
    reads, ops = called_by(load_playbook(path, PLAYBOOKS / "ansible").playbook)
    return reads | ops


@pytest.mark.parametrize("path", playbook_files(REPO_ROOT / "playbooks"), ids=lambda p: p.stem)
def test_every_activity_a_shipped_playbook_calls_is_registered(path: Path) -> None:
    called = playbook_calls(path)
    assert called and called <= real_activity_names(), called - real_activity_names()


def test_the_crash_loop_playbook_reads_through_the_kube_read_activities() -> None:
    # The regression: its checks once called `kubernetes.logs` ..., which no worker registers.
    called = playbook_calls(PLAYBOOKS / "kube_pod_crash_looping.yaml")
    assert {names.KUBE_LOGS, names.KUBE_EVENTS, names.KUBE_ROLLOUT_HISTORY} <= called


def test_the_dry_run_worker_registers_the_dry_run_names() -> None:
    canned = CannedActivities({})
    assert set(activity_names([canned.check, canned.preview])) == DRY_RUN


def test_workflow_code_names_activities_only_through_the_constants() -> None:
    """No string literal as the activity of a call: `execute_activity("x", ...)`, `call.execute("x", ...)`."""
    literal = []
    for path in sorted((REPO_ROOT / "workflows").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in {"execute_activity", "start_activity", "execute"}
                and node.args
                and isinstance(node.args[0], ast.Constant | ast.JoinedStr)
            ):
                literal.append(f"{path.name}:{node.lineno}")
    assert literal == []


# --- the fakes ----------------------------------------------------------------------------------


def test_fake_refuses_a_name_the_worker_does_not_register() -> None:
    with pytest.raises(AssertionError, match=r"no real activity is registered as 'kubernetes\.logs'"):
        fake("kubernetes.logs")


def test_incident_fakes_cover_everything_but_the_model_and_the_limiter() -> None:
    # Intentionally partial: the LLM turn and memory search (tests/llm has its own fake model
    # server), read tools only a model calls, and the limiter (the real activities are registered).
    not_faked = {
        names.LLM_CHAT,
        names.MEMORY_SEARCH,
        names.KUBE_PODS,
        names.KUBE_DEPLOYMENTS,
        names.KUBE_DESCRIBE,
        names.KUBE_LOG_TEMPLATES,
        names.LIMITS_ACQUIRE,
        names.LIMITS_RELEASE,
        names.LIMITS_USAGE,
    }
    assert set(activity_names(Fakes().activities())) == real_activity_names() - not_faked


def test_playbook_and_operation_fakes_are_registered_names() -> None:
    reads = {names.PROBE_HTTP, names.METRICS_QUERY, names.GATHER_EVIDENCE}
    executors = set().union(*(executor_ops(e) for e in names.EXECUTORS))
    assert set(activity_names(PlaybookFakes().activities())) == reads | executors
    assert set(activity_names(OpsFakes().activities())) == {names.PROBE_HTTP, names.NOTIFY} | executor_ops(
        "ansible"
    )
