"""The playbook format: YAML runbooks as pydantic models (see playbooks/*.yaml).

    name: ServiceDown
    match: {matchers: ['alertname=~"ServiceDown|InstanceDown"'], priority: 10}
    params: {service: {default: "", label: service, pattern: "[A-Za-z0-9_.@-]+"}}
    steps:
      - {id: probe, kind: check, check: {type: probe, url: "${alert.annotations.probe_url}"}}
      - id: down
        kind: decide
        when: {equals: ["${steps.probe.ok}", false]}
        then: [...]
        else: [{id: healed, kind: stop, outcome: resolved, reason: "healthy again"}]

`check`, `action` and `rollback` hold their spec as written (templates included): the static rules
in workflows/validation.py check it against `CheckSpec` / `ActionSpec` with templated values masked,
and the interpreter validates it again once the templates are rendered.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError
from temporalio.common import RetryPolicy

from workflows import regex
from workflows.conditions import Condition
from workflows.durations import Duration
from workflows.error_types import ErrorType
from workflows.matching import Match
from workflows.templating import Loc

Scalar = bool | int | float | str
_STEP_ID = r"^[a-z][a-z0-9_]{0,62}$"
_CONFIG = ConfigDict(extra="forbid", validate_by_name=True, validate_by_alias=True, serialize_by_alias=True)


def _known_error_type(value: Any) -> Any:
    """A name Temporal would compare with error types: a typo would silently never match."""
    names = [t.value for t in ErrorType]
    if isinstance(value, str) and value in names:
        return value
    close = difflib.get_close_matches(value, names, n=1) if isinstance(value, str) else []
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise PydanticCustomError(
        "error_type",
        "unknown error type {value}{hint}; playbooks/README.md lists the error types",
        {"value": repr(value), "hint": hint},
    )


class RetrySpec(BaseModel):
    """Temporal's RetryPolicy, in YAML. `maximum_attempts: 0` means no limit, as in Temporal."""

    model_config = _CONFIG
    maximum_attempts: int = Field(default=3, ge=0)
    initial_interval: Duration = timedelta(seconds=1)
    backoff_coefficient: float = Field(default=2.0, ge=1.0)
    maximum_interval: Duration | None = None
    non_retryable_error_types: list[Annotated[ErrorType, BeforeValidator(_known_error_type)]] = []

    def policy(self) -> RetryPolicy:
        return RetryPolicy(
            initial_interval=self.initial_interval,
            backoff_coefficient=self.backoff_coefficient,
            maximum_interval=self.maximum_interval,
            maximum_attempts=self.maximum_attempts,
            non_retryable_error_types=[t.value for t in self.non_retryable_error_types] or None,
        )


class ParamSpec(BaseModel):
    """A parameter: a default, overridable by the alert label of the same name (or `label`), or
    else by the annotation named by `annotation`.

    `pattern` (a full match) guards values that reach executors from alert text.
    """

    model_config = _CONFIG
    default: Scalar | None = None
    label: str = ""
    annotation: str = ""
    override: bool = True
    pattern: str = ""
    description: str = ""

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return data if isinstance(data, Mapping) else {"default": data}

    @model_validator(mode="after")
    def _pattern_fits_default(self) -> ParamSpec:
        if self.pattern:
            regex.compile_pattern(self.pattern)
            if self.default is not None and not regex.fullmatch(self.pattern, str(self.default)):
                raise ValueError(f"default {self.default!r} does not match pattern {self.pattern!r}")
        return self


class StepBase(BaseModel):
    model_config = _CONFIG
    id: str = Field(pattern=_STEP_ID)
    description: str = ""
    timeout: Duration | None = None
    retry: RetrySpec | None = None


class CheckStep(StepBase):
    """A read; its output is kept under the step id (`${steps.<id>.<field>}`)."""

    kind: Literal["check"]
    check: dict[str, Any]


class DecideStep(StepBase):
    """Runs `then` when the condition holds, `else` otherwise; then carries on after itself."""

    kind: Literal["decide"]
    when: Condition
    then: list[Step] = []
    else_: list[Step] = Field(default=[], alias="else")

    @model_validator(mode="after")
    def _has_a_branch(self) -> DecideStep:
        if not self.then and not self.else_:
            raise ValueError("a decide step needs `then` or `else` steps")
        return self


