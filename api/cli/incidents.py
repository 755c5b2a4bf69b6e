"""Incident commands of `remediator`: list, show, approve and reject (alerts: api/cli/alerts.py).

They talk to the API over HTTP (`--api-url`, else REMEDIATOR_API_URL), so they work against any
deployment, sending REMEDIATOR_API_KEY as `Authorization: Bearer`. Every failure is one line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Annotated, Any, NoReturn

import httpx
import typer
from rich.console import Console
from rich.table import Column, Table
from rich.text import Text

from activities.config import load_settings
from api.routes_incidents import workflow_id
from workflows.incident_models import IncidentState
from workflows.phases import Phase
from workflows.plans import ActionOutcome

app = typer.Typer()

# Approvals wait on the worker's answer; the API itself gives up (503) well before this.
TIMEOUT_SECONDS = 60.0
# After a decision, how long (and how often) to look for the phase it leads to.
SETTLE_SECONDS = 15.0
SETTLE_EVERY = 0.25

ApiUrl = Annotated[
    str | None,
    typer.Option(
        "--api-url", help="Remediator API base URL [default: REMEDIATOR_API_URL or http://127.0.0.1:8000]"
    ),
]
Reason = Annotated[str, typer.Option("--reason", help="Why; recorded in the incident's timeline.")]
Approver = Annotated[
    str | None,
    typer.Option(
        "--as",
        help="Who decides. The API records the principal of REMEDIATOR_API_KEY; a different name is refused.",
    ),
]

# No markup: alert text such as "[FIRING:2]" must print as written.
out = Console(highlight=False, markup=False)


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def default_api_url() -> str:
    return load_settings().api_url


def auth_headers() -> dict[str, str]:
    key = load_settings().api_key.get_secret_value()
    return {"Authorization": f"Bearer {key}"} if key else {}


def refused(status: int, answer: Any, has_key: bool) -> str:
    """A 401 or 403 as what to do about it."""
    message = answer.get("message", "") if isinstance(answer, dict) else ""
    if status == 401 and not has_key:
        return "the API needs a key: export REMEDIATOR_API_KEY=<key> (`remediator auth key create` makes one)"
    if status == 401:
        return f"the API refused REMEDIATOR_API_KEY: {message}; set a valid, unrevoked key"
    permission = answer.get("permission") if isinstance(answer, dict) else None
    need = f"a key whose role grants {permission}" if permission else "a key with the right role"
    return f"{message}; use {need} in REMEDIATOR_API_KEY"


def call(api_url: str | None, method: str, path: str, **kwargs: Any) -> Any:
    """One API call; any failure ends the command with the API's own message."""
    base = (api_url or default_api_url()).rstrip("/")
    headers = auth_headers()
    try:
        response = httpx.request(method, f"{base}{path}", timeout=TIMEOUT_SECONDS, headers=headers, **kwargs)
    except (httpx.HTTPError, httpx.InvalidURL) as err:
        fail(f"cannot reach the Remediator API at {base}: {err or type(err).__name__}")
    if response.is_success:
        try:
            return response.json()
        except ValueError:
            fail(f"{base} answered {response.status_code} without JSON: is it the Remediator API?")
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if response.status_code in (401, 403):
        fail(f"{refused(response.status_code, answer, bool(headers))} (HTTP {response.status_code})")
    message = (answer.get("message") if isinstance(answer, dict) else None) or response.text
    fail(f"{message} (HTTP {response.status_code})")


def incident_path(incident_id: str) -> str:
    return f"/incidents/{workflow_id(incident_id)}"


def when(value: datetime | str | None) -> str:
    if value is None:
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")  # the reader's local time


# --- incidents, show --------------------------------------------------------------------------


def full_id_column() -> Column:
    # Never wrapped or cut: an id is copied into the next command, so narrower columns give way.
    return Column("incident", no_wrap=True, overflow="ignore")


