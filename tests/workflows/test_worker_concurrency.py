"""worker.main.build_worker takes its polls and slots from Settings (README "Worker concurrency")."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import PollerBehaviorSimpleMaximum

from activities.config import Settings
from worker.main import activity_pool, build_worker


async def test_half_the_polls_fetch_new_incidents(time_env: WorkflowEnvironment, tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, worker_workflow_polls=12, worker_activity_slots=7)
    with activity_pool(settings) as pool:
        config = build_worker(time_env.client, settings, pool).config()
    assert config["workflow_task_poller_behavior"] == PollerBehaviorSimpleMaximum(12)
    assert config["nonsticky_to_sticky_poll_ratio"] == 0.5
    assert config["max_concurrent_activities"] == 7
    assert Settings(state_dir=tmp_path).worker_workflow_polls == 10


def test_one_poll_cannot_serve_both_queues(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="worker_workflow_polls"):
        Settings(state_dir=tmp_path, worker_workflow_polls=1)
