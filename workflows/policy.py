"""Guardrails between every plan and every action (REMEDIATOR_POLICY_FILE, YAML).

`evaluate` is pure: the incident passes the action, the diagnosis confidence, the time and the
current blast-radius counts, and gets a `Verdict` whose reasons go into the timeline. Counting
actions durably is the caller's job (see `Usage`).

    dry_run: false
    default_environment: prod           # for alerts whose environment the policy does not know
    environments:
      dev:  {auto_approve: [read, change]}
      prod: {auto_approve: [{risks: [change], actions: ["restart-*"], min_confidence: 0.85}]}
    destructive_approvers: 2            # never fewer than two distinct people
    services: {allow: ["*"], deny: ["payments-*"]}
    maintenance_windows:
      - {name: weeknights, days: [mon, tue, wed, thu], start: "22:00", end: "04:00",
         environments: [prod], outside: wait}
    limits: {actions_per_service_per_hour: 3, concurrent_remediations: 5}
    groups: {sre: [alice, bob], leads: [carol]}
    approvers: {change: [sre, leads], destructive: [leads, sre]}
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from fnmatch import fnmatchcase
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from workflows.actions import Risk
from workflows.durations import Duration

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CONFIG = ConfigDict(extra="forbid")
HOUR = timedelta(hours=1)


def _globs(patterns: list[str], value: str) -> str | None:
    return next((p for p in patterns if fnmatchcase(value, p)), None)


class AutoApprove(BaseModel):
    """Risk classes (and optionally action names) that run without a human when confident enough."""

    model_config = _CONFIG
    risks: list[Risk] = Field(min_length=1)
    actions: list[str] = []  # globs over the action's name; empty: any action
    min_confidence: float = Field(default=0.0, ge=0.0, le=1.0)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"risks": [data]} if isinstance(data, str) else data

    @field_validator("risks")
    @classmethod
    def _never_destructive(cls, risks: list[Risk]) -> list[Risk]:
        if "destructive" in risks:
            raise ValueError(
                "destructive actions always need two distinct approvers; they cannot auto-approve"
            )
        return risks

    def applies(self, risk: Risk, action: str) -> bool:
        return risk in self.risks and (not self.actions or _globs(self.actions, action) is not None)


class EnvironmentPolicy(BaseModel):
    model_config = _CONFIG
    auto_approve: list[AutoApprove] = []
    approvers_required: int = Field(default=1, ge=1, le=10)
    dry_run: bool = False


class Window(BaseModel):
    """When actions may run, in UTC. `end` at or before `start` means the window crosses midnight."""

    model_config = _CONFIG
    name: str = Field(min_length=1)
    days: list[Weekday] = Field(default=list(WEEKDAYS), min_length=1)
    start: time
    end: time
    environments: list[str] = []  # empty: every environment
    services: list[str] = []  # globs; empty: every service
    risks: list[Risk] = ["change", "destructive"]
    outside: Literal["wait", "override"] = "wait"

    @model_validator(mode="after")
    def _not_empty(self) -> Window:
        if self.start == self.end:
            raise ValueError("start and end are equal; leave the window out to allow any time")
        return self

    def applies(self, environment: str, service: str, risk: Risk) -> bool:
        return (
            risk in self.risks
            and (not self.environments or environment in self.environments)
            and (not self.services or _globs(self.services, service) is not None)
        )

    def _opening(self, day: datetime) -> tuple[datetime, datetime]:
        opens = datetime.combine(day.date(), self.start, UTC)
        closes = datetime.combine(day.date(), self.end, UTC)
        return opens, closes if closes > opens else closes + timedelta(days=1)

    def is_open(self, now: datetime) -> bool:
        for back in (0, 1):
            day = now - timedelta(days=back)
            opens, closes = self._opening(day)
            if WEEKDAYS[day.weekday()] in self.days and opens <= now < closes:
                return True
        return False

    def next_opening(self, now: datetime) -> datetime:
        for ahead in range(8):
            day = now + timedelta(days=ahead)
            opens, _ = self._opening(day)
            if WEEKDAYS[day.weekday()] in self.days and opens > now:
                return opens
        raise ValueError(f"window {self.name} has no days")  # `days` is validated non-empty


class ServiceLists(BaseModel):
    model_config = _CONFIG
    allow: list[str] = ["*"]  # globs
    deny: list[str] = []  # globs; deny wins over allow


class Limits(BaseModel):
    """Blast radius. Counted durably by the caller and passed to `evaluate` as `Usage`."""

    model_config = _CONFIG
    actions_per_service_per_hour: int | None = Field(default=None, ge=1)
    concurrent_remediations: int | None = Field(default=None, ge=1)
    on_exceed: Literal["wait", "deny"] = "wait"
    recheck: Duration = timedelta(minutes=1)  # how soon a remediation waiting for a free slot asks again
    # A remediation holds its concurrency slot until it ends, or this long after its last action: a
    # terminated incident (which never says it ended) frees its slot by itself.
    lease_ttl: Duration = timedelta(hours=2)


def _default_environments() -> dict[str, EnvironmentPolicy]:
    return {
        "dev": EnvironmentPolicy(auto_approve=[AutoApprove(risks=["read", "change"])]),
        "prod": EnvironmentPolicy(auto_approve=[AutoApprove(risks=["read"])]),
    }


class Policy(BaseModel):
    model_config = _CONFIG
    dry_run: bool = False
    default_environment: str = "prod"
    environments: dict[str, EnvironmentPolicy] = Field(default_factory=_default_environments)
    destructive_approvers: int = Field(default=2, ge=2, le=10)
    services: ServiceLists = ServiceLists()
    maintenance_windows: list[Window] = []
    limits: Limits = Limits()
    groups: dict[str, list[str]] = {}
    approvers: dict[Risk, list[str]] = {}  # group or person names per risk class; missing: anyone
    max_wait: Duration = timedelta(hours=24)  # a wait longer than this escalates instead

    @model_validator(mode="after")
    def _default_known(self) -> Policy:
        if self.default_environment not in self.environments:
            known = ", ".join(self.environments) or "none"
            raise ValueError(
                f"default_environment {self.default_environment!r} is not in environments ({known})"
            )
        return self

    def environment(self, name: str) -> str:
        """The environment whose rules apply: `name` if the policy knows it, else the default."""
        return name if name in self.environments else self.default_environment

    def is_dry_run(self, environment: str) -> bool:
        return self.dry_run or self.environments[self.environment(environment)].dry_run

    def members(self, names: list[str]) -> list[str]:
        """People named directly or through a group, sorted; empty means anyone."""
        people: set[str] = set()
        for name in names:
            people.update(self.groups.get(name, [name]))
        return sorted(people)


class Usage(BaseModel):
    """Blast-radius counts at the moment of asking, from a durable counter (not process memory)."""

    service_actions_last_hour: int = Field(default=0, ge=0)
    oldest_service_action_at: datetime | None = None  # frees a slot an hour after it
    concurrent_remediations: int = Field(default=0, ge=0)  # other incidents executing right now


class ActionContext(BaseModel):
    action: str
    risk: Risk
    service: str
    environment: str
    confidence: float | None = None
    now: datetime
    usage: Usage = Usage()


class Verdict(BaseModel):
    allowed: bool
    needs_approval: bool = False
    approvers_required: int = 0
    eligible_approvers: list[str] = []  # empty: anyone
    wait_until: datetime | None = None
    dry_run: bool = False
    reasons: list[str] = []

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)

    def text(self) -> str:
        if not self.allowed:
            head = "denied"
        else:
            parts = [f"wait until {self.wait_until:%Y-%m-%d %H:%M}Z"] if self.wait_until else []
            if self.needs_approval:
                who = f" of {', '.join(self.eligible_approvers)}" if self.eligible_approvers else ""
                parts.append(f"needs {self.approvers_required} approver(s){who}")
            head = ", ".join(parts) or "allowed"
        return f"{'dry-run, ' if self.dry_run else ''}{head}: {self.reason}"


def blast_radius_wait(
    policy: Policy, ctx: ActionContext, reasons: list[str]
) -> datetime | Literal[False] | None:
    """When the blast radius allows the action again: None now, False never (deny), else a time."""
    limits, usage = policy.limits, ctx.usage
    waits: list[datetime] = []
    per_hour = limits.actions_per_service_per_hour
    if per_hour is not None and ctx.risk != "read" and usage.service_actions_last_hour >= per_hour:
        frees = (usage.oldest_service_action_at or ctx.now) + HOUR
        reasons.append(
            f"{usage.service_actions_last_hour} action(s) on {ctx.service!r} in the last hour reach the "
            f"limit of {per_hour}; a slot frees at {frees:%H:%M}Z"
        )
        waits.append(frees)
    cap = limits.concurrent_remediations
    if cap is not None and ctx.risk != "read" and usage.concurrent_remediations >= cap:
        reasons.append(f"{usage.concurrent_remediations} remediation(s) running reach the limit of {cap}")
        waits.append(ctx.now + limits.recheck)
    if not waits:
        return None
    return False if limits.on_exceed == "deny" else max(waits)


def _windows(
    policy: Policy, ctx: ActionContext, env: str, reasons: list[str]
) -> tuple[datetime | None, bool]:
    """(time to wait for, whether an approver may override instead)."""
    windows = [w for w in policy.maintenance_windows if w.applies(env, ctx.service, ctx.risk)]
    if not windows or any(w.is_open(ctx.now) for w in windows):
        return None, False
    opening = min(w.next_opening(ctx.now) for w in windows)
    names = ", ".join(w.name for w in windows)
    if any(w.outside == "override" for w in windows):
        reasons.append(
            f"outside maintenance window {names} (opens {opening:%a %H:%M}Z); an approver may override"
        )
        return None, True
    reasons.append(f"outside maintenance window {names}; it opens {opening:%a %Y-%m-%d %H:%M}Z")
    return opening, False


def _approvers(policy: Policy, ctx: ActionContext, env: str, reasons: list[str]) -> int:
    """How many distinct approvers the action needs (0: it may run on its own)."""
    settings = policy.environments[env]
    if ctx.risk == "destructive":
        reasons.append(f"destructive actions need {policy.destructive_approvers} distinct approvers")
        return max(policy.destructive_approvers, settings.approvers_required)
    confidence = ctx.confidence if ctx.confidence is not None else 0.0
    rules = [rule for rule in settings.auto_approve if rule.applies(ctx.risk, ctx.action)]
    if any(confidence >= rule.min_confidence for rule in rules):
        reasons.append(f"{env} auto-approves {ctx.risk} action {ctx.action!r}")
        return 0
    if rules:
        needed = min(rule.min_confidence for rule in rules)
        reasons.append(
            f"diagnosis confidence {confidence:.2f} is below the {needed:.2f} that {env} needs to "
            f"auto-approve {ctx.action!r}; a human must approve"
        )
    else:
        reasons.append(f"{env} needs approval for {ctx.risk} actions")
    return settings.approvers_required


def evaluate(policy: Policy, ctx: ActionContext) -> Verdict:
    """The verdict on one action. Pure and deterministic: safe to call from workflow code."""
    reasons: list[str] = []
    env = policy.environment(ctx.environment)
    if env != ctx.environment:
        reasons.append(f"environment {ctx.environment or '(none)'!r} is not in the policy; {env} rules apply")
    if denied := _globs(policy.services.deny, ctx.service):
        return Verdict(allowed=False, reasons=[*reasons, f"service {ctx.service!r} is denied ({denied})"])
    if _globs(policy.services.allow, ctx.service) is None:
        return Verdict(allowed=False, reasons=[*reasons, f"service {ctx.service!r} is not in the allow list"])
    dry_run = policy.is_dry_run(env)
    limit_wait = blast_radius_wait(policy, ctx, reasons)
    if limit_wait is False:
        return Verdict(allowed=False, reasons=reasons)
    window_wait, override = _windows(policy, ctx, env, reasons)
    required = _approvers(policy, ctx, env, reasons)
    if override:
        required = max(required, 1)
    waits = [w for w in (limit_wait, window_wait) if w is not None]
    if dry_run:
        reasons.append("dry-run: plan, preview and record only; nothing is executed")
    return Verdict(
        allowed=True,
        needs_approval=required > 0,
        approvers_required=required,
        eligible_approvers=policy.members(policy.approvers.get(ctx.risk, [])) if required else [],
        wait_until=max(waits) if waits else None,
        dry_run=dry_run,
        reasons=reasons,
    )
