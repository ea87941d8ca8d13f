"""Admission control: a fixed number of image jobs in flight, the rest refused fast.

A job holds its source bytes from download to response, so the number of
jobs bounds memory; past it a client gets 429 at once rather than joining an
unbounded backlog that would time out anyway.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from proxy.errors import ServiceOverloaded


class Admission:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0
        self.refused = 0

    @contextmanager
    def slot(self) -> Iterator[None]:
        # Single event loop per process: plain counters need no lock.
        if self.in_flight >= self.limit:
            self.refused += 1
            raise ServiceOverloaded()
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1
