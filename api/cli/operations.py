"""`remediator run`, `operation`, `schedule create|list|delete|trigger` and `history`.

Like the incident commands they talk to the API over HTTP (`--api-url`, else REMEDIATOR_API_URL), which
pins the playbook and the policy it loaded. Every failure is one line on stderr and exit code 1.
"""

from __future__ import annotations

import getpass
import re
import time
from typing import Annotated, Any

import typer
from rich.table import Table

from api.cli.incidents import ApiUrl, call, fail, out, when
from workflows.operation_models import OperationState

app = typer.Typer()
schedule_app = typer.Typer(help="Temporal Schedules that start operations.", no_args_is_help=True)
app.add_typer(schedule_app, name="schedule")

POLL_SECONDS = 1.0
_PARAM = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=.*", re.DOTALL)

Targets = Annotated[
    list[str], typer.Option("--target", "-t", help="A target (host, host:port ...); repeat for several.")
]
Params = Annotated[
    list[str] | None, typer.Option("--param", "-p", help="KEY=VALUE for a playbook param (repeatable).")
]
Environment = Annotated[
    str, typer.Option("--environment", "-e", help="The environment the policy applies (dev, prod ...).")
]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Preview and record everything, execute nothing.")]
Concurrency = Annotated[int, typer.Option("--concurrency", "-c", min=1, max=50, help="Targets at once.")]
Attempts = Annotated[
    int, typer.Option("--attempts", min=1, max=10, help="Runs per target before it counts as failed.")
]
MaxFailures = Annotated[
    int | None, typer.Option("--max-failures", min=0, help="Start no more targets past this many failures.")
]


def parse_params(pairs: list[str]) -> dict[str, str]:
    for pair in pairs:
        if not _PARAM.fullmatch(pair):
            fail(f"--param {pair!r}: expected KEY=VALUE, with KEY a name such as retain_days")
    return dict(pair.split("=", 1) for pair in pairs)


def operation_body(
    playbook: str,
    targets: list[str],
    params: list[str] | None,
    environment: str,
    dry_run: bool,
    concurrency: int,
    attempts: int,
    max_failures: int | None,
) -> dict[str, Any]:
    return {
        "started_by": getpass.getuser(),  # as the OS knows the person; recorded, not authenticated
        "playbook": playbook,
        "targets": targets,
        "params": parse_params(params or []),
        "environment": environment,
        "dry_run": dry_run,
        "concurrency": concurrency,
        "attempts": attempts,
        "max_failures": max_failures,
    }


# --- run, operation ---------------------------------------------------------------------------


def render(state: OperationState, status: str) -> None:
    ref = state.playbook
    mode = "  (dry-run)" if state.dry_run else ""
    out.print(
        f"{state.operation_id}  {ref.name} (sha256 {ref.sha256[:12]})  phase {state.phase}  {status}{mode}"
    )
    table = Table("target", "status", "ended", "attempts", "reason")
    for t in state.targets:
        table.add_row(t.target, t.status, t.phase or "", str(t.attempts or ""), t.reason)
    out.print(table)
    if state.summary:
        out.print(state.summary)


def _progress(state: OperationState, seen: dict[str, str]) -> None:
    for t in state.targets:
        if seen.get(t.target) != t.status:
            seen[t.target] = t.status
            out.print(f"  {t.target}: {t.status}" + (f" - {t.reason}" if t.reason else ""))


def wait_for(operation_id: str, api_url: str | None) -> tuple[OperationState | None, str]:
    seen: dict[str, str] = {}
    while True:
        view = call(api_url, "GET", f"/operations/{operation_id}")
        state = OperationState.model_validate(view["state"]) if view["state"] else None
        if state is not None:
            _progress(state, seen)
        if view["workflow_status"] != "RUNNING":
            return state, view["workflow_status"]
        time.sleep(POLL_SECONDS)


@app.command()
def run(
    playbook: Annotated[str, typer.Argument(help="Playbook name (remediator playbook list)")],
    target: Targets,
    param: Params = None,
    environment: Environment = "",
    dry_run: DryRun = False,
    concurrency: Concurrency = 1,
    attempts: Attempts = 1,
    max_failures: MaxFailures = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow it until it ends; exit 1 unless all resolved.")
    ] = False,
    api_url: ApiUrl = None,
) -> None:
    """Run a playbook over targets now: health checks, backups, log rotation, batch restarts."""
    body = operation_body(playbook, target, param, environment, dry_run, concurrency, attempts, max_failures)
    started = call(api_url, "POST", "/operations", json=body)
    operation_id = started["operation_id"]
    out.print(
        f"started {operation_id}: {started['playbook']} (sha256 {started['sha256'][:12]}) over "
        f"{len(started['targets'])} target(s)" + (", dry-run" if started["dry_run"] else "")
    )
    if not wait:
        out.print(f"follow it with: remediator operation {operation_id}")
        return
    try:
        state, status = wait_for(operation_id, api_url)
    except KeyboardInterrupt:
        fail(f"stopped waiting; {operation_id} carries on (remediator operation {operation_id})")
    if state is None:
        fail(f"{operation_id} ended {status} without a result")
    render(state, status)
    if any(t.status != "resolved" for t in state.targets):
        raise typer.Exit(1)


