"""Each rule on its own: a positive case and the near misses that must not fire (or must weigh less)."""

from __future__ import annotations

import pytest

from activities.diagnosis import heuristic_diagnosis, rank
from tests.diagnosis.support import instant, request, series
from workflows.diagnosis import DiagnoseRequest

CPU = 'sum(rate(container_cpu_usage_seconds_total{container="app"}[5m])) / sum(kube_pod_container_resource_limits{container="app",resource="cpu"})'
REQUESTS = 'sum(rate(http_requests_total{service="checkout"}[5m]))'
MEMORY = (
    'container_memory_working_set_bytes{container="app"} / container_spec_memory_limit_bytes{container="app"}'
)


def confidence_of(req: DiagnoseRequest, category: str) -> float:
    return next((c.confidence for c in rank(req) if c.category == category), 0.0)


def pod(name: str = "checkout-7d9f-x", **state: object) -> dict[str, object]:
    return {"name": name, "restarts": 4, "ready": False, "lastState": state}


# --- oom ------------------------------------------------------------------------------------------


def test_oomkilled_last_state_is_decisive() -> None:
    diagnosis = heuristic_diagnosis(request(pods=[pod(reason="OOMKilled", exitCode=137)]))
    assert diagnosis.category == "oom"
    assert diagnosis.confidence >= 0.85
    assert diagnosis.evidence[0].ref == "pods[checkout-7d9f-x].lastState"
    assert "OOMKilled" in diagnosis.evidence[0].quote


def test_exit_137_without_reason_is_weak_evidence_of_oom() -> None:
    weak = confidence_of(request(pods=[pod(reason="Error", exitCode=137)]), "oom")
    assert 0.2 <= weak <= 0.5


def test_exit_137_after_liveness_kills_is_not_oom() -> None:
    events = [
        {
            "type": "Warning",
            "reason": "Unhealthy",
            "message": "Liveness probe failed: HTTP probe failed with statuscode: 500",
        }
    ]
    assert confidence_of(request(pods=[pod(reason="Error", exitCode=137)], events=events), "oom") == 0.0


def test_kernel_oom_event_counts() -> None:
    event = {
        "type": "Warning",
        "reason": "OOMKilling",
        "message": "Memory cgroup out of memory: Killed process 2914 (java)",
    }
    assert heuristic_diagnosis(request(events=[event])).category == "oom"


def test_memory_near_limit_alone_is_weak() -> None:
    assert 0.2 <= confidence_of(request(metrics=[instant(MEMORY, 0.97)]), "oom") <= 0.4
    assert confidence_of(request(metrics=[instant(MEMORY, 0.6)]), "oom") == 0.0


# --- memory_leak ------------------------------------------------------------------------------------


def test_steady_rise_over_hours_is_a_leak() -> None:
    rising = series(MEMORY, [0.4, 0.45, 0.5, 0.56, 0.61, 0.66, 0.71, 0.77, 0.82], step=1800)
    diagnosis = heuristic_diagnosis(request(metrics=[rising]))
    assert diagnosis.category == "memory_leak"
    assert diagnosis.confidence >= 0.55


def test_a_spike_at_the_end_is_not_a_leak() -> None:
    spike = series(MEMORY, [0.4, 0.41, 0.4, 0.39, 0.41, 0.4, 0.4, 0.41, 0.95], step=1800)
    assert confidence_of(request(metrics=[spike]), "memory_leak") == 0.0


def test_a_rise_within_minutes_is_not_a_leak() -> None:
    quick = series(MEMORY, [0.4, 0.5, 0.6, 0.7, 0.8], step=60)
    assert confidence_of(request(metrics=[quick]), "memory_leak") == 0.0


def test_oom_after_hours_of_uptime_is_a_leak_not_a_burst() -> None:
    late = pod(
        reason="OOMKilled", exitCode=137, startedAt="2024-05-01T03:00:00Z", finishedAt="2024-05-01T10:20:00Z"
    )
    diagnosis = heuristic_diagnosis(request(pods=[late]))
    assert diagnosis.category == "memory_leak"
    assert any("runner-up oom" in r for r in diagnosis.risks)


# --- crashloop_config -------------------------------------------------------------------------------


def test_config_error_in_logs_of_a_crash_loop() -> None:
    logs = "panic: required environment variable DATABASE_URL is not set\n\ngoroutine 1 [running]:\n"
    diagnosis = heuristic_diagnosis(
        request(logs=logs, pods=[pod(reason="Error", exitCode=2) | {"waitingReason": "CrashLoopBackOff"}])
    )
    assert diagnosis.category == "crashloop_config"
    assert diagnosis.evidence[0].ref.startswith("logs.templates[")


