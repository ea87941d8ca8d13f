"""What an analysis of one picture found, kept for the picture's other sizes."""

from __future__ import annotations

import threading
from collections.abc import Hashable
from typing import Generic, TypeVar

from cachetools import LRUCache

V = TypeVar("V")


class Remembered(Generic[V]):
    """A bounded, thread-safe memory by key (LRU); `stored` counts the puts,
    i.e. the analyses that ran."""

    def __init__(self, entries: int = 4096) -> None:
        self._found: LRUCache[Hashable, V] = LRUCache(maxsize=entries)
        self._lock = threading.Lock()
        self.stored = 0

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            return self._found.get(key)

    def put(self, key: Hashable, value: V) -> None:
        with self._lock:
            self._found[key] = value
            self.stored += 1
