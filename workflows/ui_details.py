"""What the Temporal Web UI shows of an incident: its summary and details, and what each step is.

The static summary and details are set once, when the API starts the incident (api/ingest.py); the
current details follow the phase and the approvers (`IncidentRuntime.show`, through `set_current_details`,
which adds nothing to history); activities and timers carry one-line summaries. Summaries are plain
text (the UI shows them as titles, 400 bytes at most). Details are Markdown, and whatever an alert's
sender wrote goes into code spans, so it can never become a link or markup there.
"""

from __future__ import annotations

from datetime import timedelta

from workflows.incident_models import IncidentInput, IncidentState
from workflows.phases import Phase
from workflows.playbook_host import ApprovalRequest

SUMMARY_CHARS = 200
VALUE_CHARS = 200


def line(text: str) -> str:
    """One line of plain text, short enough for a summary."""
    flat = " ".join(text.split())
    return flat if len(flat) <= SUMMARY_CHARS else flat[: SUMMARY_CHARS - 1] + "…"


def code(text: str) -> str:
    """`text` as a Markdown code span: shown as written, never rendered."""
    flat = " ".join(text.split()).replace("`", "'")[:VALUE_CHARS]
    return f"`{flat}`" if flat else "(none)"


def duration(delta: timedelta) -> str:
    """`15m`, `1h30m`, `45s`: durations as playbooks write them."""
    seconds = max(int(delta.total_seconds()), 0)
    parts = (
        (seconds // 86400, "d"),
        (seconds % 86400 // 3600, "h"),
        (seconds % 3600 // 60, "m"),
        (seconds % 60, "s"),
    )
    return "".join(f"{n}{unit}" for n, unit in parts if n) or "0s"


def static_summary(inp: IncidentInput) -> str:
    alert = inp.alert
    environment = inp.environment or inp.policy.default_environment
    service = alert.service or "no service label"
    return line(
        f"{alert.name} on {service} in {environment or 'no environment'} ({alert.severity or 'no severity'})"
    )


def static_details(inp: IncidentInput) -> str:
    alert = inp.alert
    rows = [
        ("Alert", code(alert.name)),
        ("Service", code(alert.service)),
        ("Environment", code(inp.environment or inp.policy.default_environment)),
        ("Severity", code(alert.severity)),
        ("Summary", code(alert.annotations.get("summary") or alert.annotations.get("description", ""))),
        ("Source", f"{alert.source}, sent by {code(inp.opened_by)}"),
    ]
    if inp.trace_id:
        rows.append(("Trace", code(inp.trace_id)))
    if inp.playbook is not None:
        plan = (
            f"Runs playbook {code(inp.playbook.name)} (sha256 {inp.playbook.sha256[:12]}); a step the policy "
            "does not auto-approve waits for approvers."
        )
    else:
        plan = "No playbook fits: after the diagnosis a catalogue plan is proposed and waits for approvers."
    decide = (
        f"Decide with `remediator approve {alert.workflow_id}` (or `reject`), the API, or "
        f"`temporal workflow signal --workflow-id {alert.workflow_id} --name approve "
        """--input '{"approver":"<you>"}'`."""
    )
    table = "\n".join(f"| {name} | {value} |" for name, value in rows)
    return f"| | |\n|---|---|\n{table}\n\n**What is needed:** {plan}\n\n{decide}"


def current_details(state: IncidentState, asking: ApprovalRequest | None) -> str:
    """The phase, what the incident waits for, and who decided so far."""
    last = state.timeline[-1].event if state.timeline else ""
    parts = [f"**Phase:** {state.phase.value}" + (f" ({code(last)})" if last else "")]
    if asking is not None and state.phase == Phase.AWAITING_APPROVAL:
        who = f" of {', '.join(code(e) for e in asking.eligible)}" if asking.eligible else ""
        parts.append(
            f"**Waiting for:** {asking.approvers_required} distinct approver(s){who} on step {code(asking.step)}"
        )
    if state.approvals:
        decided = (
            f"{'approved' if a.approved else 'rejected'} by {code(a.approver)} via {a.via}"
            for a in state.approvals
        )
        parts.append(f"**Decisions:** {'; '.join(decided)}")
    if state.trace_id:
        parts.append(f"**Trace:** {code(state.trace_id)}")
    return "\n\n".join(parts)
