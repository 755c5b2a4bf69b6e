"""Alertmanager-style label matchers and the choice of one playbook per alert.

Semantics follow Alertmanager's `matchers`: a missing label reads as the empty string and regular
expressions are anchored (full match). The alert name is the `alertname` label.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from workflows import regex

Op = Literal["=", "!=", "=~", "!~"]

_MATCHER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$", re.DOTALL)
_ESCAPES = {"n": "\n", '"': '"', "\\": "\\"}


def _unquote(text: str) -> str:
    if len(text) < 2 or not (text.startswith('"') and text.endswith('"')):
        if '"' in text:
            raise ValueError(f"value {text!r} has a stray quote; quote the whole value")
        return text
    out: list[str] = []
    chars = iter(text[1:-1])
    for ch in chars:
        if ch == "\\":
            nxt = next(chars, "")
            if nxt not in _ESCAPES:
                raise ValueError(f"unknown escape \\{nxt} in {text}")
            out.append(_ESCAPES[nxt])
        elif ch == '"':
            raise ValueError(f"unescaped quote inside {text}")
        else:
            out.append(ch)
    return "".join(out)


class Matcher(BaseModel):
    """One matcher, written in YAML as Alertmanager writes it: `severity=~"critical|page"`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    label: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    op: Op
    value: str

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, data: Any) -> Any:
        if not isinstance(data, str):
            return data
        found = _MATCHER.match(data)
        if not found:
            raise ValueError(f'{data!r} is not a matcher like name="value" (operators = != =~ !~)')
        label, op, value = found.groups()
        return {"label": label, "op": op, "value": _unquote(value)}

    @field_validator("value")
    @classmethod
    def _regex_compiles(cls, value: str, info: Any) -> str:
        if info.data.get("op") in ("=~", "!~"):
            regex.compile_pattern(value)
        return value

    @property
    def is_regex(self) -> bool:
        return self.op in ("=~", "!~")

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.label, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        hit = regex.fullmatch(self.value, actual)
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.label}{self.op}"{escaped}"'


class Match(BaseModel):
    """Which alerts a playbook handles. Higher priority wins when several playbooks match."""

    model_config = ConfigDict(extra="forbid")

    matchers: list[Matcher] = Field(min_length=1)
    priority: int = 0

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)

    @property
    def specificity(self) -> int:
        """Equality matchers pin more than regexes; used only to break priority ties."""
        return sum(2 if m.op == "=" else 1 for m in self.matchers)


@dataclass(frozen=True)
class Selection:
    chosen: str | None
    candidates: tuple[str, ...]  # every matching playbook, best first

    def explain(self) -> str:
        if self.chosen is None:
            return "no playbook matches"
        others = [c for c in self.candidates if c != self.chosen]
        return f"{self.chosen} chosen" + (f" over {', '.join(others)}" if others else "")


def _rank(item: tuple[str, Match]) -> tuple[int, int, str]:
    name, match = item
    return (-match.priority, -match.specificity, name)


def select(playbooks: Sequence[tuple[str, Match]], labels: Mapping[str, str]) -> Selection:
    """Highest priority first, then the more specific, then the name: the same answer every time."""
    hits = sorted((item for item in playbooks if item[1].matches(labels)), key=_rank)
    names = tuple(name for name, _ in hits)
    return Selection(chosen=names[0] if names else None, candidates=names)


_ALTERNATION = re.compile(r"^[A-Za-z0-9_:.-]+(\|[A-Za-z0-9_:.-]+)*$")


def _literals(m: Matcher) -> set[str] | None:
    """The values a positive matcher accepts, when it is a literal or a plain `A|B|C` alternation."""
    if m.op == "=":
        return {m.value}
    if m.op == "=~" and _ALTERNATION.match(m.value):
        return set(m.value.split("|"))
    return None


def _disjoint(a: Matcher, b: Matcher) -> bool:
    """True when no label value can satisfy both (a conservative answer: False when unsure)."""
    if a.label != b.label:
        return False
    for one, other in ((a, b), (b, a)):
        values = _literals(one)
        if values is not None and not any(other.matches({one.label: v}) for v in values):
            return True
    return False


def may_overlap(a: Match, b: Match) -> bool:
    """Whether one alert could match both; used to warn about ties that only the name breaks."""
    return not any(_disjoint(x, y) for x in a.matchers for y in b.matchers)
