"""Guardrails between what a model says and what Remediator may do.

Alert text and tool outputs are attacker-controllable, so the model's answer is treated as a
proposal: every action must be a catalogue action on the allow-list with well-formed arguments
bound to the alert itself, every piece of evidence must quote a tool output that really exists, and
anything else is dropped with the reason recorded. Pure functions: this runs inside the workflow.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from workflows import regex
from workflows.actions import Risk
from workflows.alerts import Alert
from workflows.diagnosis import DiagnosisCategory

MAX_PROPOSALS = 5
MAX_TEXT = 2_000


class _Strict(BaseModel):
    # extra="forbid" and no defaults keep the JSON schema valid for strict structured outputs.
    model_config = ConfigDict(extra="forbid")


class QuotedEvidence(_Strict):
    ref: str = Field(description="id of the tool output relied on, e.g. 'evidence' or 'tool-2'")
    quote: str = Field(description="the exact words from that output")


class ActionArgument(_Strict):
    name: str
    value: str


class ActionProposal(_Strict):
    action: str = Field(description="a catalogue action name; nothing else can ever run")
    arguments: list[ActionArgument]
    reason: str


class LLMDiagnosis(_Strict):
    """The one structured answer the model must give (JSON-schema response format)."""

    summary: str
    category: DiagnosisCategory
    confidence: float = Field(ge=0.0, le=1.0)
    evidence: list[QuotedEvidence]
    proposed_actions: list[ActionProposal]
    risks: list[str]
    next_checks: list[str]


# --- the catalogue as the model sees it -----------------------------------------------------------


class ArgSpec(BaseModel):
    description: str
    pattern: str = Field(description="the whole value must match")
    equals_label: str = Field(default="", description="the value must equal this alert label or annotation")


class ActionContract(BaseModel):
    name: str
    description: str
    risk: Risk
    arguments: dict[str, ArgSpec] = {}


_NAME = r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}"

# Argument contracts of the catalogue's actions (workflows/catalogue.py). The plan builder still binds
# the real arguments from our configuration; these say what a model may put in a proposal.
ACTION_CONTRACTS: dict[str, ActionContract] = {
    "restart-service": ActionContract(
        name="restart-service",
        description="restart the alert's systemd service with Ansible; rollback restarts it again",
        risk="change",
        arguments={
            "service": ArgSpec(description="the alert's service", pattern=_NAME, equals_label="service"),
            "host": ArgSpec(
                description="the alert's host, if the alert names one", pattern=_NAME, equals_label="host"
            ),
        },
    ),
}


class CheckedAction(BaseModel):
    action: str
    arguments: dict[str, str]
    reason: str
    risk: Risk


class Drop(BaseModel):
    what: str
    why: str

    def __str__(self) -> str:
        return f"{self.what}: {self.why}"


class Checked(BaseModel):
    """The model's answer after the guardrails: only what survived, plus what was dropped and why."""

    answer: LLMDiagnosis
    actions: list[CheckedAction]
    drops: list[Drop]
    requires_human: bool
    requires_human_reason: str = ""


_QUOTING = str.maketrans("", "", "\\\"'")


def _squash(text: str) -> str:
    # Tool outputs are JSON: a quote copied from them may or may not keep the escapes and quote marks.
    return " ".join(text.translate(_QUOTING).split()).lower()


def _alert_value(alert: Alert, label: str) -> str:
    if label == "service":
        return alert.service
    return alert.lookup(label)


def check_action(
    proposal: ActionProposal, alert: Alert, contracts: dict[str, ActionContract], allowed: list[str]
) -> CheckedAction | Drop:
    what = f"action {proposal.action[:80]!r}"
    contract = contracts.get(proposal.action)
    if contract is None:
        return Drop(what=what, why="not in the catalogue")
    if allowed and proposal.action not in allowed:
        return Drop(what=what, why="outside the allow-list (REMEDIATOR_LLM_ALLOWED_ACTIONS)")
    if contract.risk == "destructive":
        return Drop(what=what, why="destructive actions are never taken from a model's proposal")
    arguments: dict[str, str] = {}
    for arg in proposal.arguments:
        spec = contract.arguments.get(arg.name)
        if spec is None:
            return Drop(what=what, why=f"unknown argument {arg.name[:40]!r}")
        if arg.name in arguments:
            return Drop(what=what, why=f"argument {arg.name!r} given twice")
        if not regex.fullmatch(spec.pattern, arg.value):
            return Drop(what=what, why=f"argument {arg.name}={arg.value[:80]!r} is malformed")
        if spec.equals_label and arg.value != _alert_value(alert, spec.equals_label):
            return Drop(
                what=what,
                why=f"argument {arg.name}={arg.value[:80]!r} is not the alert's {spec.equals_label}",
            )
        arguments[arg.name] = arg.value
    return CheckedAction(
        action=contract.name, arguments=arguments, reason=proposal.reason[:MAX_TEXT], risk=contract.risk
    )


def check_evidence(ref: QuotedEvidence, sources: dict[str, str]) -> QuotedEvidence | Drop:
    what = f"evidence {ref.ref[:40]!r}"
    source = sources.get(ref.ref)
    if source is None:
        return Drop(what=what, why="refers to no tool output of this investigation")
    if not ref.quote.strip() or _squash(ref.quote) not in _squash(source):
        return Drop(what=what, why=f"quote {ref.quote[:80]!r} does not appear in that output")
    return ref


def check(
    answer: LLMDiagnosis,
    alert: Alert,
    sources: dict[str, str],
    allowed: list[str],
    threshold: float,
    contracts: dict[str, ActionContract] = ACTION_CONTRACTS,
) -> Checked:
    """Keep what the catalogue, the policy and the recorded tool outputs support; say why the rest went."""
    drops: list[Drop] = []
    evidence: list[QuotedEvidence] = []
    for ref in answer.evidence:
        kept = check_evidence(ref, sources)
        if isinstance(kept, Drop):
            drops.append(kept)
        else:
            evidence.append(kept)
    actions: list[CheckedAction] = []
    for proposal in answer.proposed_actions:
        result = check_action(proposal, alert, contracts, allowed)
        if isinstance(result, Drop):
            drops.append(result)
        elif len(actions) == MAX_PROPOSALS:
            drops.append(Drop(what=f"action {proposal.action!r}", why=f"more than {MAX_PROPOSALS} proposals"))
        else:
            actions.append(result)
    cleaned = answer.model_copy(
        update={
            "summary": answer.summary[:MAX_TEXT],
            "evidence": evidence,
            "proposed_actions": [
                ActionProposal(
                    action=a.action,
                    arguments=[ActionArgument(name=k, value=v) for k, v in a.arguments.items()],
                    reason=a.reason,
                )
                for a in actions
            ],
            "risks": [r[:MAX_TEXT] for r in answer.risks[:10]],
            "next_checks": [c[:MAX_TEXT] for c in answer.next_checks[:10]],
        }
    )
    reasons = []
    if answer.confidence < threshold:
        reasons.append(f"confidence {answer.confidence:.2f} is below the threshold {threshold:.2f}")
    if any(d.what.startswith("action") for d in drops):
        # A model that asked for something forbidden may be following injected instructions.
        reasons.append("the model proposed actions the guardrails dropped")
    return Checked(
        answer=cleaned,
        actions=actions,
        drops=drops,
        requires_human=bool(reasons),
        requires_human_reason="; ".join(reasons),
    )
