"""Per-request bookkeeping: request id, access log line, request metrics.

A plain ASGI middleware (no per-request Starlette objects: it sits on the
cache-hit path). It gives each request a `RequestRecord` that the handlers
fill in as they learn things (which cache tier answered, how long the fetch
and the pipeline took, the output format), and when the answer has been sent
it writes one access line and moves the request counters. Probes and scrapes
(`/health`, `/ready`, `/metrics`) leave no record: handlers mark image and
/info requests, and only those count.
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
import re
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from proxy import tracing
from proxy.logs import AccessLog, request_id_var
from proxy.monitoring import PENDING, REQUEST_SECONDS, REQUESTS, RESPONSE_BYTES

# On every answer, errors and cache hits included: a browser must never sniff
# a type other than the one sent (an HTML-looking body served as text/plain).
NOSNIFF = (b"x-content-type-options", b"nosniff")

if TYPE_CHECKING:
    from proxy.responses import PreparedResponse

# An incoming id is echoed only if it is short and plain: it lands in logs and headers.
_ACCEPTABLE_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

# Output formats worth a metrics label; anything else (say, a raw source's
# content type, which the origin chooses) is "other", so series stay bounded.
_KNOWN_FORMATS = frozenset({"jpeg", "png", "webp", "avif", "gif", "svg", "tiff", "heif", "bmp"})


@dataclass(slots=True)
class RequestRecord:
    id: str
    kind: str = ""  # "image" or "info"; empty: not an image request, not counted
    cache: str = ""  # memory, redis, store, coalesced, miss
    format: str = ""
    fetch_seconds: float | None = None
    process_seconds: float | None = None
    error: str = ""  # the error kind when the answer is an error
    trace_id: str | None = None  # with tracing on and the trace sampled


# Set in a scope by the HTTP protocol once it has asked `answer_hit` and got
# nothing: the app's own attempt would only repeat the lookup.
HIT_CHECKED = "pixelpipe.hit_checked"

_ID_PREFIX = os.urandom(8).hex()
_id_counter = itertools.count(int.from_bytes(os.urandom(4), "big"))

current_request: ContextVar[RequestRecord | None] = ContextVar("current_request", default=None)


def current() -> RequestRecord:
    """The record of the request being handled (a throwaway one outside a request)."""
    return current_request.get() or RequestRecord("")


@functools.lru_cache(maxsize=64)
def format_label(content_type: str) -> str:
    """ "image/svg+xml" -> "svg"; unknown types -> "other"."""
    subtype = content_type.partition("/")[2].partition("+")[0].partition(";")[0].strip()
    return subtype if subtype in _KNOWN_FORMATS else "other"


def request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            if _ACCEPTABLE_ID.fullmatch(text):
                return text
            break
    # Unique, not secret: a random prefix per process and a counter.
    return f"{_ID_PREFIX}{next(_id_counter) & 0xFFFFFFFFFFFFFFFF:016x}"


class Observability:
    def __init__(
        self,
        app: ASGIApp,
        access_log: AccessLog | None = None,
        access_log_enabled: bool = True,
        cache_hits: Callable[[Scope, RequestRecord], PreparedResponse | None] | None = None,
    ) -> None:
        self.app = app
        self.access_log_enabled = access_log_enabled
        self.access_log = access_log or AccessLog("text")
        self.cache_hits = cache_hits

    def answer_hit(
        self, scope: Scope, record: RequestRecord | None = None
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
        """A cache hit's status, headers and body, already logged and counted; else None.

        The HTTP protocol (proxy.server_protocol) calls it where the request
        head is parsed and writes the answer itself; `__call__` calls it for
        requests the protocol left to the app. A failure here is logged and
        the request goes the full way: a hit-path bug must not fail a request.
        """
        if self.cache_hits is None or scope.get(HIT_CHECKED) or tracing.enabled():
            # Traced, every request takes the app's path: one trace each.
            return None
        record = record or RequestRecord(request_id(scope))
        started = time.perf_counter()
        try:
            hit = self.cache_hits(scope, record)
        except Exception:
            logging.getLogger("pixelpipe").exception("cache-hit answer failed")
            return None
        if hit is None:
            return None
        headers = [*hit.raw_headers, (b"x-request-id", record.id.encode()), NOSNIFF]
        self._finish(scope, record, hit.status_code, len(hit.body), time.perf_counter() - started)
        return hit.status_code, headers, hit.body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if tracing.enabled():
            with tracing.request_span("image request", _headers(scope)) as span:
                span.set_attribute("http.request.method", scope.get("method", ""))
                span.set_attribute("url.path", scope.get("path", "")[:512])
                await self._handle(scope, receive, send)
            return
        await self._handle(scope, receive, send)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        record = RequestRecord(request_id(scope))
        hit = self.answer_hit(scope, record)
        if hit is not None:
            # A cache hit (proxy.hits): sent here, without the app's layers.
            status, headers, body = hit
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        id_header = (b"x-request-id", record.id.encode())
        started = time.perf_counter()
        status = 500
        sent = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header, NOSNIFF]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        record_token = current_request.set(record)
        id_token = request_id_var.set(record.id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            record.trace_id = tracing.trace_id()
            if record.kind:
                self._finish(scope, record, status, sent, time.perf_counter() - started)
            request_id_var.reset(id_token)
            current_request.reset(record_token)

    def _finish(
        self, scope: Scope, record: RequestRecord, status: int, sent: int, elapsed: float
    ) -> None:
        PENDING.request(
            _request_counter(status, record.format or "none"),
            REQUEST_SECONDS,
            elapsed,
            RESPONSE_BYTES,
            sent,
        )
        if not (self.access_log_enabled and self.access_log.enabled):
            return  # no fields built for a line nobody writes
        self.access_log.write(
            record.id,
            scope.get("method", ""),
            scope.get("path", "")[:512],
            status,
            sent,
            round(elapsed * 1000, 2),
            record.cache or None,
            record.format or None,
            _ms(record.fetch_seconds),
            _ms(record.process_seconds),
            record.error or None,
            record.trace_id,
        )


@functools.lru_cache(maxsize=256)
def _request_counter(status: int, output_format: str) -> Any:
    # labels() costs a lock and a dict build per call; the few children are kept.
    return REQUESTS.labels(status=str(status), format=output_format)


def _headers(scope: Scope) -> dict[str, str]:
    return {
        name.decode("latin-1"): value.decode("latin-1") for name, value in scope.get("headers", ())
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)
