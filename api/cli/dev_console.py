"""What `remediator dev` prints while it runs: one line per incident phase change, and log records
as one line each (their tracebacks only with `--verbose`).

An activity that fails as expected (a probe of a service that is down, an unreachable host) is
retried by Temporal and recorded in the incident's timeline; a 25-line traceback per attempt on the
console would bury the phase lines that say what is happening.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer
from temporalio.client import Client, RPCTimeoutOrCancelledError, WorkflowQueryFailedError
from temporalio.service import RPCError

from api.ingest import WORKFLOW_TYPE
from workflows import search_attributes as sa
from workflows.incident_models import IncidentState, TimelineEntry

FOLLOW_EVERY = 1.0  # seconds between looks at Temporal's visibility store
LOOK_TIMEOUT = timedelta(seconds=5)  # a query the busy worker cannot answer yet waits for the next look
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def remediator_command() -> str:
    """How to type `remediator` in the shell that started us: the bare name when PATH finds this very
    script, else its path (`.venv/bin/remediator` from the checkout, which `make run` never puts on
    PATH), so every command the console prints works when pasted."""
    ours = Path(sys.executable).parent / "remediator"
    found = shutil.which("remediator")
    if found and Path(found).resolve() == ours.resolve():
        return "remediator"
    try:
        return str(ours.relative_to(Path.cwd()))
    except ValueError:
        return str(ours)


class OneLine(logging.Formatter):
    """A record on one line: an exception becomes `: Type: message` instead of its traceback."""

    def format(self, record: logging.LogRecord) -> str:
        error = record.exc_info[1] if record.exc_info else None
        plain = logging.makeLogRecord(
            {**record.__dict__, "exc_info": None, "exc_text": None, "stack_info": None}
        )
        line = super().format(plain)
        if error is not None:
            line += f": {type(error).__name__}: {error}"
        return " ".join(line.split("\n"))


def configure_logging(verbose: bool) -> None:
    """WARNING and above by default, one line each; INFO and full tracebacks with --verbose."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT) if verbose else OneLine(LOG_FORMAT))
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler], force=True)


def phase_line(state: IncidentState, entry: TimelineEntry) -> str:
    when = entry.at.astimezone().strftime("%H:%M:%S")
    detail = f": {entry.detail}" if entry.detail else ""
    alert = state.alert
    return (
        f"{when} {state.incident_id} ({alert.name}, {alert.service}) is {entry.phase}: {entry.event}{detail}"
    )


def phase_changes(timeline: list[TimelineEntry], after: int) -> list[TimelineEntry]:
    """The entries from index `after` on that start a new phase (the first entry always does)."""
    previous = timeline[after - 1].phase if after else None
    changes = []
    for entry in timeline[after:]:
        if entry.phase != previous:
            changes.append(entry)
            previous = entry.phase
    return changes


def current_phase_start(timeline: list[TimelineEntry]) -> int:
    """The index of the entry that started the phase the incident is in now."""
    start = max(len(timeline) - 1, 0)
    while start > 0 and timeline[start - 1].phase == timeline[start].phase:
        start -= 1
    return start


async def follow_phases(client: Client) -> None:
    """Print each phase change of every incident running now or closed since, until cancelled.

    Visibility says which incidents moved (their IncidentPhase changed); their `state` says through
    which phases, so a phase passed in under a second still gets its line. An incident already open
    when the console starts prints only the phase it is in.
    """
    since = datetime.now(UTC)
    query = (
        f"WorkflowType='{WORKFLOW_TYPE}' AND "
        f"(ExecutionStatus='Running' OR CloseTime > '{since.isoformat().replace('+00:00', 'Z')}')"
    )
    seen: dict[str, tuple[str, int]] = {}  # run id -> (IncidentPhase last seen, timeline entries shown)
    while True:
        try:
            async for execution in client.list_workflows(query, rpc_timeout=LOOK_TIMEOUT):
                phase = execution.typed_search_attributes.get(sa.INCIDENT_PHASE) or ""
                last, shown = seen.get(execution.run_id, ("", -1))
                if phase == last:
                    continue
                handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
                state = await handle.query("state", result_type=IncidentState, rpc_timeout=LOOK_TIMEOUT)
                if shown < 0 and execution.start_time and execution.start_time < since:
                    shown = current_phase_start(state.timeline)  # open before we started: where it is
                for entry in phase_changes(state.timeline, max(shown, 0)):
                    typer.echo(phase_line(state, entry))
                seen[execution.run_id] = (phase, len(state.timeline))
        except (RPCError, RPCTimeoutOrCancelledError, WorkflowQueryFailedError) as err:
            # A worker busy starting or a query timing out: look again next time. The console only
            # reads; it must never be the reason the stack stops.
            logging.getLogger(__name__).info("phase follower: %s", err)
        await asyncio.sleep(FOLLOW_EVERY)
