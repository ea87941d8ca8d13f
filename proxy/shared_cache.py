"""The shared result tier: Redis, so pods behind a load balancer share work.

Redis is an optimisation, never a dependency: every call has a short
timeout, and after a failure the tier rests for a while, so a slow or
absent Redis costs one timeout per rest period, not one per request.
Results are stored with a TTL and only when small enough.
"""

from __future__ import annotations

import asyncio
import hashlib
import json

import redis.asyncio as redis

from proxy.cache import CachedResult
from proxy.resting import Resting

_FORMAT = b"pixelpipe-result-v3\n"


def result_digest(canonical: str) -> str:
    """The name a result has in every shared tier: its cache key, hashed."""
    return hashlib.sha256(canonical.encode()).hexdigest()


def encode_result(result: CachedResult) -> bytes:
    meta = {
        "content_type": result.content_type,
        "etag": result.etag,
        "disposition": result.disposition,
        "extra": [list(pair) for pair in result.extra_headers],
        "caching": [list(pair) for pair in result.source_caching],
    }
    return _FORMAT + json.dumps(meta).encode() + b"\n" + result.body


def decode_result(blob: bytes) -> CachedResult | None:
    if not blob.startswith(_FORMAT):
        return None
    meta_line, sep, body = blob[len(_FORMAT) :].partition(b"\n")
    if not sep:
        return None
    try:
        meta = json.loads(meta_line)
        extra = tuple((str(name), str(value)) for name, value in meta.get("extra", []))
        caching = tuple((str(name), str(value)) for name, value in meta.get("caching", []))
        return CachedResult(
            body, meta["content_type"], meta["etag"], meta["disposition"], extra, caching
        )
    except (ValueError, KeyError, TypeError):
        return None


class SharedCache:
    def __init__(
        self,
        url: str,
        ttl: int,
        max_item_bytes: int,
        timeout: float,
        rest_after_failure: float = 5.0,
    ) -> None:
        self._client = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, retry_on_timeout=False
        )
        self._ttl = ttl
        self._max_item_bytes = max_item_bytes
        self._timeout = timeout
        self._health = Resting("redis", rest_after_failure)
        self._writes: set[asyncio.Task[None]] = set()
        self.hits = 0
        self.misses = 0

    @property
    def errors(self) -> int:
        return self._health.errors

    @staticmethod
    def key(canonical: str) -> str:
        return "pixelpipe:result:" + result_digest(canonical)

    async def get(self, canonical: str) -> CachedResult | None:
        if self._health.resting:
            return None
        try:
            async with asyncio.timeout(self._timeout):
                blob = await self._client.get(self.key(canonical))
        except (redis.RedisError, OSError, TimeoutError) as error:
            self._health.failed("read", error)
            return None
        result = decode_result(blob) if blob else None
        if result is None:
            self.misses += 1
        else:
            self.hits += 1
        return result

    def put(self, canonical: str, result: CachedResult) -> None:
        """Store in the background: the response never waits for Redis."""
        if self._health.resting or len(result.body) > self._max_item_bytes:
            return
        task = asyncio.ensure_future(self._write(canonical, result))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _write(self, canonical: str, result: CachedResult) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                await self._client.set(self.key(canonical), encode_result(result), ex=self._ttl)
        except (redis.RedisError, OSError, TimeoutError) as error:
            self._health.failed("write", error)

    async def flush(self) -> None:
        """Wait for background writes (tests and shutdown)."""
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)

    async def close(self) -> None:
        await self.flush()
        await self._client.aclose()
