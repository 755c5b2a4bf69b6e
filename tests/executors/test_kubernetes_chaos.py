"""A worker SIGKILLed in the middle of a Kubernetes apply: the retry on a new worker finishes the job
and every effect happens exactly once.

The emulator makes the write slow AFTER it took effect (the worst moment to die: the change is made,
the worker never hears so). The real worker runs in its own process (tests/chaos/harness.py) with the
real dev server; the emulator counts the writes that carry this step's idempotency key.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from tests.chaos.harness import KillScenario, ProcessTree, run_kill_scenario
from tests.k8s_emulator.controllers import PODS
from tests.k8s_emulator.harness import RS_OWNER, KubeTarget, deployment, emulated, evictions, pod
from tests.k8s_emulator.server import ClusterEmulator
from worker.devserver import DevServer
from workflows.actions import KubernetesAction
from workflows.plans import ActionRequest

pytestmark = [pytest.mark.chaos, pytest.mark.kubernetes]
OWNER = {
    "apiVersion": "apps/v1",
    "kind": "ReplicaSet",
    "name": "web-5d9c",
    "uid": "rs-uid",
    "controller": True,
}


def seed_scale(kube: KubeTarget, emulator: ClusterEmulator) -> KubernetesAction:
    kube.create(deployment("web", replicas=2))
    emulator.slow("PATCH", r"/deployments/web$", 60, after=True)
    return KubernetesAction(
        name="scale up", operation="scale", namespace="shop", args={"deployment": "web", "replicas": 5}
    )


def seed_drain(kube: KubeTarget, emulator: ClusterEmulator) -> KubernetesAction:
    for name in ("web-1", "web-2"):
        kube.create(pod(name, node="node-1", ownerReferences=[RS_OWNER]))
    emulator.slow("POST", r"/pods/web-1/eviction$", 60, after=True)  # the kill lands while kubectl waits here
    return KubernetesAction(name="drain", operation="drain", args={"node": "node-1", "timeout_seconds": 120})


def scale_took_effect(emulator: ClusterEmulator, key_prefix: str) -> Callable[[ProcessTree], bool]:
    return lambda tree: any(
        m.plural == "deployments" and m.key.startswith(key_prefix) for m in emulator.mutations
    )


def eviction_took_effect(emulator: ClusterEmulator, key_prefix: str) -> Callable[[ProcessTree], bool]:
    def ready(tree: ProcessTree) -> bool:
        evicted = emulator.store.get(PODS, "shop", "web-1") is None
        return evicted and any("kubectl" in command and " drain " in command for command in tree.values())

    return ready


@pytest.mark.parametrize("operation", ["scale", "drain"])
async def test_killed_worker_mid_apply_has_one_effect(
    dev_server: DevServer, dev_client: Client, tmp_path: Path, operation: str
) -> None:
    with emulated(tmp_path) as kube:
        emulator = kube.emulator
        assert emulator is not None
        action = seed_scale(kube, emulator) if operation == "scale" else seed_drain(kube, emulator)
        request = ActionRequest(incident_id=f"incident-{uuid.uuid4().hex[:12]}", step="fix", action=action)
        prefix = f"{request.idempotency_key}@"
        ready = scale_took_effect if operation == "scale" else eviction_took_effect
        env: dict[str, Any] = {
            "REMEDIATOR_KUBECONFIG": str(kube.kubeconfig),
            "REMEDIATOR_KUBE_NAMESPACES": json.dumps(["shop"]),
            "REMEDIATOR_STATE_DIR": str(tmp_path / "state"),
        }
        result = await run_kill_scenario(
            dev_server,
            dev_client,
            KillScenario(request=request, env=env, ready_to_kill=ready(emulator, prefix)),
            tmp_path,
        )
        assert result.outcome.ok and result.outcome.changed, result.outcome.summary
        assert any("worker_proc" in c for c in result.killed.values())
        assert not result.survivors, f"still running after the kill: {result.survivors}"
        if operation == "scale":
            assert "already applied by an earlier attempt" in result.outcome.summary
            [effect] = [m for m in emulator.mutations if m.key.startswith(prefix)]
            assert effect.method == "PATCH" and kube.deployment("web")["spec"]["replicas"] == 5
        else:
            assert any("kubectl" in c and " drain " in c for c in result.killed.values()), "killed mid-drain"
            assert "resumed after an earlier attempt" in result.outcome.summary
            assert evictions(kube) == ["web-1", "web-2"], "each pod evicted once"
            cordons = [m for m in emulator.mutations if m.plural == "nodes" and m.key.startswith(prefix)]
            assert len(cordons) == 1
