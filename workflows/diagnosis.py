"""A diagnosis of an alert from its evidence: its category, confidence, the evidence it rests on."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, Field

from workflows.alerts import Alert
from workflows.evidence import Evidence


class DiagnoseRequest(BaseModel):
    alert: Alert
    evidence: Evidence


DiagnosisCategory = Literal[
    "oom",
    "memory_leak",
    "crashloop_config",
    "bad_deploy",
    "cpu_saturation",
    "disk_full",
    "dependency_down",
    "traffic_spike",
    "node_failure",
    "cert_expiry",
    "network",
    "unknown",
]
DIAGNOSIS_CATEGORIES: tuple[str, ...] = get_args(DiagnosisCategory)


class EvidenceRef(BaseModel):
    """What a diagnosis relied on: where in the evidence, and the value found there."""

    ref: str  # e.g. "pods[checkout-7d9f-x].lastState"
    quote: str = ""  # e.g. "reason=OOMKilled exitCode=137"


class ProposedAction(BaseModel):
    """A catalogue action the diagnoser suggests; the plan, not the diagnoser, decides what runs."""

    name: str
    args: dict[str, str | int | float | bool] = {}
    reason: str = ""


class Diagnosis(BaseModel):
    category: DiagnosisCategory
    confidence: float = Field(ge=0.0, le=1.0)
    explanation: str
    source: Literal["heuristic", "llm"] = "heuristic"
    summary: str = ""
    evidence: list[EvidenceRef] = []
    proposed_actions: list[ProposedAction] = []
    risks: list[str] = []
    next_checks: list[str] = []
