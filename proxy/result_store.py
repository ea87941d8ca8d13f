"""The third result tier: a bucket every pod shares and restarts keep.

Asked after this process's memory and Redis, before any work. Each result is
one object named by its cache key (hashed, as in Redis) under the configured
prefix; the object is the image itself, its Content-Type the result's, and
its metadata the ETag and the other headers, so a result is answered the
same from here as from the process that made it.

Writes never hold a request: `put` queues the result and returns; a few
writer tasks upload in the background. When the queue is full the result
is dropped (and counted). Reads have a short deadline, and after a failure
the tier rests, as Redis does.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging

import obstore
from obstore.exceptions import BaseError
from obstore.store import ObjectStore

from proxy import tracing
from proxy.cache import CachedResult
from proxy.monitoring import RESULT_STORE
from proxy.resting import Resting
from proxy.shared_cache import result_digest

log = logging.getLogger("pixelpipe")

# Letters only: valid as S3, GCS and Azure metadata names (Azure wants C# identifiers,
# and some S3-compatible servers mangle "_" in header names).
ETAG_KEY = "pixelpipeetag"
HEADERS_KEY = "pixelpipeheaders"
WRITE_TIMEOUT = 15.0
WRITERS = 2


def result_attributes(result: CachedResult) -> dict[str, str]:
    """The object's attributes: header values kept ASCII-safe for every service."""
    headers = {
        "disposition": result.disposition,
        "extra": [list(pair) for pair in result.extra_headers],
        "caching": [list(pair) for pair in result.source_caching],
    }
    packed = base64.urlsafe_b64encode(json.dumps(headers).encode()).decode()
    return {"Content-Type": result.content_type, ETAG_KEY: result.etag, HEADERS_KEY: packed}


def result_from_object(body: bytes, attributes: dict[str, str]) -> CachedResult | None:
    try:
        headers = json.loads(base64.urlsafe_b64decode(attributes[HEADERS_KEY]))
        return CachedResult(
            body,
            attributes["Content-Type"],
            attributes[ETAG_KEY],
            headers["disposition"],
            tuple((str(name), str(value)) for name, value in headers["extra"]),
            tuple((str(name), str(value)) for name, value in headers["caching"]),
        )
    except (KeyError, ValueError, TypeError):
        return None  # not written by us, or by an incompatible version: a miss


class ResultStore:
    def __init__(
        self,
        store: ObjectStore,
        prefix: str,
        timeout: float,
        queue_size: int,
        rest_after_failure: float = 5.0,
    ) -> None:
        self._store = store
        self._prefix = f"{prefix}/" if prefix else ""
        self._timeout = timeout
        self._queue: asyncio.Queue[tuple[str, CachedResult, object]] = asyncio.Queue(queue_size)
        self._health = Resting("result store", rest_after_failure)
        self._writers: list[asyncio.Task[None]] = []
        self.pending = 0  # writes queued or running

    def name(self, canonical: str) -> str:
        return self._prefix + result_digest(canonical)

    def start(self) -> None:
        self._writers = [asyncio.ensure_future(self._write_queued()) for _ in range(WRITERS)]

    async def get(self, canonical: str) -> CachedResult | None:
        if self._health.resting:
            return None
        try:
            async with asyncio.timeout(self._timeout or None):
                found = await obstore.get_async(self._store, self.name(canonical))
                body = bytes(await found.bytes_async())
        except FileNotFoundError:
            RESULT_STORE.labels(outcome="miss").inc()
            return None
        except (BaseError, OSError, TimeoutError) as error:
            RESULT_STORE.labels(outcome="read_error").inc()
            self._health.failed("read", error)
            return None
        result = result_from_object(body, found.attributes)
        RESULT_STORE.labels(outcome="miss" if result is None else "hit").inc()
        return result

    def put(self, canonical: str, result: CachedResult) -> None:
        """Queue a write; never waits. Dropped when the queue is full or the store rests."""
        if self._health.resting:
            RESULT_STORE.labels(outcome="dropped").inc()
            return
        try:
            # The write runs later, in the writer task: it carries the request's trace.
            self._queue.put_nowait((canonical, result, tracing.carry()))
        except asyncio.QueueFull:
            RESULT_STORE.labels(outcome="dropped").inc()
            return
        self.pending += 1

    async def _write_queued(self) -> None:
        while True:
            canonical, result, carried = await self._queue.get()
            try:
                with tracing.inside(carried), tracing.span("result_store.write"):
                    async with asyncio.timeout(WRITE_TIMEOUT):
                        await obstore.put_async(
                            self._store,
                            self.name(canonical),
                            result.body,
                            attributes=result_attributes(result),  # type: ignore[arg-type]
                        )
                RESULT_STORE.labels(outcome="written").inc()
            except (BaseError, OSError, TimeoutError) as error:
                RESULT_STORE.labels(outcome="write_error").inc()
                self._health.failed("write", error)
            finally:
                self.pending -= 1
                self._queue.task_done()

    async def flush(self) -> None:
        """Wait until every queued write has ended (tests, shutdown)."""
        await self._queue.join()

    async def close(self, wait: float = 5.0) -> None:
        try:
            async with asyncio.timeout(wait):
                await self.flush()
        except TimeoutError:
            log.warning("result store: %d writes not finished at shutdown", self._queue.qsize())
        for writer in self._writers:
            writer.cancel()
        await asyncio.gather(*self._writers, return_exceptions=True)
