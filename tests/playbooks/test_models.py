"""The playbook models: shapes, parameters, durations, retries, and pinning into an incident."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from temporalio.contrib.pydantic import pydantic_data_converter

from tests.playbooks.builders import ansible, pin, playbook
from workflows.playbook import ParamError, PinnedPlaybook, Playbook, RetrySpec, VerifyStep, resolve_params

PARAMS: dict[str, Any] = {
    "replicas": 3,
    "ratio": 0.5,
    "enabled": False,
    "service": {"label": "app", "pattern": "[a-z]+"},
    "fixed": {"default": "safe", "override": False},
    "url": {"label": "probe_url", "annotation": "probe_url", "default": ""},
}
BOOK = playbook([ansible("restart")], params=PARAMS)


def test_params_take_defaults_then_labels_then_annotations() -> None:
    labels = {"app": "web", "replicas": "5", "ratio": "0.75", "enabled": "yes", "fixed": "evil"}
    values = resolve_params(BOOK, labels, {"probe_url": "http://x/health"})
    assert values == {
        "replicas": 5,
        "ratio": 0.75,
        "enabled": True,
        "service": "web",
        "fixed": "safe",  # not overridable: alert text cannot change it
        "url": "http://x/health",
    }
    assert (
        resolve_params(BOOK, {"app": "web", "probe_url": "http://label"}, {"probe_url": "x"})["url"]
        == "http://label"
    )


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ({}, "param service: no default and the alert has no 'app' label"),
        ({"app": "Web!"}, "param service: 'Web!' does not match '\\[a-z\\]\\+'"),
        ({"app": "web", "replicas": "many"}, "param replicas: label value 'many' is not a int"),
        ({"app": "web", "enabled": "maybe"}, "param enabled: label value 'maybe' is not a bool"),
    ],
)
def test_bad_params_name_the_param(labels: dict[str, str], message: str) -> None:
    with pytest.raises(ParamError, match=message):
        resolve_params(BOOK, labels, {})


def test_param_pattern_must_fit_its_default() -> None:
    with pytest.raises(ValidationError, match="default 'Web' does not match"):
        playbook([ansible("a")], params={"service": {"default": "Web", "pattern": "[a-z]+"}})


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("5m", 300), ("1h30m", 5400), ("2d", 172800), ("PT1M", 60), (15, 15)]
)
def test_durations_read_like_people_write_them(text: Any, seconds: int) -> None:
    step = {
        "id": "v",
        "kind": "verify",
        "check": {"type": "probe", "url": "u"},
        "until": {"equals": [1, 1]},
        "timeout": text,
    }
    parsed = playbook([step]).steps[0]
    assert isinstance(parsed, VerifyStep) and parsed.deadline == timedelta(seconds=seconds)


@pytest.mark.parametrize("bad", ["0s", "-5m", "soon"])
def test_bad_durations_are_refused(bad: str) -> None:
    with pytest.raises(ValidationError):
        playbook([{**ansible("a"), "timeout": bad}])


def test_retry_maps_onto_temporal_retry_policy() -> None:
    retry = RetrySpec.model_validate(
        {
            "maximum_attempts": 5,
            "initial_interval": "2s",
            "backoff_coefficient": 3,
            "maximum_interval": "1m",
            "non_retryable_error_types": ["BadPlaybook"],
        }
    )
    policy = retry.policy()
    assert (policy.maximum_attempts, policy.initial_interval, policy.backoff_coefficient) == (
        5,
        timedelta(seconds=2),
        3,
    )
    assert policy.maximum_interval == timedelta(minutes=1)
    assert policy.non_retryable_error_types == ["BadPlaybook"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"steps": [{"id": "Bad-Id", "kind": "notify", "message": "x"}]}, "String should match pattern"),
        ({"steps": [{"id": "a", "kind": "teleport"}]}, "does not match any of the expected tags"),
        (
            {"steps": [{"id": "a", "kind": "notify", "message": "x", "colour": "red"}]},
            "Extra inputs are not permitted",
        ),
        ({"steps": [{"id": "a", "kind": "decide", "when": {"equals": [1, 1]}}]}, "needs `then` or `else`"),
        ({"steps": []}, "at least 1 item"),
        ({"match": {"matchers": []}}, "at least 1 item"),
    ],
)
def test_shapes_are_validated(data: dict[str, Any], message: str) -> None:
    base = {"name": "X", "match": {"matchers": ['alertname="X"']}, "steps": [ansible("a")]}
    with pytest.raises(ValidationError, match=message):
        Playbook.model_validate({**base, **data})


def test_pinned_playbook_travels_through_temporal_unchanged() -> None:
    book = playbook(
        [
            {
                "id": "probe",
                "kind": "check",
                "check": {"type": "probe", "url": "http://x"},
                "retry": {"maximum_attempts": 2},
            },
            {
                "id": "d",
                "kind": "decide",
                "when": {
                    "and": [
                        {"in": ["${steps.probe.status}", [500, 503]]},
                        {"not": {"exists": "${steps.probe.error}"}},
                    ]
                },
                "then": [ansible("restart")],
                "else": [{"id": "stop", "kind": "stop", "outcome": "escalated", "reason": "odd"}],
            },
        ],
        params=PARAMS,
    )
    pinned = pin(book)
    payload = pydantic_data_converter.payload_converter.to_payloads([pinned])
    back = pydantic_data_converter.payload_converter.from_payloads(payload, [PinnedPlaybook])[0]
    assert back == pinned
    assert b'"else"' in payload[0].data  # YAML's spelling, not the Python attribute's
