"""A one-activity workflow for the chaos harness: `<executor>.apply` with IncidentWorkflow's retry
policy and timeout, but a short heartbeat timeout so that a killed worker is noticed in seconds."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.activity_options import ACTION_TIMEOUT, APPLY_RETRY
    from workflows.plans import ActionOutcome, ActionRequest


class ApplyInput(BaseModel):
    request: ActionRequest
    activity_task_queue: str
    heartbeat_timeout: timedelta


@workflow.defn(name="ChaosApplyWorkflow")
class ChaosApplyWorkflow:
    @workflow.run
    async def run(self, inp: ApplyInput) -> ActionOutcome:
        return await workflow.execute_activity(
            f"{inp.request.action.executor}.apply",
            inp.request,
            result_type=ActionOutcome,
            task_queue=inp.activity_task_queue,
            start_to_close_timeout=ACTION_TIMEOUT,
            heartbeat_timeout=inp.heartbeat_timeout,
            retry_policy=APPLY_RETRY,
        )
