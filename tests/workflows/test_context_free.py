"""worker.sandbox.for_converter: the SDK's serialization-context lookups (an `exec` in the sandbox per
payload sequence) are skipped only for a converter that ignores the context, as ours does."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from typing import Any

from pydantic import SecretStr
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    ActivitySerializationContext,
    DataConverter,
    PayloadCodec,
    SerializationContext,
    WithSerializationContext,
)
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.config import Settings
from tests.workflows.context_probe import ContextProbe, echo
from worker.client import data_converter
from worker.codec import ENCODING, new_key_entry
from worker.sandbox import SANDBOX_RUNNER, ContextFreeRunner, for_converter


class RecordingCodec(PayloadCodec, WithSerializationContext):
    """Passes payloads through unchanged and notes the context it was given for each sequence."""

    def __init__(self, seen: list[SerializationContext | None], context: SerializationContext | None = None):
        self.seen, self.context = seen, context

    def with_context(self, context: SerializationContext) -> RecordingCodec:
        return RecordingCodec(self.seen, context)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        self.seen.append(self.context)
        return list(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        self.seen.append(self.context)
        return list(payloads)


def _converter(codec: PayloadCodec) -> DataConverter:
    return dataclasses.replace(pydantic_data_converter, payload_codec=codec)


def _encrypting() -> DataConverter:
    """The worker's own converter (worker.client.data_converter), with a key."""
    return data_converter(Settings(codec_keys=SecretStr(new_key_entry("k1")), codec_active_key="k1"))


async def _run_probe(env: WorkflowEnvironment, converter: DataConverter) -> tuple[str, Any]:
    client = Client(env.client.service_client, namespace=env.client.namespace, data_converter=converter)
    queue = f"context-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=[ContextProbe],
        activities=[echo],
        workflow_runner=for_converter(converter),
    ):
        handle = await client.start_workflow(
            ContextProbe.run, "disk full on db-1", id=queue, task_queue=queue
        )
        result = await handle.result()
    return result, await handle.fetch_history()


def test_only_a_converter_that_ignores_the_context_skips_the_lookups() -> None:
    assert for_converter(_encrypting()) == ContextFreeRunner(SANDBOX_RUNNER)
    assert for_converter(pydantic_data_converter) == ContextFreeRunner(SANDBOX_RUNNER)
    assert for_converter(_converter(RecordingCodec([]))) is SANDBOX_RUNNER


async def test_every_payload_is_still_encrypted_without_the_lookups(time_env: WorkflowEnvironment) -> None:
    result, history = await _run_probe(time_env, _encrypting())
    assert result == "disk full on db-1"
    scheduled = next(
        e for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    )
    [sent] = scheduled.activity_task_scheduled_event_attributes.input.payloads
    assert sent.metadata["encoding"] == ENCODING
    assert b"disk full" not in sent.data


async def test_a_converter_that_uses_the_context_still_gets_it(time_env: WorkflowEnvironment) -> None:
    seen: list[SerializationContext | None] = []
    result, _ = await _run_probe(time_env, _converter(RecordingCodec(seen)))
    assert result == "disk full on db-1"
    # the workflow's encoding of the activity's input, under the activity's own context
    assert any(
        isinstance(c, ActivitySerializationContext) and c.activity_type == "context-echo" for c in seen
    )
