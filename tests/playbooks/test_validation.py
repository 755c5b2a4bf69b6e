"""Static rules: what is wrong with a playbook before it runs, located as YAML spells it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.playbooks.builders import ansible, playbook, probe_verify, scale
from workflows.validation import problems


def issues(steps: list[dict[str, Any]], params: dict[str, Any] | None = None) -> list[str]:
    return [str(i) for i in problems(playbook(steps, params=params))]


NOTIFY = {"id": "tell", "kind": "notify", "message": "done"}
STOP = {"id": "end", "kind": "stop", "outcome": "resolved", "reason": "fine"}


def test_a_sound_playbook_has_no_problems() -> None:
    steps = [
        {"id": "probe", "kind": "check", "check": {"type": "probe", "url": "${alert.annotations.url}"}},
        {
            "id": "down",
            "kind": "decide",
            "when": {"equals": ["${steps.probe.ok}", False]},
            "then": [scale("out", replicas="${params.n}")],
            "else": [STOP],
        },
        {"id": "undo_out", "kind": "rollback", "undo": "out", "action": scale("x", replicas=2)["action"]},
        probe_verify(),
        {
            "id": "tell",
            "kind": "notify",
            "message": "${steps.healthy.status} ${steps.out.summary} ${diagnosis.category}",
        },
    ]
    assert issues(steps, params={"n": 3}) == []


def test_duplicate_ids_anywhere_in_the_tree() -> None:
    steps = [ansible("a"), {"id": "d", "kind": "decide", "when": {"equals": [1, 1]}, "then": [ansible("a")]}]
    assert issues(steps) == ["steps[1].then[0].id: duplicate step id 'a'"]


def test_steps_after_a_stop_are_unreachable() -> None:
    assert issues([ansible("a"), STOP, NOTIFY]) == [
        "steps[2]: step 'tell' is unreachable: 'end' always ends the playbook"
    ]
    both = {
        "id": "d",
        "kind": "decide",
        "when": {"equals": [1, 1]},
        "then": [STOP],
        "else": [{**STOP, "id": "end2"}],
    }
    assert issues([both, NOTIFY]) == [
        "steps[1]: step 'tell' is unreachable: both branches of 'd' end the playbook"
    ]


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("${params.missing}", "params has no 'missing' (known here: n)"),
        ("${secrets.token}", "unknown root 'secrets'"),
        ("${steps.later.ok}", "step 'later' has not run on every path to this point"),
        ("${steps.probe.okay}", "steps.probe has no 'okay' (it has: url, ok, status, latency_ms, error)"),
        ("${steps.tell.x}", "notify steps have no output"),
        ("${steps.probe.ok.x}", "steps.probe.ok is a single value with no 'x'"),
        ("${diagnosis.certainty}", "diagnosis has no 'certainty'"),
        ("${incident.name}", "incident has no 'name'"),
        ("${os.system('id')}", "is not a reference"),
    ],
)
def test_templates_referring_to_nothing(template: str, message: str) -> None:
    steps = [
        {"id": "probe", "kind": "check", "check": {"type": "probe", "url": "http://x"}},
        NOTIFY,
        ansible("act", extravars={"value": template}),
        {"id": "later", "kind": "check", "check": {"type": "probe", "url": "http://x"}},
    ]
    found = issues(steps, params={"n": 1})
    assert len(found) == 1 and found[0].startswith("steps[2].action.extravars.value: ")
    assert message in found[0]


def test_a_step_from_one_branch_is_not_there_after_the_decide() -> None:
    decide = {
        "id": "d",
        "kind": "decide",
        "when": {"equals": [1, 1]},
        "then": [ansible("a")],
        "else": [ansible("b")],
    }
    assert issues([decide, ansible("after", extravars={"x": "${steps.a.ok}"})]) == [
        "steps[1].action.extravars.x: ${steps.a.ok}: step 'a' has not run on every path to this point "
        "(it comes later, or only on another branch)"
    ]


def test_common_outputs_of_both_branches_survive_the_decide() -> None:
    decide = {
        "id": "d",
        "kind": "decide",
        "when": {"equals": [1, 1]},
        "then": [{"id": "c1", "kind": "check", "check": {"type": "probe", "url": "u"}}],
        "else": [STOP],
    }
    assert (
        issues([decide, ansible("after", extravars={"x": "${steps.c1.ok}", "y": "${steps.d.result}"})]) == []
    )


@pytest.mark.parametrize(
    ("action", "where", "message"),
    [
        (
            {"executor": "kubectl", "name": "x"},
            "steps[0].action.executor",
            "does not match any of the expected tags",
        ),
        ({"executor": "${params.n}", "name": "x"}, "steps[0].action.executor", "must be written out"),
        ({"executor": "ansible", "name": "x"}, "steps[0].action.playbook", "Field required"),
        (
            {"executor": "ansible", "name": "x", "playbook": "p.yml", "extravar": {}},
            "steps[0].action.extravar",
            "unknown field for AnsibleAction",
        ),
        (
            {"executor": "ansible", "name": "x", "playbook": "p.yml", "risk": "harmless"},
            "steps[0].action.risk",
            "Input should be 'read', 'change' or 'destructive'",
        ),
        (
            {"executor": "kubernetes", "name": "x", "operation": "explode", "namespace": "a", "args": {}},
            "steps[0].action.operation",
            "Input should be 'scale'",
        ),
        (
            {
                "executor": "kubernetes",
                "name": "x",
                "operation": "scale",
                "namespace": "a",
                "args": {"deployment": "web", "replicas": "many"},
            },
            "steps[0].action.args.replicas",
            "valid integer",
        ),
        (
            {
                "executor": "kubernetes",
                "name": "x",
                "operation": "scale",
                "namespace": "a",
                "args": {"deployment": "web", "replica": 3},
            },
            "steps[0].action.args.replica",
            "unknown field",
        ),
        (
            {
                "executor": "kubernetes",
                "name": "x",
                "operation": "drain",
                "risk": "change",
                "args": {"node": "n1"},
            },
            "steps[0].action",
            "below 'destructive'",
        ),
        (
            {"executor": "terraform", "name": "x", "module": "../etc"},
            "steps[0].action.module",
            "inside the modules directory",
        ),
    ],
)
def test_unknown_actions_and_bad_arguments(action: dict[str, Any], where: str, message: str) -> None:
    found = issues([{"id": "act", "kind": "action", "action": action}], params={"n": 1})
    assert any(f.startswith(f"{where}: ") and message in f for f in found), found


def test_templated_arguments_wait_for_run_time_but_literals_do_not() -> None:
    templated = {
        "executor": "kubernetes",
        "name": "x",
        "operation": "scale",
        "namespace": "${params.ns}",
        "args": {"deployment": "${params.d}", "replicas": "${params.n}"},
    }
    assert (
        issues([{"id": "a", "kind": "action", "action": templated}], params={"ns": "a", "d": "web", "n": 2})
        == []
    )
    half = {**templated, "args": {"deployment": "${params.d}", "replicas": "lots"}}
    found = issues([{"id": "a", "kind": "action", "action": half}], params={"ns": "a", "d": "web", "n": 2})
    assert found == [
        "steps[0].action.args.replicas: Input should be a valid integer, unable to parse string as an integer"
    ]


@pytest.mark.parametrize(
    ("check", "message"),
    [
        ({"type": "dns", "name": "x"}, "does not match any of the expected tags"),
        ({"type": "probe"}, "steps[0].check.url: Field required"),
        ({"type": "prometheus", "query": "up", "range_minutes": 99999}, "less than or equal to 1440"),
        (
            {"type": "kubernetes.logs", "namespace": "Not_A_Namespace", "pod": "web-1"},
            "steps[0].check.namespace: String should match pattern",
        ),
        (
            {"type": "kubernetes.events", "namespace": "shop", "colour": "red"},
            "steps[0].check.colour: Extra inputs are not permitted",
        ),
        (
            {"type": "preview", "action": {"executor": "ansible", "name": "x"}},
            "steps[0].check.action.playbook: Field required",
        ),
    ],
)
def test_unknown_checks_and_bad_check_arguments(check: dict[str, Any], message: str) -> None:
    found = issues([{"id": "c", "kind": "check", "check": check}])
    assert any(message in f for f in found), found


def test_kubernetes_reads_declare_their_outputs() -> None:
    steps = [
        {
            "id": "logs",
            "kind": "check",
            "check": {"type": "kubernetes.logs", "namespace": "shop", "pod": "web-1"},
        },
        {"id": "tell", "kind": "notify", "message": "${steps.logs.lines.-1} ${steps.logs.linez}"},
    ]
    assert issues(steps) == [
        "steps[1].message: ${steps.logs.linez}: steps.logs has no 'linez' "
        "(it has: pod, container, previous, lines, clipped_lines)"
    ]


def test_rollback_must_undo_an_earlier_action_once() -> None:
    undo = scale("x", replicas=1)["action"]
    assert issues([{"id": "r", "kind": "rollback", "undo": "nothing", "action": undo}]) == [
        "steps[0].undo: 'nothing' is not a step; undo names an earlier action step"
    ]
    assert issues([NOTIFY, {"id": "r", "kind": "rollback", "undo": "tell", "action": undo}]) == [
        "steps[1].undo: 'tell' is a notify step; undo names an earlier action step"
    ]
    assert issues([{"id": "r", "kind": "rollback", "undo": "a", "action": undo}, ansible("a")]) == [
        "steps[0].undo: action 'a' has not run on every path to this rollback"
    ]
    twice = [
        ansible("a"),
        {"id": "r1", "kind": "rollback", "undo": "a", "action": undo},
        {"id": "r2", "kind": "rollback", "undo": "a", "action": undo},
    ]
    assert issues(twice) == ["steps[2].undo: action 'a' already has a rollback step"]


def test_conditions_and_messages_are_checked_too() -> None:
    steps = [
        {
            "id": "d",
            "kind": "decide",
            "when": {"and": [{"gt": ["${steps.nope.value}", 1]}]},
            "then": [NOTIFY],
        },
        {
            "id": "v",
            "kind": "verify",
            "check": {"type": "probe", "url": "u"},
            "until": {"equals": ["${steps.v.okk}", True]},
        },
        {"id": "m", "kind": "notify", "message": "${params.x}"},
    ]
    found = issues(steps)
    assert [f.split(": ")[0] for f in found] == [
        "steps[0].when.and[0].gt[0]",
        "steps[1].until.equals[0]",
        "steps[2].message",
    ]
