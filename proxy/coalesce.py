"""Request coalescing: concurrent requests for one key share one piece of work.

Fifty clients asking for the same uncached thumbnail cost one download and
one pipeline run; the other forty-nine wait for that result. The work runs
as its own task, so a leader whose client hangs up does not cancel it for
the followers; when every waiter has gone, the work is cancelled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    def __init__(self) -> None:
        self._running: dict[K, asyncio.Task[V]] = {}
        self._waiting: dict[K, int] = {}
        self.started = 0  # pieces of work actually run
        self.joined = 0  # requests that waited for someone else's
        self.abandoned = 0  # pieces of work cancelled because every waiter left

    async def run(self, key: K, work: Callable[[], Awaitable[V]]) -> V:
        task = self._running.get(key)
        if task is None:
            self.started += 1
            task = asyncio.ensure_future(work())
            self._running[key] = task
            task.add_done_callback(lambda _: self._forget(key))
        else:
            self.joined += 1
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            # shield: one waiter going away must not cancel the shared work...
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            # ...but when the last one goes (its client hung up, or its deadline
            # passed), nobody wants the result: the work stops and frees its memory.
            if self._waiting.get(key) == 1 and not task.done():
                self.abandoned += 1
                task.cancel()
            raise
        finally:
            remaining = self._waiting.get(key, 1) - 1
            if remaining:
                self._waiting[key] = remaining
            else:
                self._waiting.pop(key, None)

    def _forget(self, key: K) -> None:
        self._running.pop(key, None)

    def __len__(self) -> int:
        return len(self._running)