def test_missing_configmap_is_decisive() -> None:
    event = {"type": "Warning", "reason": "Failed", "message": 'Error: configmap "payments-config" not found'}
    diagnosis = heuristic_diagnosis(request(events=[event]))
    assert diagnosis.category == "crashloop_config"
    assert diagnosis.confidence >= 0.8


def test_failed_mount_of_a_volume_that_times_out_is_not_config() -> None:
    event = {
        "type": "Warning",
        "reason": "FailedMount",
        "message": "Unable to attach or mount volumes: unmounted volumes=[data]: timed out waiting for the condition",
    }
    assert confidence_of(request(events=[event]), "crashloop_config") == 0.0


def test_crash_loop_on_a_refused_database_is_a_dependency() -> None:
    logs = "2024-05-01T10:20:00Z ERROR connect ECONNREFUSED 10.96.120.4:27017\n"
    req = request(logs=logs, pods=[pod(reason="Error", exitCode=1)])
    assert heuristic_diagnosis(req).category == "dependency_down"


def test_liveness_probe_on_the_wrong_port() -> None:
    events = [
        {
            "type": "Warning",
            "reason": "Unhealthy",
            "message": 'Liveness probe failed: Get "http://10.244.1.7:8080/healthz": dial tcp 10.244.1.7:8080: connect: connection refused',
        }
    ]
    logs = "2024-05-01T10:20:00Z INFO api listening on :3000\n"
    req = request(logs=logs, events=events, pods=[pod(reason="Error", exitCode=143)])
    diagnosis = heuristic_diagnosis(req)
    assert diagnosis.category == "crashloop_config"
    assert "listens on 3000" in diagnosis.explanation


# --- bad_deploy -------------------------------------------------------------------------------------


def rollout(at: str) -> dict[str, object]:
    return {"name": "checkout", "revision": 18, "image": "shop/checkout:1.43.0", "changedAt": at}


ERRORS = 'sum(rate(http_requests_total{service="checkout",code=~"5.."}[5m]))'


def test_errors_stepping_up_at_a_rollout() -> None:
    errors = series(ERRORS, [0.1, 0.1, 0.1, 2.0, 2.2, 2.1], step=300, start=1714558800)  # 10:20 .. 10:45
    req = request(deployments=[rollout("2024-05-01T10:33:00Z")], metrics=[errors], starts_at=None)
    diagnosis = heuristic_diagnosis(req)
    assert diagnosis.category == "bad_deploy"
    assert any(e.ref == "deployments[checkout].changedAt" for e in diagnosis.evidence)


def test_an_old_rollout_counts_against_bad_deploy() -> None:
    req = request(deployments=[rollout("2024-04-30T20:00:00Z")], pods=[pod(reason="Error", exitCode=1)])
    ranked = {c.category: c for c in rank(req)}
    assert "bad_deploy" not in ranked  # only counter-evidence: no candidate
    assert heuristic_diagnosis(req).category != "bad_deploy"


def test_a_rollout_after_the_trouble_did_not_cause_it() -> None:
    assert confidence_of(request(deployments=[rollout("2024-05-01T11:00:00Z")]), "bad_deploy") == 0.0


def test_image_pull_failure_is_a_bad_deploy() -> None:
    pending = {
        "name": "cart-74d6-4mqkd",
        "phase": "Pending",
        "ready": False,
        "waitingReason": "ImagePullBackOff",
    }
    diagnosis = heuristic_diagnosis(request(pods=[pending]))
    assert diagnosis.category == "bad_deploy"
    assert diagnosis.confidence >= 0.8


# --- cpu_saturation and traffic_spike --------------------------------------------------------------


def test_cpu_at_its_limit_with_flat_traffic() -> None:
    flat = series(REQUESTS, [400, 410, 398, 405, 402])
    diagnosis = heuristic_diagnosis(request(metrics=[instant(CPU, 0.96), flat]))
    assert diagnosis.category == "cpu_saturation"
    assert "flat" in diagnosis.explanation


def test_raw_cpu_cores_without_a_limit_say_nothing() -> None:
    raw = instant('sum(rate(container_cpu_usage_seconds_total{container="app"}[5m]))', 3.2)
    assert confidence_of(request(metrics=[raw]), "cpu_saturation") == 0.0


def test_cpu_steal_is_cpu_saturation() -> None:
    steal = instant('avg(rate(node_cpu_seconds_total{mode="steal"}[5m]))', 0.3)
    assert heuristic_diagnosis(request(metrics=[steal])).category == "cpu_saturation"


def test_busy_cpu_explained_by_tripled_traffic_is_a_traffic_spike() -> None:
    growing = series(REQUESTS, [400, 420, 800, 1200, 1300])
    diagnosis = heuristic_diagnosis(request(metrics=[instant(CPU, 0.96), growing]))
    assert diagnosis.category == "traffic_spike"
    assert any("runner-up cpu_saturation" in r for r in diagnosis.risks)


