"""One call for many equal requests: the first goes at once, later ones within a window share a call.

Per key, the first item is sent on the next turn of the event loop. Items that arrive while that call
runs, or less than `window` seconds after it began, wait for the window to end and are then sent
together, as one call. Every submitter waits for the call that carried its item and gets its result
(or its exception), so nothing is acknowledged before it is sent, and nothing is sent twice.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _Batch(Generic[T, R]):
    future: asyncio.Future[R]
    items: list[T] = field(default_factory=list)


@dataclass
class _Slot(Generic[T, R]):
    sent_at: float = float("-inf")
    open: _Batch[T, R] | None = None
    runner: asyncio.Task[None] | None = None


class Batcher(Generic[K, T, R]):
    def __init__(self, window: float, send: Callable[[K, list[T]], Awaitable[R]]) -> None:
        self.window = window
        self._send = send
        self._slots: dict[K, _Slot[T, R]] = {}

    async def submit(self, key: K, item: T) -> R:
        loop = asyncio.get_running_loop()
        slot = self._slots.setdefault(key, _Slot())
        if slot.open is None:
            slot.open = _Batch(loop.create_future())
        batch = slot.open
        batch.items.append(item)
        if slot.runner is None or slot.runner.done():
            slot.runner = asyncio.create_task(self._drain(key, slot))
        # Shielded: a caller that gives up (its client hung up) must not cancel the others' call.
        return await asyncio.shield(batch.future)

    async def _drain(self, key: K, slot: _Slot[T, R]) -> None:
        loop = asyncio.get_running_loop()
        while slot.open is not None:
            wait = slot.sent_at + self.window - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            batch, slot.open = slot.open, None
            slot.sent_at = loop.time()
            try:
                batch.future.set_result(await self._send(key, batch.items))
            except asyncio.CancelledError:
                batch.future.cancel()
                raise
            except Exception as err:  # every waiter gets it and answers 5xx: the senders retry
                batch.future.set_exception(err)
                # Marked as seen: if every waiter has gone, asyncio must not log it as lost.
                with contextlib.suppress(Exception):
                    batch.future.exception()
        # Idle: forget the key once a new item would no longer be inside its window.
        loop.call_later(self.window, self._forget, key, slot)

    def _forget(self, key: K, slot: _Slot[T, R]) -> None:
        if self._slots.get(key) is not slot or slot.open is not None:
            return  # replaced, or busy again: its runner forgets it later
        if slot.runner is not None and not slot.runner.done():
            asyncio.get_running_loop().call_later(self.window, self._forget, key, slot)
            return
        del self._slots[key]

    def __len__(self) -> int:
        return len(self._slots)
