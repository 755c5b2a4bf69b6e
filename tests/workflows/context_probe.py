"""A workflow with one activity, to see which serialization contexts a worker's codec is given."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn(name="context-echo")
async def echo(text: str) -> str:
    return text


@workflow.defn(name="ContextProbe")
class ContextProbe:
    @workflow.run
    async def run(self, text: str) -> str:
        return await workflow.execute_activity(echo, text, start_to_close_timeout=timedelta(seconds=10))
