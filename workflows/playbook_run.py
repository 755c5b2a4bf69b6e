"""A pinned playbook run on an `IncidentRuntime`, and the phase it ends in.

The one place that joins the two sides: the interpreter (workflows/interpreter.py) sees the runtime
only as a `PlaybookHost`, and the runtime (workflows/runtime.py) never starts an interpreter.
"""

from __future__ import annotations

from workflows.diagnosis import Diagnosis
from workflows.incident_models import PlaybookRef
from workflows.interpreter import PlaybookInterpreter
from workflows.phases import Phase
from workflows.plans import Plan
from workflows.playbook import PinnedPlaybook, RollbackStep
from workflows.playbook_host import Outcome, PlaybookResult
from workflows.policy import Policy
from workflows.runtime import IncidentRuntime

PHASES: dict[Outcome, Phase] = {
    "resolved": Phase.RESOLVED,
    "escalated": Phase.ESCALATED,
    "rejected": Phase.REJECTED,
    "rolled_back": Phase.ROLLED_BACK,
    "failed": Phase.FAILED,
    "cancelled": Phase.CANCELLED,
}
DRY_RUN_ENDING = "dry-run: nothing was executed"


async def run_playbook(
    runtime: IncidentRuntime,
    pinned: PinnedPlaybook,
    diagnosis: Diagnosis | None = None,
    requires_human: str = "",
) -> PlaybookResult:
    """Interpret `pinned` on `runtime`. `requires_human` (a reason) switches auto-approval off."""
    state = runtime.state
    state.playbook = PlaybookRef(name=pinned.name, sha256=pinned.sha256, source=pinned.source)
    description = pinned.playbook.description
    state.plan = Plan(summary=f"playbook {pinned.name}" + (f": {description}" if description else ""))
    runtime.compensations = {s.id for _, s in pinned.playbook.walk() if isinstance(s, RollbackStep)}
    policy = runtime.policy
    if requires_human:
        runtime.record("auto-approval withheld", requires_human)
        policy = without_auto_approval(policy)
    result = await _interpreter(runtime, pinned, policy, diagnosis).run()
    path = (r.step if r.status == "ok" else f"{r.step} ({r.status})" for r in result.path)
    runtime.record("playbook path", " -> ".join(path))
    return result


async def run_catalogue_plan(
    runtime: IncidentRuntime, pinned: PinnedPlaybook, diagnosis: Diagnosis | None, human: str
) -> PlaybookResult:
    """Interpret a catalogue plan's generated playbook (workflows/catalogue_playbook.py) on `runtime`.

    Unlike `run_playbook` the state keeps the catalogue's plan and names no playbook; `human` says why
    a person approves even where the policy would not ask one, and a policy wait hands the plan to a
    person instead of holding it: without a playbook nothing is held.
    """
    return await _interpreter(runtime, pinned, runtime.policy, diagnosis, human=human, may_wait=False).run()


def _interpreter(
    runtime: IncidentRuntime,
    pinned: PinnedPlaybook,
    policy: Policy,
    diagnosis: Diagnosis | None,
    human: str = "",
    may_wait: bool = True,
) -> PlaybookInterpreter:
    """An interpreter of `pinned` on `runtime`, for its alert, environment and trusted services."""
    return PlaybookInterpreter(
        runtime,
        pinned,
        policy,
        runtime.state.alert,
        diagnosis,
        runtime.environment,
        runtime.trust.services,
        human=human,
        may_wait=may_wait,
    )


def final_phase(result: PlaybookResult) -> tuple[Phase, str, str]:
    """The phase a playbook run ends in, with the timeline's event and detail.

    A dry (shadow) run whose playbook would have acted ends `Escalated`, not `Resolved`: nothing was
    executed, so the alert is still a human's to handle, and `IncidentPhase="Resolved"` keeps counting
    only real fixes. A dry run that found nothing to do (a `stop` with outcome resolved) is resolved.
    """
    would_act = any(r.kind == "action" and r.status == "dry-run" for r in result.path)
    if result.dry_run and result.outcome == "resolved" and would_act:
        return Phase.ESCALATED, DRY_RUN_ENDING, f"{result.reason}; a human must act"
    return PHASES[result.outcome], f"playbook {result.outcome.replace('_', ' ')}", result.reason


def without_auto_approval(policy: Policy) -> Policy:
    """The same policy with no auto-approval anywhere: a human decides every action."""
    environments = {
        name: env.model_copy(update={"auto_approve": []}) for name, env in policy.environments.items()
    }
    return policy.model_copy(update={"environments": environments})
