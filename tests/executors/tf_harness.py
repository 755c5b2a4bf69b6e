"""A tiny workflow that runs Terraform executor operations by name.

The catalogue only knows Ansible, so the Terraform tests drive the executor through this workflow:
the same `execute_activity(f"terraform.{op}", ActionRequest)` calls IncidentWorkflow makes, with
timeouts a test can shorten.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows.plans import ActionRequest


class StepsInput(BaseModel):
    request: ActionRequest
    ops: list[str]
    timeout_seconds: float = 120.0
    heartbeat_seconds: float = 30.0
    attempts: int = 3


@workflow.defn(name="TerraformStepsWorkflow")
class TerraformStepsWorkflow:
    @workflow.run
    async def run(self, inp: StepsInput) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        for op in inp.ops:
            result = await workflow.execute_activity(
                f"terraform.{op}",
                inp.request,
                result_type=dict,
                start_to_close_timeout=timedelta(seconds=inp.timeout_seconds),
                heartbeat_timeout=timedelta(seconds=inp.heartbeat_seconds),
                retry_policy=RetryPolicy(
                    maximum_attempts=inp.attempts, initial_interval=timedelta(seconds=1)
                ),
            )
            results.append(result)
        return results