class ActionStep(StepBase):
    """An executor action. Policy is evaluated first; its previous state is compensated on failure."""

    kind: Literal["action"]
    action: dict[str, Any]


class ApprovalStep(StepBase):
    """An explicit approval; `groups` name policy groups (empty: anyone the policy lets approve)."""

    kind: Literal["approval"]
    approvers: int = Field(default=1, ge=1, le=10)
    groups: list[str] = []
    message: str = ""


class VerifyStep(StepBase):
    """Polls a check every `interval` until `until` holds; gives up at `timeout` (default 5m)."""

    kind: Literal["verify"]
    check: dict[str, Any]
    until: Condition
    interval: Duration = timedelta(seconds=15)

    @property
    def deadline(self) -> timedelta:
        return self.timeout or timedelta(minutes=5)


class NotifyStep(StepBase):
    kind: Literal["notify"]
    message: str = Field(min_length=1)
    level: int = Field(default=0, ge=0, le=2)


class RollbackStep(StepBase):
    """The compensation of an earlier action, run (newest first) if a later step fails.

    Without one, an action is compensated by its executor's own rollback operation.
    """

    kind: Literal["rollback"]
    undo: str = Field(pattern=_STEP_ID)
    action: dict[str, Any]


class StopStep(StepBase):
    """Ends the playbook early: healed already, or a human must take over."""

    kind: Literal["stop"]
    outcome: Literal["resolved", "escalated"]
    reason: str = Field(min_length=1)


Step = Annotated[
    CheckStep | DecideStep | ActionStep | ApprovalStep | VerifyStep | NotifyStep | RollbackStep | StopStep,
    Field(discriminator="kind"),
]
DecideStep.model_rebuild()


class Playbook(BaseModel):
    model_config = _CONFIG
    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,99}$")
    description: str = ""
    match: Match
    params: dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")], ParamSpec] = {}
    steps: list[Step] = Field(min_length=1)

    def walk(self) -> Iterator[tuple[Loc, Step]]:
        """Every step, depth first in document order, with its location."""
        yield from walk_steps(self.steps, ("steps",))


def walk_steps(steps: list[Step], loc: Loc) -> Iterator[tuple[Loc, Step]]:
    for index, step in enumerate(steps):
        here = (*loc, index)
        yield here, step
        if isinstance(step, DecideStep):
            yield from walk_steps(step.then, (*here, "then"))
            yield from walk_steps(step.else_, (*here, "else"))


class PinnedPlaybook(BaseModel):
    """What an incident runs: the playbook as it was when the incident started, and its file's hash."""

    name: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    source: str = ""  # where it was loaded from, for people reading the timeline
    playbook: Playbook


# --- parameters -------------------------------------------------------------------------------


class ParamError(ValueError):
    pass


_TRUE, _FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}


def _coerce(name: str, text: str, like: Scalar | None) -> Scalar:
    """Give a label's text the type of the parameter's default."""
    try:
        if isinstance(like, bool):
            if text.lower() not in _TRUE | _FALSE:
                raise ValueError(text)
            return text.lower() in _TRUE
        if isinstance(like, int):
            return int(text)
        if isinstance(like, float):
            return float(text)
    except ValueError:
        raise ParamError(f"param {name}: label value {text!r} is not a {type(like).__name__}") from None
    return text


def resolve_params(
    playbook: Playbook, labels: Mapping[str, str], annotations: Mapping[str, str]
) -> dict[str, Scalar]:
    """Defaults, overridden by alert labels (or annotations) where allowed, checked against patterns."""
    values: dict[str, Scalar] = {}
    for name, spec in playbook.params.items():
        label = spec.label or name
        given = labels.get(label, "") or (annotations.get(spec.annotation, "") if spec.annotation else "")
        if spec.override and given:
            value = _coerce(name, given, spec.default)
        elif spec.default is not None:
            value = spec.default
        else:
            source = f"{label!r} label" + (f" or {spec.annotation!r} annotation" if spec.annotation else "")
            raise ParamError(f"param {name}: no default and the alert has no {source}")
        if spec.pattern and not regex.fullmatch(spec.pattern, str(value)):
            raise ParamError(f"param {name}: {value!r} does not match {spec.pattern!r}")
        values[name] = value
    return values
