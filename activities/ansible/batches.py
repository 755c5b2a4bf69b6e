"""Check-mode previews that share one ansible-playbook run.

A preview costs one ansible-playbook process tree (1-2 CPU-seconds). When many incidents ask for
the same preview at once (one service down behind many alerts), each paying for its own run is
what makes a storm slow. `Batches` lets identical previews share a run without ever handing one a
result older than its request: at most one run per key is in flight, and every request that
arrives while it runs joins the NEXT run, which starts as soon as the current one ends. A single
preview on a quiet worker starts at once, as before.

Threads: previews are synchronous activities on the worker's thread pool, so this is plain
`threading`. The first request of a batch (its owner) runs ansible-playbook in its own activity
thread; the others wait, heartbeating, and each builds its own outcome from the shared run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

R = TypeVar("R")


@dataclass
class Batch(Generic[R]):
    """One shared run: its members' idempotency-marker keys (the owner's first), and its result once
    it ended (None if it never ran)."""

    keys: list[str]
    after: Batch[R] | None = None  # the run in flight when this batch formed; it starts after that
    ended: threading.Event = field(default_factory=threading.Event)
    result: R | None = None


class Batches(Generic[R]):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[Hashable, Batch[R]] = {}
        self._forming: dict[Hashable, Batch[R]] = {}

    def join(self, key: Hashable, marker_key: str) -> tuple[Batch[R], bool]:
        """The batch this request belongs to, and whether it owns it (runs it) or only waits."""
        with self._lock:
            running = self._running.get(key)
            if running is None:
                self._running[key] = batch = Batch[R]([marker_key])
                return batch, True
            if (forming := self._forming.get(key)) is not None:
                forming.keys.append(marker_key)
                return forming, False
            self._forming[key] = batch = Batch[R]([marker_key], after=running)
            return batch, True

    def start(self, key: Hashable, batch: Batch[R], wait: Callable[[threading.Event], None]) -> list[str]:
        """For the owner: wait for the run in flight, then close the batch. Returns its marker keys."""
        if batch.after is not None:
            wait(batch.after.ended)
        with self._lock:
            if self._forming.get(key) is batch:
                del self._forming[key]
                self._running[key] = batch
            return list(batch.keys)  # later arrivals form the next batch

    def end(self, key: Hashable, batch: Batch[R], result: R | None) -> None:
        """For the owner, always (a failed or cancelled run ends with None: the members run alone)."""
        with self._lock:
            batch.result = result
            if self._running.get(key) is batch:
                del self._running[key]
            if self._forming.get(key) is batch:  # the owner gave up before its turn
                del self._forming[key]
            batch.ended.set()
