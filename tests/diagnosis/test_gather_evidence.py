"""`gather_evidence` on real parts: the Kubernetes emulator and a real Prometheus scraping an exporter
that plays kube-state-metrics and cAdvisor; then the `diagnose` activity on what was gathered."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.testing import ActivityEnvironment

from activities.config import Settings
from activities.diagnosis import DiagnosisActivities
from activities.evidence import EvidenceActivities
from activities.evidence_queries import evidence_queries
from activities.logs import MAX_CHARS
from tests.diagnosis.crashloop import BLOB, CRASHED_RUN, POD, crashlooping_alert, crashlooping_pod
from tests.k8s_emulator.harness import KubeTarget, emulated
from tests.k8s_emulator.runner import write_kubeconfig
from tests.prometheus import running_prometheus, serving_metrics
from worker.devserver import free_port
from workflows.alerts import Alert
from workflows.diagnosis import DiagnoseRequest
from workflows.evidence import Evidence

pytestmark = pytest.mark.kubernetes

# kube-state-metrics and cAdvisor as Prometheus sees them; the other namespace must never be counted.
METRICS = f"""\
container_memory_working_set_bytes{{namespace="shop",pod="{POD}",container="checkout"}} 120000000
container_memory_working_set_bytes{{namespace="shop",pod="{POD}",container=""}} 120000000
container_memory_working_set_bytes{{namespace="other",pod="{POD}",container="checkout"}} 9000000000
kube_pod_container_resource_limits{{namespace="shop",pod="{POD}",container="checkout",resource="memory",unit="byte"}} 480000000
kube_pod_container_status_restarts_total{{namespace="shop",pod="{POD}",container="checkout"}} 6
"""


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[KubeTarget]:
    with emulated(tmp_path) as target:
        crashlooping_pod(target)
        yield target


async def gather(settings: Settings, alert: Alert) -> Evidence:
    evidence: Evidence = await ActivityEnvironment().run(EvidenceActivities(settings).gather_evidence, alert)
    return evidence


async def test_a_crashlooping_pod_is_gathered_and_diagnosed(kube: KubeTarget, tmp_path: Path) -> None:
    alert = crashlooping_alert()
    async with serving_metrics(METRICS) as exporter, running_prometheus(tmp_path / "prom", [exporter]) as url:
        evidence = await gather(kube.settings(prometheus_url=url), alert)

    [pod] = evidence.pods
    assert (pod.name, pod.waiting_reason, pod.restarts, pod.node) == (POD, "CrashLoopBackOff", 6, "node-1")
    assert pod.last_state is not None and pod.last_state.exit_code == 1
    # only the workload's events: the neighbour's OOM kill is not this incident's evidence
    assert [(e.reason, e.object) for e in evidence.events] == [("BackOff", f"Pod/{POD}")]
    assert [(d.name.startswith("checkout-"), d.revision, d.image) for d in evidence.deployments] == [
        (True, 1, "registry.example.com/shop/checkout:1.43.0")
    ]
    assert [(n.name, n.ready, n.conditions) for n in evidence.nodes] == [("node-1", True, [])]
    # the crashed (previous) run's log, as templates, every one within the cap
    logs = evidence.logs
    assert logs is not None and logs.total_lines == len(CRASHED_RUN)
    assert any("PAYMENT_API_URL" in t.template for t in logs.templates)
    texts = [text for t in logs.templates for text in (t.template, *t.examples)]
    assert all(len(text) <= MAX_CHARS for text in texts) and BLOB not in texts
    # the queries are scoped by the alert's labels: the other namespace's 9 GB stayed out
    memory = {m.query: m for m in evidence.metrics if "memory_working_set" in m.query}
    share = next(m for q, m in memory.items() if "resource_limits" in q)
    assert share.value == pytest.approx(120_000_000 / 480_000_000)
    trend = next(m for q, m in memory.items() if m.kind == "range")
    assert trend.points and trend.points[-1][1] == 120_000_000
    assert any("no data for" in note for note in evidence.notes)  # series this exporter lacks
    assert not any("kubernetes" in note for note in evidence.notes), evidence.notes

    diagnosis = await ActivityEnvironment().run(
        DiagnosisActivities().diagnose, DiagnoseRequest(alert=alert, evidence=evidence)
    )
    assert diagnosis.category == "crashloop_config", diagnosis.explanation
    assert diagnosis.confidence >= 0.5
    assert any(ref.ref.startswith("logs.templates[") for ref in diagnosis.evidence)


async def test_a_deployment_alert_finds_its_pods(kube: KubeTarget) -> None:
    labels = {"alertname": "KubeDeploymentReplicasMismatch", "namespace": "shop", "deployment": "checkout"}
    evidence = await gather(kube.settings(), Alert(fingerprint="d1", labels=labels))
    assert [p.name for p in evidence.pods] == [POD]
    assert evidence.logs is not None and any("PAYMENT_API_URL" in t.template for t in evidence.logs.templates)
    assert [d.revision for d in evidence.deployments] == [1]


async def test_every_failing_source_is_a_note_and_the_gather_still_succeeds(
    kube: KubeTarget, tmp_path: Path
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    alert = crashlooping_alert(probe_url=f"{dead}/healthz")
    refused = await gather(kube.settings(kube_namespaces=["elsewhere"], prometheus_url=dead), alert)
    assert refused.probe is not None and not refused.probe.ok
    assert refused.pods == [] and refused.metrics == []
    queries = len(evidence_queries(alert))
    assert f"Prometheus: All connection attempts failed ({queries} of {queries} queries)" in refused.notes
    assert any(
        n.startswith("kubernetes pods: namespace 'shop' is not in REMEDIATOR_KUBE_NAMESPACES")
        for n in refused.notes
    )

    unconfigured = await gather(kube.settings(kubeconfig=str(tmp_path / "missing")), alert)
    assert any("cannot load the Kubernetes configuration" in n for n in unconfigured.notes), (
        unconfigured.notes
    )
    nobody = write_kubeconfig(tmp_path / "dead-kubeconfig", dead)
    unreachable = await gather(kube.settings(kubeconfig=str(nobody)), alert)
    assert any("kubernetes pods: pods in shop: the API server did not answer" in n for n in unreachable.notes)

    off = await gather(Settings(state_dir=tmp_path), alert)
    assert "Kubernetes not configured (REMEDIATOR_KUBE_NAMESPACES)" in off.notes
    assert "Prometheus not configured (REMEDIATOR_PROMETHEUS_URL)" in off.notes
    diagnosis = await ActivityEnvironment().run(
        DiagnosisActivities().diagnose, DiagnoseRequest(alert=alert, evidence=refused)
    )
    assert diagnosis.category in ("dependency_down", "unknown")  # a refused probe, and nothing else


async def test_alert_labels_cannot_rewrite_the_queries(tmp_path: Path) -> None:
    """Alert text is attacker-controlled: quotes and regex characters stay inside their label value."""
    async with serving_metrics(METRICS) as exporter, running_prometheus(tmp_path, [exporter]) as url:
        for labels in (
            {"namespace": "shop", "pod": 'x"} or vector(1) or up{a="'},
            {"namespace": "shop", "deployment": ".*"},
            {"namespace": 'shop\\"', "pod": POD, "instance": '"}[5m]) or vector(1) #'},
        ):
            labels["alertname"] = "KubePodCrashLooping"
            evidence = await gather(
                Settings(state_dir=tmp_path, prometheus_url=url), Alert(fingerprint="i", labels=labels)
            )
            assert evidence.metrics == [], labels  # no injected vector(1), no other pod's series
            assert not any("error" in n or "parse" in n for n in evidence.notes), evidence.notes