def test_flat_traffic_is_no_spike() -> None:
    flat = series(REQUESTS, [400, 410, 398, 405, 402])
    assert confidence_of(request(metrics=[flat]), "traffic_spike") == 0.0


def test_traffic_against_an_offset_baseline() -> None:
    ratio = instant(
        "sum(rate(nginx_ingress_controller_requests[5m])) / sum(rate(nginx_ingress_controller_requests[5m] offset 1d))",
        4.2,
    )
    assert heuristic_diagnosis(request(metrics=[ratio])).category == "traffic_spike"


# --- disk_full ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "value", "fires"),
    [
        (
            "node_filesystem_avail_bytes{mountpoint='/'} / node_filesystem_size_bytes{mountpoint='/'}",
            0.02,
            True,
        ),
        (
            "node_filesystem_avail_bytes{mountpoint='/'} / node_filesystem_size_bytes{mountpoint='/'}",
            0.5,
            False,
        ),
        (
            "1 - node_filesystem_avail_bytes{mountpoint='/'} / node_filesystem_size_bytes{mountpoint='/'}",
            0.97,
            True,
        ),
        ("(1 - node_filesystem_avail_bytes / node_filesystem_size_bytes) * 100", 40.0, False),
        ("(1 - node_filesystem_avail_bytes / node_filesystem_size_bytes) * 100", 96.0, True),
    ],
)
def test_filesystem_shares(query: str, value: float, fires: bool) -> None:
    assert (confidence_of(request(metrics=[instant(query, value)]), "disk_full") > 0) is fires


def test_enospc_in_logs() -> None:
    logs = '2024-05-01 10:20:00 UTC [1021] PANIC:  could not write to file "pg_wal/xlogtemp.1021": No space left on device\n'
    diagnosis = heuristic_diagnosis(request(logs=logs))
    assert diagnosis.category == "disk_full"
    assert diagnosis.confidence >= 0.75


# --- dependency_down and network -------------------------------------------------------------------


def test_refused_by_another_host_is_a_dependency() -> None:
    logs = "2024-05-01T10:20:00Z ERROR dial tcp 10.96.44.12:5432: connect: connection refused\n"
    diagnosis = heuristic_diagnosis(request(logs=logs))
    assert diagnosis.category == "dependency_down"
    assert "10.96.44.12" in diagnosis.explanation


def test_refused_by_its_own_address_is_only_a_weak_hint() -> None:
    logs = "2024-05-01T10:20:00Z ERROR dial tcp 127.0.0.1:8080: connect: connection refused\n"
    assert confidence_of(request(logs=logs), "dependency_down") == pytest.approx(0.2)


def test_refused_probe_alone_is_a_low_confidence_dependency_down() -> None:
    """The ServiceDown path of the workflow: the endpoint callers depend on is not listening."""
    probe = {
        "url": "http://demo:8080/health",
        "ok": False,
        "error": "ConnectError: [Errno 111] Connection refused",
    }
    diagnosis = heuristic_diagnosis(request(alert="ServiceDown", probe=probe))
    assert diagnosis.category == "dependency_down"
    assert 0.4 <= diagnosis.confidence <= 0.6
    assert diagnosis.evidence[0].ref == "probe"


def test_dns_failures_are_network() -> None:
    logs = '2024-05-01T10:20:00Z ERROR Post "https://api.stripe.com/v1/charges": dial tcp: lookup api.stripe.com: Temporary failure in name resolution\n'
    assert heuristic_diagnosis(request(logs=logs)).category == "network"


def test_timeouts_to_many_hosts_are_network_to_one_host_a_dependency() -> None:
    many = (
        "2024-05-01T10:20:00Z ERROR dial tcp 10.96.22.7:8080: i/o timeout\n"
        "2024-05-01T10:20:01Z ERROR dial tcp 10.96.31.2:8080: i/o timeout\n"
    )
    one = "2024-05-01T10:20:00Z ERROR dial tcp 10.96.22.7:8080: i/o timeout\n" * 2
    assert heuristic_diagnosis(request(logs=many)).category == "network"
    assert heuristic_diagnosis(request(logs=one)).category == "dependency_down"


def test_timeouts_to_a_peer_that_reports_up_are_network() -> None:
    logs = "2024-05-01T10:20:00Z ERROR dial tcp 10.96.50.5:5432: i/o timeout\n"
    assert (
        heuristic_diagnosis(request(logs=logs, metrics=[instant('pg_up{instance="pg"}', 1)])).category
        == "network"
    )


# --- cert_expiry ----------------------------------------------------------------------------------


