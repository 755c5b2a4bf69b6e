"""Static rules over a parsed playbook, run when playbooks load and again before a run starts.

Pydantic checks each field's shape; these rules check what needs the whole playbook: duplicate and
unreachable steps, actions and checks that do not exist or have bad arguments, and templates that
refer to nothing (an unknown param, a step that has not run yet on every path to this one, a field
the step's output does not have).

Each `Issue` carries the location as YAML spells it, so the loader can turn it into file:line.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, TypeAdapter

from workflows.actions import ActionSpec
from workflows.alerts import Alert
from workflows.checks import CHECK_OUTPUTS, CheckSpec
from workflows.conditions import Condition, operands
from workflows.diagnosis import Diagnosis
from workflows.plans import ActionOutcome
from workflows.playbook import (
    ActionStep,
    ApprovalStep,
    CheckStep,
    DecideStep,
    NotifyStep,
    Playbook,
    RollbackStep,
    Step,
    StopStep,
    VerifyStep,
)
from workflows.spec_errors import Issue, spec_issues
from workflows.templating import (
    ANY,
    SCALAR,
    Loc,
    Shape,
    TemplateError,
    check_reference,
    references,
    walk_strings,
)

ACTIONS: TypeAdapter[Any] = TypeAdapter(ActionSpec)
CHECKS: TypeAdapter[Any] = TypeAdapter(CheckSpec)

_ALERT_FIELDS = ("name", "fingerprint", "status", "service", "severity", "environment")
ALERT_SHAPE: dict[str, Shape] = {**dict.fromkeys(_ALERT_FIELDS, SCALAR), "labels": ANY, "annotations": ANY}


def alert_context(alert: Alert) -> dict[str, Any]:
    """What `${alert...}` sees at run time; ALERT_SHAPE is what validation knows of it."""
    return {
        **{name: getattr(alert, name) for name in _ALERT_FIELDS},
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
    }


class DecideOutput(BaseModel):
    result: bool


class ApprovalOutput(BaseModel):
    approvers: list[str]


class _Rules:
    def __init__(self, playbook: Playbook) -> None:
        self.playbook = playbook
        self.issues: list[Issue] = []
        self.kinds: dict[str, Step] = {}
        self.compensated: set[str] = set()
        self.base: dict[str, Shape] = {
            "alert": ALERT_SHAPE,
            "params": dict.fromkeys(playbook.params, SCALAR),
            "diagnosis": Diagnosis,
            "incident": {"id": SCALAR},
        }

    def add(self, loc: Loc, message: str) -> None:
        self.issues.append(Issue(loc, message))

    # --- templates ----------------------------------------------------------------------------

    def templates(self, value: Any, loc: Loc, steps: Mapping[str, Shape]) -> None:
        scope = {**self.base, "steps": steps}
        for where, text in walk_strings(value, loc):
            try:
                for ref in references(text):
                    self._reference(ref.path, scope, steps)
                    check_reference(ref, scope)
            except TemplateError as err:
                self.add(where, str(err))

    def _reference(
        self, path: tuple[str, ...], scope: Mapping[str, Shape], steps: Mapping[str, Shape]
    ) -> None:
        if path[0] not in scope:
            raise TemplateError(
                f"${{{'.'.join(path)}}}: unknown root {path[0]!r} (use {', '.join(sorted(scope))})"
            )
        if path[0] == "steps" and len(path) > 1 and path[1] not in steps and path[1] in self.kinds:
            step = self.kinds[path[1]]
            if isinstance(step, NotifyStep | RollbackStep | StopStep):
                raise TemplateError(f"${{{'.'.join(path)}}}: {step.kind} steps have no output")
            raise TemplateError(
                f"${{{'.'.join(path)}}}: step {path[1]!r} has not run on every path to this point "
                "(it comes later, or only on another branch)"
            )

    def condition(self, cond: Condition, loc: Loc, steps: Mapping[str, Shape]) -> None:
        for where, value in operands(cond, loc):
            self.templates(value, where, steps)

    # --- steps --------------------------------------------------------------------------------

    def check_spec(self, raw: dict[str, Any], loc: Loc, steps: Mapping[str, Shape]) -> Shape:
        self.issues.extend(spec_issues(CheckSpec, CHECKS, raw, "type", loc))
        self.templates(raw, loc, steps)
        return CHECK_OUTPUTS.get(str(raw.get("type")), ANY)

    def action_spec(self, raw: dict[str, Any], loc: Loc, steps: Mapping[str, Shape]) -> None:
        self.issues.extend(spec_issues(ActionSpec, ACTIONS, raw, "executor", loc))
        self.templates(raw, loc, steps)

    def step(self, step: Step, loc: Loc, steps: dict[str, Shape]) -> Shape | None:
        """Check one step given the outputs available before it; return its own output's shape."""
        if isinstance(step, CheckStep):
            return self.check_spec(step.check, (*loc, "check"), steps)
        if isinstance(step, ActionStep):
            self.action_spec(step.action, (*loc, "action"), steps)
            return ActionOutcome
        if isinstance(step, VerifyStep):
            shape = self.check_spec(step.check, (*loc, "check"), steps)
            self.condition(step.until, (*loc, "until"), {**steps, step.id: shape})
            return shape
        if isinstance(step, ApprovalStep):
            self.templates(step.message, (*loc, "message"), steps)
            return ApprovalOutput
        if isinstance(step, NotifyStep):
            self.templates(step.message, (*loc, "message"), steps)
        elif isinstance(step, StopStep):
            self.templates(step.reason, (*loc, "reason"), steps)
        elif isinstance(step, RollbackStep):
            self.rollback(step, loc, steps)
        return None

    def rollback(self, step: RollbackStep, loc: Loc, steps: Mapping[str, Shape]) -> None:
        target = self.kinds.get(step.undo)
        if not isinstance(target, ActionStep):
            what = f"is a {target.kind} step" if target else "is not a step"
            self.add((*loc, "undo"), f"{step.undo!r} {what}; undo names an earlier action step")
        elif step.undo not in steps:
            self.add((*loc, "undo"), f"action {step.undo!r} has not run on every path to this rollback")
        elif step.undo in self.compensated:
            self.add((*loc, "undo"), f"action {step.undo!r} already has a rollback step")
        self.compensated.add(step.undo)
        self.action_spec(step.action, (*loc, "action"), steps)

    def sequence(
        self, steps: list[Step], loc: Loc, available: dict[str, Shape]
    ) -> tuple[dict[str, Shape], bool]:
        """Walk a step list; return the outputs certain to exist after it and whether it always ends."""
        available = dict(available)
        for index, step in enumerate(steps):
            here = (*loc, index)
            if isinstance(step, DecideStep):
                self.condition(step.when, (*here, "when"), available)
                inner = {**available, step.id: DecideOutput}
                after_then, ends_then = self.sequence(step.then, (*here, "then"), inner)
                after_else, ends_else = self.sequence(step.else_, (*here, "else"), inner)
                if ends_then and ends_else:
                    self._unreachable(steps, index, loc, f"both branches of {step.id!r} end the playbook")
                    return available, True
                branches = [a for a, ends in ((after_then, ends_then), (after_else, ends_else)) if not ends]
                common = set(branches[0]).intersection(*branches[1:])
                available = {k: v for k, v in branches[0].items() if k in common}
                continue
            shape = self.step(step, here, available)
            if shape is not None:
                available[step.id] = shape
            if isinstance(step, StopStep):
                self._unreachable(steps, index, loc, f"{step.id!r} always ends the playbook")
                return available, True
        return available, False

    def _unreachable(self, steps: list[Step], index: int, loc: Loc, why: str) -> None:
        for later in range(index + 1, len(steps)):
            self.add((*loc, later), f"step {steps[later].id!r} is unreachable: {why}")

    def run(self) -> list[Issue]:
        for loc, step in self.playbook.walk():
            if step.id in self.kinds:
                self.add((*loc, "id"), f"duplicate step id {step.id!r}")
            else:
                self.kinds[step.id] = step
        self.sequence(self.playbook.steps, ("steps",), {})
        return self.issues


def problems(playbook: Playbook) -> list[Issue]:
    """Everything wrong with a playbook that can be known before it runs; empty when it is sound."""
    return _Rules(playbook).run()
