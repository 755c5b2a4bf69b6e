"""The activity names the real worker registers; `fake`, which registers a test fake only under one;
and what a playbook can call (`called_by`).

Fakes take their names from workflows/activity_names.py and `fake` refuses a name the real worker
(`worker.main.build_activities`, what `build_worker` registers) does not register: a fake can no
longer agree with a workflow on a name that no production worker answers to.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Collection
from functools import cache
from pathlib import Path
from typing import Any, TypeVar, get_args

from temporalio import activity

from activities.config import Settings
from activities.llm import activity_names
from worker.main import build_activities
from workflows.activity_names import EXECUTOR_OPS, executor_op
from workflows.checks import CheckSpec, PreviewCheck
from workflows.playbook import ActionStep, CheckStep, Playbook, RollbackStep, VerifyStep

F = TypeVar("F", bound=Callable[..., Any])


@cache
def real_activity_names() -> frozenset[str]:
    """Every activity name `build_worker` registers (plugins aside), built as the worker builds them."""
    with tempfile.TemporaryDirectory(prefix="registration-") as state:
        return frozenset(activity_names(build_activities(Settings(state_dir=Path(state)))))


def fake(name: str) -> Callable[[F], F]:
    """`@activity.defn(name=name)` for a test fake, refusing a name the real worker does not register."""
    if name not in real_activity_names():
        raise AssertionError(f"no real activity is registered as {name!r}: {sorted(real_activity_names())}")
    return activity.defn(name=name)


def executor_ops(executor: str) -> set[str]:
    return {executor_op(executor, op) for op in EXECUTOR_OPS}


CHECK_ACTIVITY = {
    str(kind.model_fields["type"].default): kind.ACTIVITY
    for kind in get_args(get_args(CheckSpec)[0])
    if kind is not PreviewCheck
}


def called_by(playbook: Playbook, taken: Collection[str] = ()) -> tuple[set[str], set[str]]:
    """What a playbook's steps (or only the `taken` step ids) can call: its reads' activities, and its
    executors' operations."""
    reads: set[str] = set()
    ops: set[str] = set()
    for _, step in playbook.walk():
        if taken and step.id not in taken:
            continue
        if isinstance(step, CheckStep | VerifyStep):
            kind = step.check["type"]
            preview = kind == "preview"
            reads.add(
                executor_op(step.check["action"]["executor"], "preview") if preview else CHECK_ACTIVITY[kind]
            )
        if isinstance(step, ActionStep | RollbackStep):
            ops |= executor_ops(step.action["executor"])
    return reads, ops
