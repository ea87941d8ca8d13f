"""Admission control: a bounded number of jobs in flight, and a memory budget for their work.

Two gates, both per worker process:

- `slot()`: a job holds a slot from the moment it starts fetching until its
  answer is made. Past `max_jobs` a request gets 503 with Retry-After at once,
  rather than joining a backlog that would time out anyway.
- `reserve(bytes)`: before a job decodes anything it reserves its estimated
  peak (`proxy.pipeline.footprint`) out of `budget_bytes`. A job that does not
  fit waits in arrival order (a large job at the head is not overtaken by
  small ones, so it cannot starve); at most `max_running` jobs hold
  reservations at once, matching the processing threads. A job estimated
  larger than the whole budget runs alone.

Everything runs on the worker's one event loop, so plain counters need no lock.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass

from proxy.errors import ServiceOverloaded


@dataclass(frozen=True, slots=True)
class AdmissionState:
    """What the gates hold right now (for tests, /metrics and the logs)."""

    in_flight: int
    running: int
    reserved_bytes: int
    waiting: int
    peak_reserved_bytes: int
    peak_running: int
    peak_waiting: int
    refused: int


class Admission:
    def __init__(self, max_jobs: int, budget_bytes: int, max_running: int) -> None:
        self.max_jobs = max_jobs
        self.budget_bytes = budget_bytes
        self.max_running = max_running
        self.in_flight = 0
        self.refused = 0
        self.running = 0
        self.reserved_bytes = 0
        self.peak_reserved_bytes = 0
        self.peak_running = 0
        self.peak_waiting = 0
        self._waiters: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()

    @property
    def state(self) -> AdmissionState:
        return AdmissionState(
            self.in_flight,
            self.running,
            self.reserved_bytes,
            len(self._waiters),
            self.peak_reserved_bytes,
            self.peak_running,
            self.peak_waiting,
            self.refused,
        )

    @property
    def busy(self) -> bool:
        """A job runs or waits for its share now."""
        return self.running > 0 or bool(self._waiters)

    @contextmanager
    def slot(self) -> Iterator[None]:
        if self.in_flight >= self.max_jobs:
            self.refused += 1
            raise ServiceOverloaded()
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1

    @asynccontextmanager
    async def reserve(self, estimate: int) -> AsyncIterator[int]:
        """Hold `estimate` bytes of the budget (at most all of it) while the body runs."""
        cost = min(max(estimate, 0), self.budget_bytes)
        if self._waiters or not self._fits(cost):
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            entry = (cost, waiter)
            self._waiters.append(entry)
            self.peak_waiting = max(self.peak_waiting, len(self._waiters))
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    # Admitted, then cancelled before running: give the share back.
                    self._release(cost)
                else:
                    with contextlib.suppress(ValueError):  # _wake may have dropped it
                        self._waiters.remove(entry)
                    self._wake()
                raise
        else:
            self._take(cost)
        try:
            yield cost
        finally:
            self._release(cost)

    def _fits(self, cost: int) -> bool:
        if self.running >= self.max_running:
            return False
        return self.running == 0 or self.reserved_bytes + cost <= self.budget_bytes

    def _take(self, cost: int) -> None:
        self.running += 1
        self.reserved_bytes += cost
        self.peak_reserved_bytes = max(self.peak_reserved_bytes, self.reserved_bytes)
        self.peak_running = max(self.peak_running, self.running)

    def _release(self, cost: int) -> None:
        self.running -= 1
        self.reserved_bytes -= cost
        self._wake()

    def _wake(self) -> None:
        # First come, first served: only the head of the queue may go next.
        while self._waiters and self._fits(self._waiters[0][0]):
            cost, waiter = self._waiters.popleft()
            if waiter.done():
                continue
            self._take(cost)
            waiter.set_result(None)
