"""Diagnosis evaluation over recorded scenarios (tests/scenarios/*.yaml).

A scenario is what an SRE would have seen: the alert and the evidence (metrics, events, pod
states, logs, rollouts, a probe) plus the cause they settled on. `evaluate` runs any diagnoser
over them, so the LLM diagnoser is measured on the same cases as the heuristic one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from activities.diagnosis import Diagnoser, heuristic_diagnosis
from activities.logs import LogFormatError, LogLine, parse_lines, summarize_lines
from workflows.alerts import Alert, label_fingerprint
from workflows.diagnosis import DiagnoseRequest, Diagnosis, DiagnosisCategory
from workflows.evidence import (
    ContainerState,
    DeploymentRevision,
    Evidence,
    KubeEvent,
    MetricSample,
    NodeStatus,
    PodStatus,
    ProbeResult,
)

_STRICT = ConfigDict(extra="forbid")
_CAMEL = ConfigDict(extra="forbid", alias_generator=to_camel, validate_by_name=True, validate_by_alias=True)


class ScenarioError(ValueError):
    """A scenario that cannot be used; the message names the file and the line."""

    def __init__(self, path: Path, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line


# Scenario files are written by hand, so a misspelt key is an error rather than silently ignored.
class _Event(KubeEvent):
    model_config = _STRICT


class _LastState(ContainerState):
    model_config = _STRICT


class _Pod(PodStatus):
    model_config = _STRICT
    last_state: _LastState | None = None


class _Node(NodeStatus):
    model_config = _STRICT


class _Deployment(DeploymentRevision):
    model_config = _STRICT


class ScenarioAlert(BaseModel):
    model_config = _CAMEL
    name: str
    severity: str = "warning"
    service: str = ""
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    starts_at: datetime | None = None


class ScenarioProbe(BaseModel):
    model_config = _STRICT
    url: str = ""
    status: int | None = None
    latency_ms: float | None = None
    error: str = ""


class ScenarioEvidence(BaseModel):
    model_config = _CAMEL
    metrics: dict[str, float | list[tuple[float, float]]] = {}
    events: list[_Event] = []
    pods: list[_Pod] = []
    nodes: list[_Node] = []
    deployments: list[_Deployment] = []
    logs: str = ""
    baseline_logs: str = ""
    probe: ScenarioProbe | None = None
    collected_at: datetime | None = None


class Expected(BaseModel):
    model_config = _STRICT
    category: DiagnosisCategory


class Scenario(BaseModel):
    model_config = _STRICT
    name: str
    description: str = ""
    alert: ScenarioAlert
    evidence: ScenarioEvidence = ScenarioEvidence()
    expected: Expected


@dataclass(frozen=True)
class LoadedScenario:
    path: Path
    name_line: int
    scenario: Scenario
    request: DiagnoseRequest


class EvalCase(BaseModel):
    name: str
    expected: str
    got: str
    confidence: float
    ok: bool
    # LLM mode only (None otherwise, and left out of the JSON):
    tokens: int | None = None
    latency_ms: float | None = None
    fallback: str | None = Field(default=None, description="why the heuristic answer was kept")

    @classmethod
    def of(cls, case: LoadedScenario, diagnosis: Diagnosis) -> EvalCase:
        expected = case.scenario.expected.category
        return cls(
            name=case.scenario.name,
            expected=expected,
            got=diagnosis.category,
            confidence=diagnosis.confidence,
            ok=diagnosis.category == expected,
        )


class TokenTotals(BaseModel):
    total: int
    prompt: int
    completion: int
    per_case: float


class Latency(BaseModel):
    mean: float
    p95: float


class EvalReport(BaseModel):
    accuracy: float
    total: int
    correct: int
    cases: list[EvalCase]
    tokens: TokenTotals | None = None  # LLM mode only
    latency_ms: Latency | None = None  # LLM mode only: waiting for the model, per case

    @classmethod
    def of(cls, cases: list[EvalCase]) -> EvalReport:
        correct = sum(c.ok for c in cases)
        accuracy = round(correct / len(cases), 4) if cases else 0.0
        return cls(accuracy=accuracy, total=len(cases), correct=correct, cases=cases)


def _line_of(node: yaml.Node, loc: Sequence[int | str]) -> int:
    """The line (1-based) of the deepest YAML node that the pydantic error location reaches."""
    line = node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == part), None)
            if match is None:
                break
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _logs_line(root: yaml.Node, key: str, line_in_logs: int) -> int:
    """A line inside a `logs: |` block, counted from the block's first line."""
    node = root
    for part in ("evidence", key):
        if not isinstance(node, yaml.MappingNode):
            break
        node = next((v for k, v in node.value if k.value == part), node)
    block = isinstance(node, yaml.ScalarNode) and node.style in ("|", ">")
    return node.start_mark.line + (1 if block else 0) + max(line_in_logs, 1)


