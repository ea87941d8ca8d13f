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
import logging
import os
import re
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from proxy.logs import request_id_var
from proxy.monitoring import REQUEST_SECONDS, REQUESTS, RESPONSE_BYTES

access_log = logging.getLogger("pixelpipe.access")

# An incoming id is echoed only if it is short and plain: it lands in logs and headers.
_ACCEPTABLE_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

# Output formats worth a metrics label; anything else (say, a raw source's
# content type, which the origin chooses) is "other", so series stay bounded.
_KNOWN_FORMATS = frozenset({"jpeg", "png", "webp", "avif", "gif", "svg", "tiff", "heif", "bmp"})


@dataclass(slots=True)
class RequestRecord:
    id: str
    kind: str = ""  # "image" or "info"; empty: not an image request, not counted
    cache: str = ""  # memory, redis, coalesced, miss
    format: str = ""
    fetch_seconds: float | None = None
    process_seconds: float | None = None
    error: str = ""  # the error kind when the answer is an error


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
    return os.urandom(16).hex()


class Observability:
    def __init__(self, app: ASGIApp, access_log_enabled: bool = True) -> None:
        self.app = app
        self.access_log_enabled = access_log_enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        record = RequestRecord(request_id(scope))
        id_header = (b"x-request-id", record.id.encode())
        started = time.perf_counter()
        status = 500
        sent = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        record_token = current_request.set(record)
        id_token = request_id_var.set(record.id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if record.kind:
                self._finish(scope, record, status, sent, time.perf_counter() - started)
            request_id_var.reset(id_token)
            current_request.reset(record_token)

    def _finish(
        self, scope: Scope, record: RequestRecord, status: int, sent: int, elapsed: float
    ) -> None:
        _request_counter(status, record.format or "none").inc()
        REQUEST_SECONDS.observe(elapsed)
        RESPONSE_BYTES.inc(sent)
        if not (self.access_log_enabled and access_log.isEnabledFor(logging.INFO)):
            return  # no fields built for a line nobody writes
        access_log.info(
            "request",
            extra={
                "fields": {
                    "method": scope.get("method"),
                    "path": scope.get("path", "")[:512],
                    "status": status,
                    "bytes": sent,
                    "duration_ms": round(elapsed * 1000, 2),
                    "cache": record.cache or None,
                    "format": record.format or None,
                    "fetch_ms": _ms(record.fetch_seconds),
                    "process_ms": _ms(record.process_seconds),
                    "error": record.error or None,
                }
            },
        )


@functools.lru_cache(maxsize=256)
def _request_counter(status: int, output_format: str) -> Any:
    # labels() costs a lock and a dict build per call; the few children are kept.
    return REQUESTS.labels(status=str(status), format=output_format)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)
