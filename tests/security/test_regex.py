"""Operator regexes run on attacker text in linear time (RE2), and RE2-only syntax is checked at load."""

from __future__ import annotations

import pytest

from workflows import regex
from workflows.conditions import Matches
from workflows.matching import Matcher
from workflows.playbook import ParamError, Playbook, resolve_params

EVIL = "a" * 5000 + "!"  # (a+)+$ backtracks for ever on this under Python's re


def test_catastrophic_pattern_answers_under_re2() -> None:
    assert regex.search(r"(a+)+$", EVIL) is False
    assert regex.fullmatch(r"(a|aa)+", "a" * 100_000) is True


def test_matcher_with_nested_quantifier_does_not_match_attacker_label() -> None:
    matcher = Matcher.model_validate('service=~"(a+)+"')
    assert matcher.matches({"service": EVIL}) is False
    assert matcher.matches({"service": "aaaa"}) is True


def test_matches_condition_and_param_pattern_run_on_attacker_text() -> None:
    Matches.model_validate({"matches": ["${alert.labels.x}", "(a+)+$"]})  # compiles under RE2
    assert regex.search("(x+x+)+y", "x" * 20_000) is False
    book = Playbook.model_validate(
        {
            "name": "P",
            "match": {"matchers": ['alertname="P"']},
            "params": {"service": {"default": "aaa", "pattern": "(a+)+"}},
            "steps": [{"id": "tell", "kind": "notify", "message": "${params.service}"}],
        }
    )
    with pytest.raises(ParamError, match="does not match"):
        resolve_params(book, {"service": EVIL}, {})
    assert resolve_params(book, {"service": "aaaa"}, {}) == {"service": "aaaa"}


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        (r"(a)\1", "invalid escape sequence"),
        ("(?=a)b", "invalid perl operator"),
        ("(?<!x)y", "invalid perl operator"),
    ],
)
def test_patterns_re2_cannot_run_are_refused(pattern: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        Matcher.model_validate(f'service=~"{pattern.replace(chr(92), chr(92) * 2)}"')
    with pytest.raises(ValueError, match=reason):
        Matches.model_validate({"matches": ["x", pattern]})
