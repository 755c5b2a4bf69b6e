"""The emulator's cases (tests/k8s_emulator/cases.py) against a real cluster, opt-in.

    REMEDIATOR_TEST_KUBECONFIG=~/.kube/config [REMEDIATOR_TEST_KUBE_CONTEXT=kind-dev] \\
    [REMEDIATOR_TEST_KUBE_NODE=kind-worker] pytest tests/executors/kubernetes_real_cluster

Each test works in a namespace of its own (`remediator-test-<random>`), deleted afterwards. The
cordon and uncordon cases run only when REMEDIATOR_TEST_KUBE_NODE names a node they may cordon for a
moment; drain is
not run here: it evicts whatever runs on the node.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.k8s_emulator.cases import CASES, case_cordon, case_uncordon
from tests.k8s_emulator.harness import KubeTarget

pytestmark = [pytest.mark.kubernetes, pytest.mark.real_cluster]
NODE = os.environ.get("REMEDIATOR_TEST_KUBE_NODE", "")


@pytest.fixture
def real(tmp_path: Path) -> Iterator[KubeTarget]:
    namespace = f"remediator-test-{uuid.uuid4().hex[:8]}"
    target = KubeTarget(
        Path(os.environ["REMEDIATOR_TEST_KUBECONFIG"]).expanduser(),
        namespace,
        tmp_path / "state",
        overrides={"kube_context": os.environ.get("REMEDIATOR_TEST_KUBE_CONTEXT", "")},
    )
    target.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    try:
        yield target
    finally:
        target.admin.call(f"deleting namespace {namespace}", target.admin.core.delete_namespace, namespace)


@pytest.mark.parametrize("case", sorted(CASES) + (["cordon", "uncordon"] if NODE else []))
def test_case_on_a_real_cluster(real: KubeTarget, case: str) -> None:
    if case in ("cordon", "uncordon"):
        (case_cordon if case == "cordon" else case_uncordon)(real, NODE)
    else:
        CASES[case](real)
