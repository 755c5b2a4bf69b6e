"""Storm control: how many new incidents may open per minute, overall and per sender.

A firing alert reserves a slot before its signal-with-start; if Temporal says the incident was
already running (a re-fire), the slot is given back, so re-fires never count. Without a free slot
the alert only signals a running incident, and if there is none it joins the storm incident of its
alert name (workflows/storm.py) instead of opening its own. Counts are per API process.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

MINUTE = 60.0


@dataclass(eq=False)  # reservations are told apart by identity
class Reservation:
    at: float
    sender: str
    counted: bool = True  # until released or a minute old


@dataclass
class StormControl:
    per_minute: int
    per_sender_per_minute: int
    clock: Callable[[], float] = time.monotonic
    # Oldest first, so expiry pops from the left; the counters keep each alert O(1) at thousands a minute.
    _opened: deque[Reservation] = field(default_factory=deque)
    _total: int = 0
    _by_sender: Counter[str] = field(default_factory=Counter)

    def reserve(self, sender: str) -> Reservation | str:
        """A slot for one new incident of `sender`, or which cap this minute has used up."""
        now = self.clock()
        while self._opened and now - self._opened[0].at >= MINUTE:
            self._uncount(self._opened.popleft())
        if self._total >= self.per_minute:
            return f"{self.per_minute} new incidents in the last minute (REMEDIATOR_ALERT_NEW_INCIDENTS_PER_MINUTE)"
        if self._by_sender[sender] >= self.per_sender_per_minute:
            return (
                f"{self.per_sender_per_minute} new incidents from {sender!r} in the last minute "
                "(REMEDIATOR_ALERT_SENDER_NEW_INCIDENTS_PER_MINUTE)"
            )
        reservation = Reservation(now, sender)
        self._opened.append(reservation)
        self._total += 1
        self._by_sender[sender] += 1
        return reservation

    def release(self, reservation: Reservation) -> None:
        """The alert signalled a running incident after all: it opened nothing."""
        self._uncount(reservation)

    def _uncount(self, reservation: Reservation) -> None:
        if reservation.counted:
            reservation.counted = False
            self._total -= 1
            self._by_sender[reservation.sender] -= 1
            if not self._by_sender[reservation.sender]:
                del self._by_sender[reservation.sender]


@dataclass(frozen=True)
class StormWindow:
    storm_id: str
    start: datetime
    end: datetime


def storm_window(alertname: str, environment: str, now: datetime, window: timedelta) -> StormWindow:
    """The storm incident for this alert name and environment at `now`: the same id on every API replica."""
    seconds = window.total_seconds()
    start = datetime.fromtimestamp(now.timestamp() // seconds * seconds, UTC)
    # The readable part keeps to the fingerprint alphabet; the hash keeps distinct names apart.
    readable = re.sub(r"[^A-Za-z0-9._-]", "", alertname)[:40] or "alert"
    digest = hashlib.sha256(f"{alertname}\0{environment}".encode()).hexdigest()[:10]
    storm_id = f"incident-storm-{readable}-{digest}-{start:%Y%m%dT%H%M}"
    return StormWindow(storm_id, start, start + window)
