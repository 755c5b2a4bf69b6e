"""Conditions: each operator, the coercions alert labels need, and the recorded comparisons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from workflows.conditions import Condition, ConditionError, evaluate

ADAPTER: TypeAdapter[Any] = TypeAdapter(Condition)
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
CONTEXT: dict[str, Any] = {
    "alert": {"labels": {"replicas": "3", "severity": "critical", "flag": "true"}},
    "steps": {
        "cpu": {"value": 0.93},
        "probe": {"ok": False, "error": "ConnectError: refused"},
        "ev": {"deployments": [{"changed_at": (NOW - timedelta(minutes=10)).isoformat()}]},
        "none": {"value": None},
    },
}


def check(cond: dict[str, Any]) -> bool:
    return evaluate(ADAPTER.validate_python(cond), CONTEXT, NOW).result


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        ({"equals": ["${steps.probe.ok}", False]}, True),
        ({"equals": ["${alert.labels.replicas}", 3]}, True),  # label text meets a YAML number
        ({"equals": ["${alert.labels.flag}", True]}, True),
        ({"equals": ["${steps.probe.ok}", 0]}, False),  # a boolean is not a number
        ({"in": ["${alert.labels.severity}", ["critical", "page"]]}, True),
        ({"in": ["${alert.labels.replicas}", [1, 2]]}, False),
        ({"gt": ["${steps.cpu.value}", 0.9]}, True),
        ({"lt": ["${alert.labels.replicas}", 2]}, False),
        ({"ge": ["${alert.labels.replicas}", "3"]}, True),
        ({"le": [3, 3]}, True),
        ({"matches": ["${steps.probe.error}", "refused|timeout"]}, True),
        ({"within": ["${steps.ev.deployments.0.changed_at}", "30m"]}, True),
        ({"within": ["${steps.ev.deployments.0.changed_at}", "5m"]}, False),
        ({"exists": "${steps.ev.deployments.0}"}, True),
        ({"exists": "${steps.ev.deployments.3}"}, False),
        ({"exists": "${steps.none.value}"}, False),
        ({"not": {"equals": [1, 1]}}, False),
        ({"and": [{"gt": ["${steps.cpu.value}", 0.5]}, {"equals": ["${steps.probe.ok}", False]}]}, True),
        ({"or": [{"gt": ["${steps.cpu.value}", 0.99]}, {"in": ["x", ["x"]]}]}, True),
    ],
)
def test_operators(cond: dict[str, Any], expected: bool) -> None:
    assert check(cond) is expected


def test_comparisons_are_recorded_with_values_and_short_circuit() -> None:
    cond = ADAPTER.validate_python(
        {"and": [{"gt": ["${steps.cpu.value}", 0.95]}, {"equals": ["${alert.labels.severity}", "page"]}]}
    )
    outcome = evaluate(cond, CONTEXT, NOW)
    assert outcome.result is False
    # `and` stopped at the first false: the second comparison never ran, so it is not claimed.
    assert outcome.text() == "gt(${steps.cpu.value}=0.93, 0.95) -> false"


def test_the_same_input_always_decides_the_same() -> None:
    cond = ADAPTER.validate_python({"or": [{"lt": ["${steps.cpu.value}", 0.5]}, {"exists": "${steps.cpu}"}]})
    first = evaluate(cond, CONTEXT, NOW)
    assert all(evaluate(cond, CONTEXT, NOW).text() == first.text() for _ in range(5))


@pytest.mark.parametrize(
    ("cond", "message"),
    [
        ({"gt": ["${alert.labels.severity}", 1]}, "gt needs numbers, got 'critical'"),
        ({"gt": ["${steps.probe.ok}", 1]}, "gt needs numbers, got the boolean False"),
        ({"lt": ["${steps.none.value}", 1]}, "lt needs numbers, got None"),
        ({"in": ["x", "${alert.labels.severity}"]}, "in needs a list on the right"),
        ({"within": ["${alert.labels.severity}", "1h"]}, "within needs a timestamp"),
    ],
)
def test_values_that_cannot_compare_are_errors(cond: dict[str, Any], message: str) -> None:
    with pytest.raises(ConditionError, match=message):
        check(cond)


@pytest.mark.parametrize(
    ("cond", "message"),
    [
        ({"gt": [1]}, "Field required"),
        ({"bigger": [1, 2]}, "a condition is one key of"),
        ({"gt": [1, 2], "lt": [1, 2]}, "a condition is one key of"),
        ({"matches": ["x", "("]}, "bad regular expression"),
        ({"matches": ["x", "${params.regex}"]}, "must be literal"),
        ({"in": ["x", "y"]}, "must be a list"),
        ({"and": []}, "at least 1 item"),
        ({"exists": "prefix ${steps.cpu}"}, "exactly one reference"),
        ({"within": ["${steps.ev}", "soon"]}, "timedelta"),
    ],
)
def test_malformed_conditions_are_refused_when_loading(cond: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ADAPTER.validate_python(cond)


def test_conditions_survive_a_json_round_trip() -> None:
    cond = ADAPTER.validate_python({"not": {"or": [{"in": ["a", ["a"]]}, {"within": ["x", "90s"]}]}})
    assert ADAPTER.validate_json(ADAPTER.dump_json(cond)) == cond
