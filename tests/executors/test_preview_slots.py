"""Preview slots: check-mode runs wait their turn heartbeating, give up on cancel or before the
activity's timeout, and never hold up an apply. The Ansible cases run real ansible-playbook."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
from temporalio import activity
from temporalio.exceptions import ApplicationError, CancelledError

from activities.preview_slots import PreviewSlots
from tests.executors import test_ansible
from tests.executors.test_ansible import Env, Lab, activity_env
from tests.executors.test_terraform import Harness
from workflows.error_types import ErrorType

lab = test_ansible.lab  # the executor tests' fixture: a lab of hosts, playbooks and markers

WAITING = "waiting for a free preview slot (REMEDIATOR_WORKER_PREVIEW_RUNS=1)"


class Holder:
    """An activity that sits in a slot until `release` is set."""

    def __init__(self, slots: PreviewSlots) -> None:
        self.slots, self.inside, self.release = slots, threading.Event(), threading.Event()

    def run(self) -> None:
        with self.slots.held("holder"):
            self.inside.set()
            assert self.release.wait(60)


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(4) as threads:
        yield threads


def hold(pool: ThreadPoolExecutor, slots: PreviewSlots) -> tuple[Holder, Future[None]]:
    holder = Holder(slots)
    held = pool.submit(activity_env().env.run, holder.run)
    assert holder.inside.wait(10)
    return holder, held


def waiting(env: Env, timeout: float = 10) -> bool:
    """Whether `env` heartbeated that it waits for a slot within `timeout` seconds."""
    seen = threading.Event()
    env.hook = lambda: seen.set() if any(WAITING in beat for beat in env.heartbeats) else None
    return seen.wait(timeout)


def test_a_run_waits_heartbeating_until_a_slot_is_free(pool: ThreadPoolExecutor) -> None:
    slots = PreviewSlots(1)
    holder, held = hold(pool, slots)
    second, ran = activity_env(), threading.Event()

    def preview() -> None:
        with slots.held("second"):
            ran.set()

    done = pool.submit(second.env.run, preview)
    assert waiting(second)
    assert not ran.is_set() and any(beat.startswith("second: ") for beat in second.heartbeats)
    holder.release.set()
    done.result(10)
    held.result(10)
    assert ran.is_set()


def test_cancel_while_waiting_stops_the_wait_and_keeps_the_slot_count(pool: ThreadPoolExecutor) -> None:
    slots = PreviewSlots(1)
    holder, held = hold(pool, slots)
    waiter = activity_env()

    @activity.defn(no_thread_cancel_exception=True)  # as the executors' activities: our wait sees it
    def preview() -> None:
        with slots.held("cancelled one"):
            raise AssertionError("ran although cancelled")

    done = pool.submit(waiter.env.run, preview)
    assert waiting(waiter)
    waiter.env.cancel()
    with pytest.raises(CancelledError, match="cancelled one cancelled while waiting"):
        done.result(10)
    holder.release.set()
    held.result(10)
    # The cancelled waiter took no slot with it: the one slot is free again, at once.
    again = activity_env()
    again.env.run(lambda: slots.held("again").__enter__())
    assert not any(WAITING in beat for beat in again.heartbeats)


def test_no_slot_before_the_activity_timeout_is_a_retryable_preview_busy(pool: ThreadPoolExecutor) -> None:
    slots = PreviewSlots(1)
    holder, held = hold(pool, slots)

    def preview() -> None:
        with slots.held("late one"):
            raise AssertionError("ran without a slot")

    try:
        with pytest.raises(ApplicationError) as err:
            activity_env(seconds=3).env.run(preview)
    finally:
        holder.release.set()
        held.result(10)
    assert err.value.type == ErrorType.PREVIEW_BUSY and not err.value.non_retryable
    assert "late one: no preview slot came free" in str(err.value)


@pytest.mark.ansible
def test_an_ansible_preview_waits_for_a_slot_and_an_apply_does_not(
    lab: Lab, pool: ThreadPoolExecutor
) -> None:
    slots = PreviewSlots(1)
    executor = lab.executor(slots=slots)
    holder, held = hold(pool, slots)
    preview_env = activity_env(workflow_run_id="preview")
    preview = pool.submit(preview_env.env.run, executor.preview, lab.request("line.yml"))
    assert waiting(preview_env, timeout=30)
    # An approved fix is not queued behind previews: the apply runs while the only slot is taken.
    applied = activity_env(workflow_run_id="apply").env.run(
        executor.apply, lab.request("line.yml", step="other")
    )
    assert applied.ok and applied.changed and lab.target.exists()
    assert not preview.done()
    holder.release.set()
    held.result(10)
    outcome = preview.result(60)
    assert outcome.ok, outcome.summary


@pytest.mark.terraform
def test_a_terraform_preview_waits_for_a_slot(tmp_path: Path, pool: ThreadPoolExecutor) -> None:
    slots = PreviewSlots(1)
    tf = Harness(tmp_path, slots=slots)
    holder, held = hold(pool, slots)
    env, request = activity_env(), tf.request()
    preview = pool.submit(env.env.run, tf.executor.preview, request)
    assert waiting(env, timeout=30)
    assert not tf.run_dir(request, "preview-1-init").exists()  # not even `terraform init` ran
    holder.release.set()
    held.result(10)
    outcome = preview.result(120)
    assert outcome.ok and outcome.summary.startswith("effects: Plan:"), outcome.summary
