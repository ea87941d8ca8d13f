"""The in-process result cache: bounded in bytes, keyed by canonical options."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from cachetools import TTLCache


@dataclass(frozen=True, slots=True)
class CachedResult:
    body: bytes
    content_type: str
    etag: str
    filename: str  # the default Content-Disposition filename (from the source URL)


class ResultCache:
    """LRU within a byte budget; entries also age out, so origin changes show up."""

    def __init__(self, max_bytes: int, ttl: int) -> None:
        self._enabled = max_bytes > 0
        self._entries: TTLCache[str, CachedResult] = TTLCache(
            maxsize=max(max_bytes, 1), ttl=ttl, getsizeof=lambda r: len(r.body) + 256
        )
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> CachedResult | None:
        result = self._entries.get(key) if self._enabled else None
        if result is None:
            self.misses += 1
        else:
            self.hits += 1
        return result

    def put(self, key: str, result: CachedResult) -> None:
        if not self._enabled:
            return
        # Larger than the whole budget: serve it, don't keep it.
        with contextlib.suppress(ValueError):
            self._entries[key] = result

    @property
    def size_bytes(self) -> int:
        return int(self._entries.currsize)
