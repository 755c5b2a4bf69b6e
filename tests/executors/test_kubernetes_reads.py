"""The read tools against the emulator: logs (tail, previous run, clipping, templates), pod health
ordered unhealthy first, describe, and deployments' failing conditions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError

from tests.k8s_emulator.harness import KubeTarget, deployment, emulated, pod, requests
from workflows.kube_reads import DeploymentsQuery, DescribeQuery, LogsQuery, PodsQuery

pytestmark = pytest.mark.kubernetes


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[KubeTarget]:
    with emulated(tmp_path) as target:
        yield target


def test_logs(kube: KubeTarget) -> None:
    kube.create(pod("api-1"))
    assert kube.emulator is not None
    kube.emulator.logs[("shop", "api-1", "main", False)] = [f"line {n}" for n in range(1, 501)]
    kube.emulator.logs[("shop", "api-1", "main", True)] = ["panic: out of memory", "x" * 5000]
    logs = kube.run(kube.reads.logs, LogsQuery(namespace="shop", pod="api-1", tail_lines=3))
    assert logs.lines == ["line 498", "line 499", "line 500"] and logs.container == "" and not logs.previous
    crashed = kube.run(kube.reads.logs, LogsQuery(namespace="shop", pod="api-1", previous=True))
    assert (
        crashed.lines[0] == "panic: out of memory"
        and len(crashed.lines[1]) == 1000
        and crashed.clipped_lines == 1
    )
    kube.emulator.logs[("shop", "api-1", "main", False)] = [
        f"GET /orders/{n} 200 in {n}ms" for n in range(400)
    ]
    summary = kube.run(kube.reads.log_templates, LogsQuery(namespace="shop", pod="api-1", tail_lines=300))
    assert summary.total_lines == 300 and len(summary.templates) == 1 and summary.templates[0].count == 300
    [tail_request] = [r for r in requests(kube, "GET", "/log") if r.params.get("tailLines") == "3"]
    assert tail_request.params.get("previous") == "false"
    kube.create(pod("fresh"))
    with pytest.raises(
        ApplicationError, match='previous terminated container "main" in pod "fresh" not found'
    ) as err:
        kube.run(kube.reads.logs, LogsQuery(namespace="shop", pod="fresh", previous=True))
    assert err.value.type == "KubernetesBadRequest" and err.value.non_retryable


def test_pods_are_listed_unhealthy_first_with_why(kube: KubeTarget) -> None:
    for name in ("ok-1", "crashing-1"):
        kube.create(pod(name, labels={"app": "api"}))
    ready = {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [{"name": "main", "ready": True, "restartCount": 0, "state": {"running": {}}}],
    }
    crashing = {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "False"}],
        "containerStatuses": [
            {
                "name": "main",
                "ready": False,
                "restartCount": 7,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {
                    "terminated": {
                        "reason": "OOMKilled",
                        "exitCode": 137,
                        "finishedAt": "2026-01-01T00:00:00Z",
                    }
                },
            }
        ],
    }
    for name, status in (("ok-1", ready), ("crashing-1", crashing)):
        kube.admin.call(
            "status",
            kube.admin.core.patch_namespaced_pod_status,
            name,
            "shop",
            {"status": status},
            _content_type="application/merge-patch+json",
        )
    listed = kube.run(kube.reads.pods, PodsQuery(namespace="shop", label_selector="app=api", limit=1))
    assert listed.total == 2
    [worst] = listed.pods
    assert (worst.name, worst.ready, worst.restarts, worst.waiting_reason) == (
        "crashing-1",
        False,
        7,
        "CrashLoopBackOff",
    )
    assert worst.last_state is not None and (worst.last_state.reason, worst.last_state.exit_code) == (
        "OOMKilled",
        137,
    )
    described = kube.run(kube.reads.describe, DescribeQuery(namespace="shop", kind="Pod", name="crashing-1"))
    assert (
        described.facts["last terminated"] == "OOMKilled (exit 137)" and "Ready=False" in described.conditions
    )


def test_describe_shows_deployment_problems_and_nodes(kube: KubeTarget) -> None:
    kube.create(deployment("web", replicas=3))
    stuck = {
        "conditions": [
            {
                "type": "Available",
                "status": "False",
                "reason": "MinimumReplicasUnavailable",
                "message": "0 of 3 up",
            },
            {
                "type": "Progressing",
                "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "message": "too slow",
            },
        ],
        "replicas": 3,
        "readyReplicas": 0,
        "availableReplicas": 0,
    }
    kube.admin.call(
        "status",
        kube.admin.apps.patch_namespaced_deployment_status,
        "web",
        "shop",
        {"status": stuck},
        _content_type="application/merge-patch+json",
    )
    [web] = kube.run(kube.reads.deployments, DeploymentsQuery(namespace="shop")).deployments
    assert web.problems == [
        "Available=False (MinimumReplicasUnavailable): 0 of 3 up",
        "Progressing=False (ProgressDeadlineExceeded): too slow",
    ]
    described = kube.run(kube.reads.describe, DescribeQuery(namespace="shop", kind="Deployment", name="web"))
    assert (
        described.facts["replicas"] == "3 desired, 0 ready, 0 available"
        and described.facts["revision"] == "1"
    )
    node = kube.run(kube.reads.describe, DescribeQuery(kind="Node", name="node-1"))
    assert node.facts["unschedulable"] == "False" and node.namespace == ""
