"""Storm control's sliding minute: the caps, their expiry, and slots given back by re-fires."""

from __future__ import annotations

from api.storm import Reservation, StormControl


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_overall_cap_refuses_until_the_oldest_slot_is_a_minute_old() -> None:
    clock = Clock()
    storm = StormControl(per_minute=3, per_sender_per_minute=10, clock=clock)
    for sender in ("a", "b", "c"):
        assert isinstance(storm.reserve(sender), Reservation)
        clock.now += 10
    refused = storm.reserve("d")
    assert isinstance(refused, str) and "REMEDIATOR_ALERT_NEW_INCIDENTS_PER_MINUTE" in refused
    clock.now = 1000.0 + 59.9  # the first slot is still inside the minute
    assert isinstance(storm.reserve("d"), str)
    clock.now = 1000.0 + 60.0
    assert isinstance(storm.reserve("d"), Reservation)
    assert isinstance(storm.reserve("e"), str)


def test_one_sender_is_capped_while_others_still_open_incidents() -> None:
    clock = Clock()
    storm = StormControl(per_minute=100, per_sender_per_minute=2, clock=clock)
    assert isinstance(storm.reserve("noisy"), Reservation)
    assert isinstance(storm.reserve("noisy"), Reservation)
    refused = storm.reserve("noisy")
    assert isinstance(refused, str) and "'noisy'" in refused and "SENDER" in refused
    assert isinstance(storm.reserve("quiet"), Reservation)


def test_a_released_slot_is_free_again_and_counted_once() -> None:
    clock = Clock()
    storm = StormControl(per_minute=2, per_sender_per_minute=2, clock=clock)
    first = storm.reserve("a")
    assert isinstance(first, Reservation)
    assert isinstance(storm.reserve("a"), Reservation)
    assert isinstance(storm.reserve("a"), str)
    storm.release(first)
    storm.release(first)  # a second release must not free a slot nobody gave back
    assert isinstance(storm.reserve("a"), Reservation)
    assert isinstance(storm.reserve("a"), str)


def test_releasing_an_expired_slot_frees_nothing_twice() -> None:
    clock = Clock()
    storm = StormControl(per_minute=1, per_sender_per_minute=1, clock=clock)
    old = storm.reserve("a")
    assert isinstance(old, Reservation)
    clock.now += 61
    fresh = storm.reserve("a")  # expires `old` on the way
    assert isinstance(fresh, Reservation)
    storm.release(old)  # late answer for the expired slot: `fresh` must still count
    assert isinstance(storm.reserve("a"), str)