def test_expired_certificate_by_metric() -> None:
    expired = instant('probe_ssl_earliest_cert_expiry{instance="https://shop"} - time()', -3600)
    diagnosis = heuristic_diagnosis(request(metrics=[expired]))
    assert diagnosis.category == "cert_expiry"
    assert diagnosis.confidence >= 0.8


def test_raw_expiry_timestamp_is_compared_with_collection_time() -> None:
    expiry = instant('probe_ssl_earliest_cert_expiry{instance="https://shop"}', 1714560000)  # 11:00Z
    soon = request(metrics=[expiry], collected_at="2024-05-01T10:30:00Z")
    later = request(metrics=[expiry], collected_at="2024-05-01T11:30:00Z")
    assert 0 < confidence_of(soon, "cert_expiry") < confidence_of(later, "cert_expiry")


def test_a_certificate_valid_for_months_is_no_cause() -> None:
    valid = instant("probe_ssl_earliest_cert_expiry - time()", 90 * 86400)
    assert confidence_of(request(metrics=[valid]), "cert_expiry") == 0.0


def test_x509_expired_in_logs() -> None:
    logs = "2024-05-01T10:20:00Z ERROR tls: failed to verify certificate: x509: certificate has expired or is not yet valid\n"
    assert heuristic_diagnosis(request(logs=logs)).category == "cert_expiry"


# --- node_failure ---------------------------------------------------------------------------------


def test_node_not_ready() -> None:
    event = {
        "type": "Normal",
        "reason": "NodeNotReady",
        "object": "Node/ip-10-0-3-17",
        "message": "Node ip-10-0-3-17 status is now: NodeNotReady",
    }
    diagnosis = heuristic_diagnosis(request(events=[event], pods=[{"name": "cart-1", "phase": "Unknown"}]))
    assert diagnosis.category == "node_failure"


def test_disk_pressure_on_a_ready_node_is_disk_not_node() -> None:
    req = request(nodes=[{"name": "ip-10-0-9-31", "ready": True, "conditions": ["DiskPressure"]}])
    assert heuristic_diagnosis(req).category == "disk_full"
    assert confidence_of(req, "node_failure") == 0.0


# --- the alert name, calibration and the unknown answer -------------------------------------------


def test_the_alert_name_alone_decides_nothing() -> None:
    diagnosis = heuristic_diagnosis(request(alert="KubeNodeNotReady"))
    assert diagnosis.category == "unknown"
    assert diagnosis.confidence == pytest.approx(0.2)


def test_the_alert_name_adds_a_little_to_supported_evidence() -> None:
    pods = [pod(reason="Error", exitCode=137)]
    assert confidence_of(request(alert="KubeContainerOOMKilled", pods=pods), "oom") > confidence_of(
        request(alert="Other", pods=pods), "oom"
    )


def test_several_weak_signals_stay_below_one_decisive_signal() -> None:
    logs = (
        "2024-05-01T10:20:00Z ERROR read tcp 10.244.2.8:53712->10.96.14.3:443: read: connection reset by peer\n"
        "2024-05-01T10:20:01Z ERROR request failed: context deadline exceeded\n"
    )
    probe = {"url": "http://checkout/healthz", "ok": False, "error": "ReadTimeout: timed out"}
    weak = confidence_of(request(logs=logs, probe=probe), "network")
    decisive = confidence_of(request(pods=[pod(reason="OOMKilled", exitCode=137)]), "oom")
    assert 0.5 < weak < decisive


def test_one_fact_repeated_counts_once() -> None:
    one = confidence_of(request(pods=[pod("a", reason="OOMKilled", exitCode=137)]), "oom")
    three = confidence_of(request(pods=[pod(n, reason="OOMKilled", exitCode=137) for n in "abc"]), "oom")
    assert one == three


def test_near_tie_lowers_confidence_and_names_the_runner_up() -> None:
    logs = "2024-05-01T10:20:00Z ERROR dial tcp 10.96.44.12:5432: connect: connection refused\n"
    req = request(logs=logs, metrics=[instant(MEMORY, 0.97)], pods=[pod(reason="Error", exitCode=137)])
    top, second = rank(req)[:2]
    diagnosis = heuristic_diagnosis(req)
    assert top.confidence - second.confidence < 0.1
    assert diagnosis.confidence == pytest.approx(round(top.confidence * 0.85, 3))
    assert any(r.startswith(f"runner-up {second.category}") for r in diagnosis.risks)
    assert any(c.startswith(f"to rule out {second.category}") for c in diagnosis.next_checks)


def test_no_evidence_is_unknown_with_next_checks() -> None:
    diagnosis = heuristic_diagnosis(request(notes=["Prometheus not configured (REMEDIATOR_PROMETHEUS_URL)"]))
    assert diagnosis.category == "unknown"
    assert diagnosis.next_checks
    assert "Prometheus not configured" in diagnosis.explanation