@app.command()
def operation(
    operation_id: Annotated[str, typer.Argument(help="operation-<playbook>-<id>")],
    api_url: ApiUrl = None,
) -> None:
    """Show one operation: per-target results, health score and summary."""
    view = call(api_url, "GET", f"/operations/{operation_id}")
    if view["state"] is None:
        fail(f"{operation_id} is {view['workflow_status']}; its state cannot be read")
    render(OperationState.model_validate(view["state"]), view["workflow_status"])


# --- schedule ---------------------------------------------------------------------------------


@schedule_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="The schedule's name (its Temporal Schedule id)")],
    playbook: Annotated[str, typer.Option("--playbook", help="Playbook name")],
    target: Targets,
    cron: Annotated[str, typer.Option("--cron", help='Cron expression, UTC: "0 3 * * *"')] = "",
    every: Annotated[str, typer.Option("--every", help="Interval: 30m, 1h, 1d")] = "",
    param: Params = None,
    environment: Environment = "",
    dry_run: DryRun = False,
    concurrency: Concurrency = 1,
    attempts: Attempts = 1,
    max_failures: MaxFailures = None,
    api_url: ApiUrl = None,
) -> None:
    """Start an operation on a schedule; the playbook and policy are pinned now."""
    if bool(cron) == bool(every):
        fail("give exactly one of --cron and --every")
    body = operation_body(playbook, target, param, environment, dry_run, concurrency, attempts, max_failures)
    body.update(name=name, **({"cron": cron} if cron else {"every": every}))
    view = call(api_url, "POST", "/schedules", json=body)
    nxt = when(view["next_runs"][0]) if view["next_runs"] else "never"
    out.print(f"created schedule {view['name']}: {view['playbook']} {view['spec']}; next run {nxt}")


@schedule_app.command("list")
def list_schedules(api_url: ApiUrl = None) -> None:
    """The schedules that start operations."""
    views = call(api_url, "GET", "/schedules")
    if not views:
        out.print("no schedules")
        return
    table = Table("name", "when", "playbook", "sha256", "targets", "next run", "last run")
    for v in views:
        spec = v["spec"] + (" (paused)" if v["paused"] else "") + (" dry-run" if v["dry_run"] else "")
        table.add_row(
            v["name"],
            spec,
            v["playbook"],
            v["sha256"][:12],
            ", ".join(v["targets"]),
            when(v["next_runs"][0]) if v["next_runs"] else "",
            v["recent_runs"][-1] if v["recent_runs"] else "",
        )
    out.print(table)


@schedule_app.command("delete")
def delete(name: Annotated[str, typer.Argument(help="The schedule's name")], api_url: ApiUrl = None) -> None:
    """Delete a schedule; operations it already started keep running."""
    call(api_url, "DELETE", f"/schedules/{name}")
    out.print(f"deleted schedule {name}")


@schedule_app.command("trigger")
def trigger(name: Annotated[str, typer.Argument(help="The schedule's name")], api_url: ApiUrl = None) -> None:
    """Run a schedule's operation now."""
    call(api_url, "POST", f"/schedules/{name}/trigger")
    out.print(f"triggered schedule {name}; see `remediator history --kind operations`")


# --- history ----------------------------------------------------------------------------------


@app.command()
def history(
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    kind: Annotated[str | None, typer.Option(help="incidents or operations [default: both]")] = None,
    api_url: ApiUrl = None,
) -> None:
    """Past and running incidents and operations, newest first."""
    if kind not in (None, "incidents", "operations"):
        fail(f"--kind {kind!r}: choose incidents or operations")
    params: dict[str, Any] = {"limit": limit} | ({"kind": kind} if kind else {})
    rows = call(api_url, "GET", "/history", params=params)
    if not rows:
        out.print("no incidents or operations yet")
        return
    table = Table("kind", "id", "name", "phase", "status", "started", "closed")
    for row in rows:
        table.add_row(
            row["kind"].rstrip("s"),
            row["workflow_id"],
            row["name"],
            row["phase"],
            row["workflow_status"],
            when(row["started_at"]),
            when(row["closed_at"]),
        )
    out.print(table)