@app.command()
def incidents(
    phase: Annotated[Phase | None, typer.Option(help="Only incidents in this phase.")] = None,
    alertname: Annotated[str | None, typer.Option(help="Only incidents of this alert.")] = None,
    service: Annotated[str | None, typer.Option(help="Only incidents of this service.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="The API's rows as JSON, for scripts.")] = False,
    api_url: ApiUrl = None,
) -> None:
    """List incidents, optionally filtered by phase, alert name or service."""
    params = {"phase": phase, "alertname": alertname, "service": service, "limit": limit}
    rows = call(api_url, "GET", "/incidents", params={k: v for k, v in params.items() if v is not None})
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        out.print("no incidents match")
        return
    table = Table(full_id_column(), "phase", "alert", "service", "severity", "started", "workflow")
    for row in rows:
        table.add_row(
            row["incident_id"],
            row["phase"],
            row["alertname"],
            row["service"],
            row["severity"],
            when(row["started_at"]),
            row["workflow_status"],
        )
    out.print(table)


def _outcome(outcome: ActionOutcome | None) -> str:
    if outcome is None:
        return ""
    return f"{'ok' if outcome.ok else 'FAILED'}: {outcome.summary}"


def render(state: IncidentState) -> None:
    alert = state.alert
    out.print(Text.assemble((state.incident_id, "bold"), "  phase ", (str(state.phase), "bold")))
    facts = {
        "alert": f"{alert.name} ({alert.status}, from {alert.source})",
        "service": alert.service,
        "severity": alert.severity,
        "environment": alert.environment,
        "fingerprint": alert.fingerprint,
        "alert updates": str(state.alert_updates),
        "resolved at": when(state.resolved_at),
        "evidence": state.evidence_summary,
        "diagnosis": (
            f"{state.diagnosis.category} ({state.diagnosis.confidence:.2f}, {state.diagnosis.source}): "
            f"{state.diagnosis.explanation}"
            if state.diagnosis
            else ""
        ),
    }
    for key, value in facts.items():
        if value:
            out.print(f"  {key + ':':<14} {value}")

    timeline = Table("time", "phase", "event", "detail", title="timeline", title_justify="left")
    for entry in state.timeline:
        timeline.add_row(when(entry.at), entry.phase, entry.event, entry.detail)
    out.print(timeline)

    if state.approvals:
        approvals = Table("approver", "decision", "reason", "at", title="approvals", title_justify="left")
        for a in state.approvals:
            approvals.add_row(a.approver, "approved" if a.approved else "rejected", a.reason, when(a.at))
        out.print(approvals)

    if state.plan:
        out.print(f"plan: {state.plan.summary} (needs {state.plan.required_approvers} approver(s))")
        actions = Table(
            "step", "action", "preview", "result", "rollback", title="actions", title_justify="left"
        )
        for planned in state.plan.actions:
            actions.add_row(
                planned.step,
                f"{planned.action.executor}: {planned.action.name}",
                _outcome(planned.preview),
                _outcome(planned.result),
                _outcome(planned.rollback),
            )
        out.print(actions)


@app.command()
def show(
    incident_id: Annotated[str, typer.Argument(help="incident-<fingerprint> or the fingerprint")],
    api_url: ApiUrl = None,
) -> None:
    """Show one incident: its state, timeline, approvals, plan and actions."""
    render(IncidentState.model_validate(call(api_url, "GET", incident_path(incident_id))))


# --- approve, reject --------------------------------------------------------------------------


def settled(api_url: str | None, state: IncidentState) -> IncidentState:
    """The incident once the decision took effect: the update answers the moment it is recorded,
    before the workflow moves on, so look until the phase leaves AwaitingApproval (briefly)."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while state.phase == Phase.AWAITING_APPROVAL and time.monotonic() < deadline:
        time.sleep(SETTLE_EVERY)
        state = IncidentState.model_validate(call(api_url, "GET", incident_path(state.incident_id)))
    return state


def decide(incident_id: str, approve: bool, approver: str | None, reason: str, api_url: str | None) -> None:
    verb, done = ("approve", "approved") if approve else ("reject", "rejected")
    body = {"reason": reason} if approver is None else {"approver": approver, "reason": reason}
    state = IncidentState.model_validate(
        call(api_url, "POST", f"{incident_path(incident_id)}/{verb}", json=body)
    )
    # Who the incident recorded: the key's principal, whatever --as said.
    recorded = state.approvals[-1].approver if state.approvals else approver
    approvers = {a.approver for a in state.approvals if a.approved}
    needed = (state.plan.required_approvers if state.plan else 1) - len(approvers)
    if approve and needed > 0:
        out.print(f"{done} {state.incident_id} as {recorded}; waiting for {needed} more approver(s)")
        return
    state = settled(api_url, state)
    still = " (the worker has not moved it on yet)" if state.phase == Phase.AWAITING_APPROVAL else ""
    out.print(f"{done} {state.incident_id} as {recorded}; phase is now {state.phase}{still}")


@app.command()
def approve(
    incident_id: Annotated[str, typer.Argument(help="incident-<fingerprint> or the fingerprint")],
    approver: Approver = None,
    reason: Reason = "",
    api_url: ApiUrl = None,
) -> None:
    """Approve an incident's remediation plan."""
    decide(incident_id, True, approver, reason, api_url)


@app.command()
def reject(
    incident_id: Annotated[str, typer.Argument(help="incident-<fingerprint> or the fingerprint")],
    approver: Approver = None,
    reason: Reason = "",
    api_url: ApiUrl = None,
) -> None:
    """Reject an incident's remediation plan."""
    decide(incident_id, False, approver, reason, api_url)
