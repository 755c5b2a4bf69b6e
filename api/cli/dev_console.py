"""What `remediator dev` prints while it runs: one line per incident phase change (one line for a
storm's many), and log records as one line each (their tracebacks only with `--verbose`).

An activity that fails as expected (a probe of a service that is down, an unreachable host) is
retried by Temporal and recorded in the incident's timeline; a 25-line traceback per attempt on the
console would bury the phase lines that say what is happening.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer
from temporalio.client import Client, RPCTimeoutOrCancelledError, WorkflowExecution, WorkflowQueryFailedError
from temporalio.service import RPCError

from api.ingest import WORKFLOW_TYPE
from workflows import search_attributes as sa
from workflows.incident_models import IncidentState, TimelineEntry

FOLLOW_EVERY = 1.0  # seconds between looks at Temporal's visibility store
# Incidents followed one by one in a look (a `state` query each). Past it, as in an alert storm or at
# the start beside many open incidents, one line tallies them: a hundred queries at once cost the
# worker and the server more than the storm's own incidents did (issue 12).
FOLLOW_QUERIES = 10
# Listing costs the stack's process too: with 1,000 incidents open, look every 10 s, not every second.
LOOK_SECONDS_PER_INCIDENT = 0.01
CLOSED_MARGIN = timedelta(seconds=30)  # how late visibility may still list an incident as running
LOOK_ERRORS = (RPCError, RPCTimeoutOrCancelledError, WorkflowQueryFailedError)
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


def tally_line(phases: list[str]) -> str:
    """One line for many incidents that moved in one look: how many are in each phase now."""
    counts = ", ".join(f"{n} {phase}" for phase, n in Counter(phases).most_common())
    when = datetime.now().astimezone().strftime("%H:%M:%S")
    return (
        f"{when} {len(phases)} incidents moved at once, too many to follow one by one "
        f"(`{remediator_command()} incidents` lists them); now {counts}"
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
    when the console starts prints only the phase it is in. More than FOLLOW_QUERIES moving in one
    look get one tally line instead, and each is followed again from the next phase it enters.
    """
    follower = PhaseFollower(client, datetime.now(UTC))
    while True:
        pause = FOLLOW_EVERY
        try:
            pause = max(pause, await follower.look() * LOOK_SECONDS_PER_INCIDENT)
        except LOOK_ERRORS as err:
            # Temporal busy or restarting: look again next time. The console only reads; it must
            # never be the reason the stack stops.
            logging.getLogger(__name__).info("phase follower: %s", err)
        await asyncio.sleep(pause)


class PhaseFollower:
    """The console's view of the incidents: what each showed last, and what moved since (follow_phases)."""

    def __init__(self, client: Client, since: datetime, closed_margin: timedelta = CLOSED_MARGIN) -> None:
        self.client, self.since, self.closed_after, self.closed_margin = client, since, since, closed_margin
        # run id -> (IncidentPhase last seen, timeline entries shown; -1: none, or only in a tally)
        self.seen: dict[str, tuple[str, int]] = {}

    async def look(self) -> int:
        """Print what moved since the last look; returns how many incidents visibility listed."""
        began = datetime.now(UTC)
        closed_after = self.closed_after.isoformat().replace("+00:00", "Z")
        query = (
            f"WorkflowType='{WORKFLOW_TYPE}' AND (ExecutionStatus='Running' OR CloseTime > '{closed_after}')"
        )
        listed = [
            (execution, execution.typed_search_attributes.get(sa.INCIDENT_PHASE) or "")
            async for execution in self.client.list_workflows(query, rpc_timeout=LOOK_TIMEOUT)
        ]
        moved = [(e, phase) for e, phase in listed if phase != self.seen.get(e.run_id, ("", -1))[0]]
        if len(moved) > FOLLOW_QUERIES:
            typer.echo(tally_line([phase for _, phase in moved]))
            self.seen.update({execution.run_id: (phase, -1) for execution, phase in moved})
            moved = []
        for execution, phase in moved:
            try:
                await self._follow(execution, phase)
            except LOOK_ERRORS as err:
                # No worker answers for it (yet): the others still get their lines, and it is
                # followed again from the next phase it enters, not asked again at every look.
                logging.getLogger(__name__).info("phase follower: %s: %s", execution.id, err)
                self.seen[execution.run_id] = (phase, -1)
        # Closed incidents are listed a while after they close, then forgotten: a console left running
        # for days looks at what is open, not at every incident it ever printed.
        self.closed_after = max(self.since, began - self.closed_margin)
        self.seen = {e.run_id: self.seen[e.run_id] for e, _ in listed if e.run_id in self.seen}
        return len(listed)

    async def _follow(self, execution: WorkflowExecution, phase: str) -> None:
        known, shown = execution.run_id in self.seen, self.seen.get(execution.run_id, ("", -1))[1]
        handle = self.client.get_workflow_handle(execution.id, run_id=execution.run_id)
        state = await handle.query("state", result_type=IncidentState, rpc_timeout=LOOK_TIMEOUT)
        started_before = execution.start_time is not None and execution.start_time < self.since
        if shown < 0 and (known or started_before):
            shown = current_phase_start(state.timeline)  # only counted so far: where it is now
        for entry in phase_changes(state.timeline, max(shown, 0)):
            typer.echo(phase_line(state, entry))
        self.seen[execution.run_id] = (phase, len(state.timeline))