def _request(scenario: Scenario, path: Path, root: yaml.Node) -> DiagnoseRequest:
    spec, ev = scenario.alert, scenario.evidence
    labels = {"alertname": spec.name, "severity": spec.severity, **spec.labels}
    if spec.service:
        labels["service"] = spec.service
    alert = Alert(
        fingerprint=label_fingerprint(labels),
        labels=labels,
        annotations=spec.annotations,
        starts_at=spec.starts_at,
        source="manual",
    )
    metrics = [
        MetricSample(query=q, kind="instant", value=v)
        if isinstance(v, float)
        else MetricSample(query=q, kind="range", points=v)
        for q, v in ev.metrics.items()
    ]
    probe = None
    if ev.probe is not None:
        status = ev.probe.status
        probe = ProbeResult(
            url=ev.probe.url or alert.lookup("probe_url") or f"http://{spec.service or 'service'}/healthz",
            ok=not ev.probe.error and status is not None and 200 <= status < 400,
            status=status,
            latency_ms=ev.probe.latency_ms,
            error=ev.probe.error,
        )
    parsed: dict[str, list[LogLine]] = {}
    for key, text in (("baselineLogs", ev.baseline_logs), ("logs", ev.logs)):
        try:
            parsed[key] = parse_lines(text) if text else []
        except LogFormatError as err:
            raise ScenarioError(
                path, _logs_line(root, key, err.line), f"evidence.{key}: {err.reason}"
            ) from err
    evidence = Evidence(
        probe=probe,
        metrics=metrics,
        events=[KubeEvent.model_validate(e.model_dump()) for e in ev.events],
        pods=[PodStatus.model_validate(p.model_dump()) for p in ev.pods],
        nodes=[NodeStatus.model_validate(n.model_dump()) for n in ev.nodes],
        deployments=[DeploymentRevision.model_validate(d.model_dump()) for d in ev.deployments],
        logs=summarize_lines(parsed["logs"], parsed["baselineLogs"]) if ev.logs else None,
        collected_at=ev.collected_at,
    )
    return DiagnoseRequest(alert=alert, evidence=evidence)


def load_scenario(path: Path) -> LoadedScenario:
    try:
        loader = yaml.SafeLoader(path.read_text(encoding="utf-8"))
        try:
            root = loader.get_single_node()
            data = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as err:
        line = err.problem_mark.line + 1 if err.problem_mark else 1
        context = (
            f" ({err.context} on line {err.context_mark.line + 1})"
            if err.context and err.context_mark
            else ""
        )
        raise ScenarioError(path, line, f"invalid YAML: {err.problem}{context}") from err
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ScenarioError(path, 1, f"unreadable: {err}") from err
    if root is None or not isinstance(data, dict):
        raise ScenarioError(path, 1, "a scenario is a YAML mapping with name, alert, evidence and expected")
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        more = f" (and {err.error_count() - 1} more errors)" if err.error_count() > 1 else ""
        raise ScenarioError(path, _line_of(root, first["loc"]), f"{where}: {first['msg']}{more}") from err
    request = _request(scenario, path, root)
    return LoadedScenario(path, _line_of(root, ("name",)), scenario, request)


def load_scenarios(directory: Path) -> list[LoadedScenario]:
    files = sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml"))
    loaded: list[LoadedScenario] = []
    seen: dict[str, Path] = {}
    for path in files:
        case = load_scenario(path)
        if (other := seen.get(case.scenario.name)) is not None:
            raise ScenarioError(
                path, case.name_line, f"scenario name {case.scenario.name!r} is also used by {other}"
            )
        seen[case.scenario.name] = path
        loaded.append(case)
    return loaded


def evaluate(scenarios: Sequence[LoadedScenario], diagnoser: Diagnoser = heuristic_diagnosis) -> EvalReport:
    return EvalReport.of([EvalCase.of(case, diagnoser(case.request)) for case in scenarios])
