"""Alertmanager-style matchers and the choice of one playbook among overlapping ones."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from workflows.matching import Match, Matcher, may_overlap, select


@pytest.mark.parametrize(
    ("text", "label", "op", "value"),
    [
        ('alertname="ServiceDown"', "alertname", "=", "ServiceDown"),
        ("severity!=info", "severity", "!=", "info"),
        ('severity =~ "critical|page"', "severity", "=~", "critical|page"),
        ('job!~"test-.*"', "job", "!~", "test-.*"),
        (r'msg="say \"hi\"\n"', "msg", "=", 'say "hi"\n'),
        ('empty=""', "empty", "=", ""),
    ],
)
def test_parses_alertmanager_syntax(text: str, label: str, op: str, value: str) -> None:
    matcher = Matcher.model_validate(text)
    assert (matcher.label, matcher.op, matcher.value) == (label, op, value)
    assert Matcher.model_validate(str(matcher)) == matcher  # prints back as it parses


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("no operator here", "is not a matcher"),
        ('9lives="x"', "is not a matcher"),
        ('a=~"(unclosed"', "bad regular expression"),
        ('a="x"y', "stray quote"),
        (r'a="\q"', "unknown escape"),
    ],
)
def test_refuses_malformed_matchers(text: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Matcher.model_validate(text)


def test_semantics_follow_alertmanager() -> None:
    labels = {"alertname": "HighCPU", "severity": "critical"}
    assert Matcher.model_validate('severity=~"crit.*"').matches(labels)
    # Regexes are anchored: a substring is not enough.
    assert not Matcher.model_validate('severity=~"crit"').matches(labels)
    # A missing label reads as the empty string.
    assert Matcher.model_validate('team=""').matches(labels)
    assert Matcher.model_validate('team!="ops"').matches(labels)
    assert not Matcher.model_validate('team=~".+"').matches(labels)
    assert Matcher.model_validate('team!~".+"').matches(labels)


def _match(*matchers: str, priority: int = 0) -> Match:
    return Match(matchers=[Matcher.model_validate(m) for m in matchers], priority=priority)


def test_priority_then_specificity_then_name_choose() -> None:
    generic = _match('alertname=~"High.*"')
    specific = _match('alertname="HighCPU"', 'env="prod"')
    urgent = _match('alertname=~"High.*"', priority=5)
    labels = {"alertname": "HighCPU", "env": "prod"}

    assert select([("generic", generic), ("specific", specific)], labels).chosen == "specific"
    chosen = select([("generic", generic), ("specific", specific), ("urgent", urgent)], labels)
    assert chosen.chosen == "urgent"
    assert chosen.candidates == ("urgent", "specific", "generic")
    assert chosen.explain() == "urgent chosen over specific, generic"
    # A full tie is broken by name, so the answer never depends on file order.
    assert select([("b", generic), ("a", generic)], labels).chosen == "a"
    assert select([("b", generic), ("a", generic)], {"alertname": "Other"}).chosen is None


def test_overlap_detection_is_conservative() -> None:
    assert not may_overlap(_match('alertname="A"'), _match('alertname="B"'))
    assert not may_overlap(_match('alertname=~"A|B"'), _match('alertname=~"C|D"'))
    assert not may_overlap(_match('alertname="A"'), _match('alertname!="A"'))
    assert may_overlap(_match('alertname=~"A|B"'), _match('alertname=~"B|C"'))
    assert may_overlap(_match('alertname="A"'), _match('severity="critical"'))
    assert may_overlap(_match('alertname=~"A.*"'), _match('alertname=~".*B"'))
