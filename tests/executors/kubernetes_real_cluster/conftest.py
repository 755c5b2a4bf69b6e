"""Opt-in: the real-cluster tests run only when REMEDIATOR_TEST_KUBECONFIG names a kubeconfig.

Without it they are deselected at collection (reported as "deselected", not as skips).
"""

from __future__ import annotations

import os

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "real_cluster: needs REMEDIATOR_TEST_KUBECONFIG (a cluster we may write to)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("REMEDIATOR_TEST_KUBECONFIG"):
        return
    dropped = [item for item in items if item.get_closest_marker("real_cluster")]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if not item.get_closest_marker("real_cluster")]
