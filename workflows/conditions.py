"""Conditions for `decide` and `verify` steps, evaluated deterministically in workflow code.

YAML shape: one operator key per condition.

    equals: ["${steps.probe.ok}", false]        in: ["${alert.labels.severity}", [critical, page]]
    gt: ["${steps.cpu.value}", 0.9]             lt / ge / le likewise
    within: ["${steps.ev.deployments.0.changed_at}", 30m]   (a timestamp at most that long ago)
    exists: "${steps.ev.deployments.0}"         (the reference names something; no error if not)
    matches: ["${steps.logs.summary}", "OOM"]   (an RE2 search; the pattern is a literal)
    and: [cond, ...]   or: [cond, ...]   not: cond

Operands are literals or templates. Numbers compare with numeric strings (alert labels are strings),
and every comparison made is returned so the timeline shows the values that decided.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator

from workflows import regex
from workflows.durations import Duration
from workflows.templating import Loc, TemplateError, has_template, references, render

_STRICT = ConfigDict(extra="forbid", validate_by_name=True, validate_by_alias=True, serialize_by_alias=True)


class ConditionError(ValueError):
    """Values that cannot be compared the way the condition asks."""


class Equals(BaseModel):
    model_config = _STRICT
    equals: tuple[Any, Any]


class In(BaseModel):
    model_config = _STRICT
    in_: tuple[Any, Any] = Field(alias="in")

    @field_validator("in_")
    @classmethod
    def _list_or_template(cls, value: tuple[Any, Any]) -> tuple[Any, Any]:
        if not isinstance(value[1], list) and not has_template(value[1]):
            raise ValueError("the second operand of `in` must be a list (or a template naming one)")
        return value


class Compare(BaseModel):
    """gt/lt/ge/le: exactly one of them is set."""

    model_config = _STRICT
    gt: tuple[Any, Any] | None = None
    lt: tuple[Any, Any] | None = None
    ge: tuple[Any, Any] | None = None
    le: tuple[Any, Any] | None = None

    def operator(self) -> tuple[str, tuple[Any, Any]]:
        for name in ("gt", "lt", "ge", "le"):
            if (operands := getattr(self, name)) is not None:
                return name, operands
        raise ConditionError("no comparison operator set")


class Matches(BaseModel):
    model_config = _STRICT
    matches: tuple[Any, str]

    @field_validator("matches")
    @classmethod
    def _pattern_compiles(cls, value: tuple[Any, str]) -> tuple[Any, str]:
        if has_template(value[1]):
            raise ValueError("the pattern of `matches` must be literal, not a template")
        regex.compile_pattern(value[1])
        return value


class Within(BaseModel):
    """The timestamp is at most this long ago, e.g. `within: ["${steps.ev.deployments.0.changed_at}", 30m]`."""

    model_config = _STRICT
    within: tuple[Any, Duration]


class Exists(BaseModel):
    """The reference names something (not null): guards a later `within` or `equals` in an `and`."""

    model_config = _STRICT
    exists: str

    @field_validator("exists")
    @classmethod
    def _one_reference(cls, value: str) -> str:
        parts = references(value)
        if len(parts) != 1 or value.strip() != f"${{{parts[0].text}}}":
            raise ValueError('exists takes exactly one reference, e.g. "${steps.ev.deployments.0}"')
        return value


class AllOf(BaseModel):
    model_config = _STRICT
    and_: list[Condition] = Field(alias="and", min_length=1)


class AnyOf(BaseModel):
    model_config = _STRICT
    or_: list[Condition] = Field(alias="or", min_length=1)


class Not(BaseModel):
    model_config = _STRICT
    not_: Condition = Field(alias="not")


_KEYS = {
    "equals": "equals",
    "in": "in",
    "in_": "in",
    "gt": "compare",
    "lt": "compare",
    "ge": "compare",
    "le": "compare",
    "matches": "matches",
    "within": "within",
    "exists": "exists",
    "and": "and",
    "and_": "and",
    "or": "or",
    "or_": "or",
    "not": "not",
    "not_": "not",
}


def _tag(value: Any) -> str | None:
    if isinstance(value, BaseModel):
        return _TAGS.get(type(value))
    if isinstance(value, Mapping):
        present = [k for k, v in value.items() if v is not None]
        if len(present) == 1 and present[0] in _KEYS:
            return _KEYS[present[0]]
    return None


Condition = Annotated[
    Annotated[Equals, Tag("equals")]
    | Annotated[In, Tag("in")]
    | Annotated[Compare, Tag("compare")]
    | Annotated[Matches, Tag("matches")]
    | Annotated[Within, Tag("within")]
    | Annotated[Exists, Tag("exists")]
    | Annotated[AllOf, Tag("and")]
    | Annotated[AnyOf, Tag("or")]
    | Annotated[Not, Tag("not")],
    Discriminator(
        _tag,
        custom_error_type="condition",
        custom_error_message="a condition is one key of: equals, in, gt, lt, ge, le, matches, within, exists, and, or, not",
    ),
]
_TAGS: dict[type[BaseModel], str] = {
    Equals: "equals",
    In: "in",
    Compare: "compare",
    Matches: "matches",
    Within: "within",
    Exists: "exists",
    AllOf: "and",
    AnyOf: "or",
    Not: "not",
}
for _model in _TAGS:
    _model.model_rebuild()


# --- evaluation -------------------------------------------------------------------------------


def _show(value: Any) -> str:
    """A value as JSON (what YAML authors write), cut short for the timeline."""
    text = json.dumps(value, default=str)
    return text if len(text) <= 120 else text[:119] + "…"


@dataclass
class Comparison:
    op: str
    left: Any
    right: Any
    result: bool
    left_source: str = ""  # the template the left value came from, when it was one

    def text(self) -> str:
        if self.op == "exists":
            return f"exists({self.left_source}) -> {_show(self.result)}"
        left = f"{self.left_source}={_show(self.left)}" if self.left_source else _show(self.left)
        return f"{self.op}({left}, {_show(self.right)}) -> {_show(self.result)}"


@dataclass
class Outcome:
    result: bool
    comparisons: list[Comparison] = field(default_factory=list)

    def text(self) -> str:
        return "; ".join(c.text() for c in self.comparisons)


def _number(value: Any, op: str) -> float:
    if isinstance(value, bool):
        raise ConditionError(f"{op} needs numbers, got the boolean {value}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise ConditionError(f"{op} needs numbers, got {value!r} ({type(value).__name__})")


def _same(a: Any, b: Any) -> bool:
    """Equality that lets the strings of alert labels meet the numbers and booleans of YAML."""
    if isinstance(a, str) != isinstance(b, str):
        text, other = (a, b) if isinstance(a, str) else (b, a)
        if isinstance(other, bool):
            return text.strip().lower() == str(other).lower()
        if isinstance(other, int | float):
            try:
                return float(text) == float(other)
            except ValueError:
                return False
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    return bool(a == b)


def _source(operand: Any) -> str:
    return operand if has_template(operand) else ""


def _timestamp(value: Any) -> datetime:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise ConditionError(f"within needs a timestamp, got {value!r}")
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class _Evaluator:
    def __init__(self, context: Mapping[str, Any], now: datetime | None) -> None:
        self.context = context
        self.now = now
        self.comparisons: list[Comparison] = []

    def _exists(self, template: str) -> bool:
        try:
            found = render(template, self.context) is not None
        except TemplateError:
            found = False
        self.comparisons.append(Comparison("exists", found, None, found, template))
        return found

    def _recent(self, stamp: Any, age: timedelta) -> bool:
        if self.now is None:
            raise ConditionError("within needs the current time")
        return self.now - _timestamp(stamp) <= age

    def _compare(self, op: str, operands: tuple[Any, Any], decide: Any) -> bool:
        left, right = render(operands[0], self.context), render(operands[1], self.context)
        result = bool(decide(left, right))
        self.comparisons.append(Comparison(op, left, right, result, _source(operands[0])))
        return result

    def eval(self, cond: Condition) -> bool:
        if isinstance(cond, Equals):
            return self._compare("equals", cond.equals, _same)
        if isinstance(cond, In):
            return self._compare("in", cond.in_, self._member)
        if isinstance(cond, Compare):
            name, operands = cond.operator()
            return self._compare(
                name, operands, lambda a, b: _ORDER[name](_number(a, name), _number(b, name))
            )
        if isinstance(cond, Matches):
            return self._compare("matches", cond.matches, self._search)
        if isinstance(cond, Within):
            return self._compare("within", cond.within, self._recent)
        if isinstance(cond, Exists):
            return self._exists(cond.exists)
        if isinstance(cond, AllOf):
            return all(self.eval(c) for c in cond.and_)  # short-circuits: later ones are not recorded
        if isinstance(cond, AnyOf):
            return any(self.eval(c) for c in cond.or_)
        return not self.eval(cond.not_)

    @staticmethod
    def _member(item: Any, items: Any) -> bool:
        if not isinstance(items, list):
            raise ConditionError(f"in needs a list on the right, got {items!r}")
        return any(_same(item, candidate) for candidate in items)

    @staticmethod
    def _search(text: Any, pattern: str) -> bool:
        if not isinstance(text, str | int | float):
            raise ConditionError(f"matches needs text, got {type(text).__name__}")
        return regex.search(pattern, str(text))


_ORDER = {
    "gt": lambda a, b: a > b,
    "lt": lambda a, b: a < b,
    "ge": lambda a, b: a >= b,
    "le": lambda a, b: a <= b,
}


def evaluate(cond: Condition, context: Mapping[str, Any], now: datetime | None = None) -> Outcome:
    """Evaluate over rendered operands; `now` (workflow.now()) is needed by `within`.

    Raises ConditionError or TemplateError on values that cannot be compared."""
    evaluator = _Evaluator(context, now)
    result = evaluator.eval(cond)
    return Outcome(result, evaluator.comparisons)


def operands(cond: Condition, loc: Loc = ()) -> Iterator[tuple[Loc, Any]]:
    """Every operand with its location, for static template checks."""
    if isinstance(cond, AllOf | AnyOf):
        key, items = ("and", cond.and_) if isinstance(cond, AllOf) else ("or", cond.or_)
        for index, item in enumerate(items):
            yield from operands(item, (*loc, key, index))
    elif isinstance(cond, Not):
        yield from operands(cond.not_, (*loc, "not"))
    elif isinstance(cond, Exists):
        yield (*loc, "exists"), cond.exists
    else:
        key, values = _leaf(cond)
        for index, value in enumerate(values):
            yield (*loc, key, index), value


def _leaf(cond: Equals | In | Compare | Matches | Within) -> tuple[str, tuple[Any, Any]]:
    if isinstance(cond, Compare):
        return cond.operator()
    if isinstance(cond, In):
        return "in", cond.in_
    if isinstance(cond, Equals):
        return "equals", cond.equals
    if isinstance(cond, Matches):
        return "matches", cond.matches
    return "within", cond.within
