"""Reads a playbook may make (`check` and `verify` steps): one model per kind, joined in `CheckSpec`.

Each kind is one read activity that already exists (for evidence, and as the investigation's
tools): its fields are that activity's input plus `type`, and it declares its output model, so a
template such as `${steps.probe.status}` is checked before anything runs.

| type                          | activity                      | output            |
|-------------------------------|-------------------------------|-------------------|
| `probe`                       | `probe.http`                  | `ProbeResult`     |
| `prometheus`                  | `metrics.query`               | `MetricSample`    |
| `evidence`                    | `gather_evidence` (the alert) | `Evidence`        |
| `health`                      | `verify` (the alert)          | `Health`          |
| `kubernetes.pods`             | `kube_pods`                   | `PodList`         |
| `kubernetes.deployments`      | `kube_deployments`            | `DeploymentList`  |
| `kubernetes.events`           | `kube_events`                 | `EventList`       |
| `kubernetes.logs`             | `kube_logs`                   | `PodLogs`         |
| `kubernetes.rollout_history`  | `kube_rollout_history`        | `RolloutHistory`  |
| `preview`                     | `<executor>.preview`          | `ActionOutcome`   |

`preview` reads through an executor (terraform plan, a Kubernetes server-side dry run); by the
executors' contract it never changes anything. Activity names come from workflows/activity_names.py.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from workflows.actions import ActionSpec
from workflows.activity_names import (
    GATHER_EVIDENCE,
    KUBE_DEPLOYMENTS,
    KUBE_EVENTS,
    KUBE_LOGS,
    KUBE_PODS,
    KUBE_ROLLOUT_HISTORY,
    METRICS_QUERY,
    PROBE_HTTP,
    VERIFY,
    executor_op,
)
from workflows.alerts import Alert
from workflows.evidence import Evidence, MetricSample, ProbeResult
from workflows.investigation_models import ProbeRequest, PromQuery
from workflows.kube_reads import (
    DeploymentList,
    DeploymentsQuery,
    EventList,
    EventsQuery,
    LogsQuery,
    PodList,
    PodLogs,
    PodsQuery,
    RolloutHistory,
    RolloutHistoryQuery,
)
from workflows.plans import ActionOutcome, ActionRequest, VerifyRequest


class _Read(BaseModel):
    """A check that is one read activity: the model's fields (but `type`) are the activity's input.

    A kind that reads through one fixed activity names it and its output where it is declared,
    `class PodsCheck(_Read, PodsQuery, activity=KUBE_PODS, output=PodList)`; its input is the query
    model it extends.
    """

    model_config = ConfigDict(extra="forbid")
    ACTIVITY: ClassVar[str]
    INPUT: ClassVar[type[BaseModel]]
    OUTPUT: ClassVar[type[BaseModel]]

    def __init_subclass__(
        cls, activity: str = "", output: type[BaseModel] | None = None, **kwargs: Any
    ) -> None:
        super().__init_subclass__(**kwargs)
        if output is not None:
            cls.ACTIVITY, cls.INPUT, cls.OUTPUT = activity, cls.__bases__[1], output

    @property
    def activity(self) -> str:
        return self.ACTIVITY

    def request(self, incident_id: str, step: str, alert: Alert) -> BaseModel:
        return self.INPUT.model_validate(self.model_dump(exclude={"type"}))


class ProbeCheck(_Read, ProbeRequest, activity=PROBE_HTTP, output=ProbeResult):
    """One HTTP GET; `ok` means a 2xx answer."""

    type: Literal["probe"] = "probe"


class PrometheusCheck(_Read, PromQuery, activity=METRICS_QUERY, output=MetricSample):
    """A PromQL query: instant, or a range over the last `range_minutes`. Series values are summed."""

    type: Literal["prometheus"] = "prometheus"


class PodsCheck(_Read, PodsQuery, activity=KUBE_PODS, output=PodList):
    type: Literal["kubernetes.pods"] = "kubernetes.pods"


class DeploymentsCheck(_Read, DeploymentsQuery, activity=KUBE_DEPLOYMENTS, output=DeploymentList):
    type: Literal["kubernetes.deployments"] = "kubernetes.deployments"


class EventsCheck(_Read, EventsQuery, activity=KUBE_EVENTS, output=EventList):
    type: Literal["kubernetes.events"] = "kubernetes.events"


class LogsCheck(_Read, LogsQuery, activity=KUBE_LOGS, output=PodLogs):
    type: Literal["kubernetes.logs"] = "kubernetes.logs"


class RolloutHistoryCheck(_Read, RolloutHistoryQuery, activity=KUBE_ROLLOUT_HISTORY, output=RolloutHistory):
    type: Literal["kubernetes.rollout_history"] = "kubernetes.rollout_history"


class EvidenceCheck(_Read):
    """Everything the evidence gatherer knows about the alert: probe, metrics, pods, events, logs."""

    ACTIVITY, INPUT, OUTPUT = GATHER_EVIDENCE, Alert, Evidence
    type: Literal["evidence"] = "evidence"

    def request(self, incident_id: str, step: str, alert: Alert) -> BaseModel:
        return alert


class Health(BaseModel):
    """What `verify` found. It answers only once healthy (and raises until then), with one sentence."""

    ok: bool = True
    summary: str

    @model_validator(mode="before")
    @classmethod
    def _sentence(cls, data: Any) -> Any:
        # The activity returns a plain string (histories hold it so); a journal holds the model.
        return {"summary": data} if isinstance(data, str) else data


class HealthCheck(_Read):
    """The incident's own verification: the probe URL answers 2xx and `healthy_query` is truthy; with
    neither, Prometheus no longer reports the alert firing (see activities/evidence.py)."""

    ACTIVITY, INPUT, OUTPUT = VERIFY, VerifyRequest, Health
    type: Literal["health"] = "health"
    probe_url: str = ""
    healthy_query: str = ""

    def request(self, incident_id: str, step: str, alert: Alert) -> BaseModel:
        return VerifyRequest(alert=alert, probe_url=self.probe_url, healthy_query=self.healthy_query)


class PreviewCheck(_Read):
    """An executor's preview of an action: what it would do, read without changing anything."""

    INPUT, OUTPUT = ActionRequest, ActionOutcome
    type: Literal["preview"] = "preview"
    action: ActionSpec

    @property
    def activity(self) -> str:
        return executor_op(self.action.executor, "preview")

    def request(self, incident_id: str, step: str, alert: Alert) -> BaseModel:
        return ActionRequest(incident_id=incident_id, step=step, action=self.action)


_KINDS = (
    ProbeCheck,
    PrometheusCheck,
    EvidenceCheck,
    HealthCheck,
    PodsCheck,
    DeploymentsCheck,
    EventsCheck,
    LogsCheck,
    RolloutHistoryCheck,
    PreviewCheck,
)
CheckSpec = Annotated[
    ProbeCheck
    | PrometheusCheck
    | EvidenceCheck
    | HealthCheck
    | PodsCheck
    | DeploymentsCheck
    | EventsCheck
    | LogsCheck
    | RolloutHistoryCheck
    | PreviewCheck,
    Field(discriminator="type"),
]
CHECK_OUTPUTS: dict[str, type[BaseModel]] = {str(k.model_fields["type"].default): k.OUTPUT for k in _KINDS}
