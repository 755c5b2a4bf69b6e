"""Safe substitution: references only, never expressions; missing keys named clearly."""

from __future__ import annotations

import re
from typing import Any

import pytest

from workflows.diagnosis import Diagnosis
from workflows.templating import ANY, SCALAR, Reference, TemplateError, check_reference, references, render

CONTEXT: dict[str, Any] = {
    "alert": {
        "name": "HighCPU",
        "labels": {"service": "web", "replicas": "3", "evil": "{{ lookup('pipe','id') }}"},
    },
    "params": {"replicas": 4, "enabled": True, "ratio": 0.8, "trap": "${params.replicas}"},
    "steps": {"probe": {"ok": False, "status": 503, "hosts": ["a", "b"]}},
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("${params.replicas}", 4),  # a whole-string reference keeps its type
        ("${steps.probe.ok}", False),
        ("${steps.probe.hosts}", ["a", "b"]),
        ("${ params.ratio }", 0.8),
        ("x=${params.replicas}, ok=${steps.probe.ok}", "x=4, ok=false"),
        ("${steps.probe.hosts.1}", "b"),
        ("${steps.probe.hosts.-1}", "b"),  # negative counts from the end: the newest of a history
        ("cost: $${not.a.template} and $5", "cost: ${not.a.template} and $5"),
        ("no templates {{ jinja }} here", "no templates {{ jinja }} here"),
    ],
)
def test_renders(template: str, expected: Any) -> None:
    assert render(template, CONTEXT) == expected


def test_renders_nested_structures() -> None:
    value = {
        "args": {"replicas": "${params.replicas}", "names": ["${alert.labels.service}", "fixed"]},
        "n": 1,
    }
    assert render(value, CONTEXT) == {"args": {"replicas": 4, "names": ["web", "fixed"]}, "n": 1}


@pytest.mark.parametrize(
    "template",
    [
        "${__import__('os').system('id')}",
        "${params.replicas + 1}",
        "${params['replicas']}",
        "${alert.labels.service}x${",
        "${ {{7*7}} }",
        "${exec}${",
        "${}",
        "${params.replicas|upper}",
    ],
)
def test_expressions_are_refused_not_evaluated(template: str) -> None:
    with pytest.raises(TemplateError):
        references(template)
    with pytest.raises(TemplateError):
        render(template, CONTEXT)


def test_paths_index_data_and_never_reach_attributes() -> None:
    with pytest.raises(TemplateError, match=re.escape("alert.labels.service is str, not a mapping")):
        render("${alert.labels.service.__class__}", CONTEXT)
    with pytest.raises(TemplateError, match="has no '__globals__'"):
        render("${params.__globals__}", CONTEXT)


def test_values_are_inserted_once_and_never_evaluated() -> None:
    # A label holding Jinja, or our own syntax, comes out exactly as it went in.
    assert render("${alert.labels.evil}", CONTEXT) == "{{ lookup('pipe','id') }}"
    assert render("v=${params.trap}", CONTEXT) == "v=${params.replicas}"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("${alert.labels.host}", "alert.labels has no 'host' (it has: evil, replicas, service)"),
        ("${steps.verify.ok}", "steps has no 'verify' (it has: probe)"),
        ("${steps.probe.hosts.5}", "steps.probe.hosts has only 2 item(s)"),
        ("${steps.probe.hosts.-3}", "steps.probe.hosts has only 2 item(s)"),
        ("${steps.probe.ok.deeper}", "steps.probe.ok is bool, not a mapping"),
        ("in text: ${steps.probe.hosts}", "only scalars can sit inside text"),
    ],
)
def test_missing_keys_at_run_time_say_what_exists(template: str, message: str) -> None:
    with pytest.raises(TemplateError, match=re.escape(message)):
        render(template, CONTEXT)


SCOPE = {"alert": {"name": SCALAR, "labels": ANY}, "params": {"replicas": SCALAR}, "diagnosis": Diagnosis}


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("params.replica", "params has no 'replica' (known here: replicas)"),
        ("params.replicas.x", "params.replicas is a single value with no 'x'"),
        ("diagnosis.certainty", "diagnosis has no 'certainty'"),
        ("alert.name.first", "alert.name is a single value"),
    ],
)
def test_static_checks_find_references_to_nothing(path: str, message: str) -> None:
    with pytest.raises(TemplateError, match=re.escape(message)):
        check_reference(Reference(tuple(path.split("."))), SCOPE)


def test_static_checks_accept_what_only_run_time_knows() -> None:
    for path in ("alert.labels.anything.at.all", "diagnosis.confidence", "params.replicas"):
        check_reference(Reference(tuple(path.split("."))), SCOPE)
