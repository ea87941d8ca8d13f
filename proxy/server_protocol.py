"""uvicorn's HTTP protocols as pixelpipe runs them: Nagle off, and a bound on request heads.

TCP_NODELAY: asyncio turns Nagle's algorithm off on the sockets it accepts
itself, but not on those of a socket handed to worker processes. There a
response written as head and body waits for the client's delayed ACK: a
fixed ~40 ms on every answer (BENCHMARKS.md). Setting it here makes both
modes the same.

httptools is the default protocol: its C parser does a cache hit's HTTP work
in about half the time of h11 (BENCHMARKS.md, "Hits"). A request for a result
in the worker's cache is answered right where its head is parsed: the app
(`answer_hit`, in proxy.observability) checks, logs and counts it, and the
response is written at once, without the ASGI task, request cycle and per-
header checks uvicorn spends on every other request. h11 bounds the bytes
of an incomplete request head itself; httptools keeps accumulating a header
it has not seen the end of, so `BoundedHttpToolsProtocol` counts the bytes
that arrive while a head is incomplete and answers 431 and closes the
connection past `max_header_bytes`. What it holds is then bounded by that
limit plus one read (asyncio reads at most 256 KiB at a time).

Keep-alive connections are recycled after `KEEPALIVE_REQUESTS` requests
(nginx's keepalive_requests, Apache's MaxKeepAliveRequests) or, for a request
that starts after `KEEPALIVE_SECONDS` (nginx's keepalive_time): that answer
says `connection: close`. SO_REUSEPORT spreads *new* connections over the workers;
a kept-alive connection stays on its worker for good. When a worker dies, its
clients reconnect and part of them land on the survivors, so without
recycling, load drifts onto the oldest worker with every restart and stays
there (the 10-minute soak, BENCHMARKS.md: after 9 kills one worker held
nearly every client connection while its replacements idled).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import urllib.parse
from collections.abc import Callable

import httptools
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from proxy.observability import HIT_CHECKED

HitAnswer = tuple[int, list[tuple[bytes, bytes]], bytes]
# Requests per keep-alive connection before it is closed (nginx's default before 1.19.10),
# and its age after which the next answer closes it: at 10 requests/s over 32
# connections a count alone took 5 minutes to move clients to a new worker.
KEEPALIVE_REQUESTS = 100
KEEPALIVE_SECONDS = 60.0

_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: 27\r\n"
    b"cache-control: no-store\r\n"
    b"connection: close\r\n"
    b"\r\n"
    b"request headers too large\r\n"
)


def _no_delay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class NoDelayH11Protocol(H11Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # type: ignore[override]
        _no_delay(transport)
        super().connection_made(transport)  # type: ignore[arg-type]


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    # The same setting bounds both protocols (see proxy.cli.server_options).
    head_limit: int = 16384

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.head_limit = self.config.h11_max_incomplete_event_size or self.head_limit
        self.head_bytes = 0
        self.in_head = True
        # The app's cache-hit answer (proxy.observability), when it has one.
        self.answer_hit: Callable[[dict[str, object]], HitAnswer | None] | None = getattr(
            self.app, "answer_hit", None
        )
        self.answered = False  # this message was answered from the cache
        self.requests_left = KEEPALIVE_REQUESTS  # on this connection, before it is recycled
        self.recycle_at = time.monotonic() + KEEPALIVE_SECONDS

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # type: ignore[override]
        _no_delay(transport)
        super().connection_made(transport)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        if self.in_head:
            self.head_bytes += len(data)
        super().data_received(data)
        if self.in_head and self.head_bytes > self.head_limit and not self.transport.is_closing():
            self.transport.write(_TOO_LARGE)
            self.transport.close()

    def on_headers_complete(self) -> None:
        self.in_head = False
        self.head_bytes = 0
        self.requests_left -= 1
        last = self.requests_left <= 0 or time.monotonic() >= self.recycle_at
        if not last and self.answer_hit is not None and self._answer_from_cache(self.answer_hit):
            return
        super().on_headers_complete()
        if last and self.cycle is not None:
            self.cycle.keep_alive = False  # uvicorn then answers `connection: close` and closes

    def on_body(self, body: bytes) -> None:
        if not self.answered:
            super().on_body(body)

    def on_message_complete(self) -> None:
        self.in_head = True
        if self.answered:
            self.answered = False
            return
        super().on_message_complete()

    def _answer_from_cache(
        self, answer_hit: Callable[[dict[str, object]], HitAnswer | None]
    ) -> bool:
        """Write a cache hit straight to the connection, with no ASGI request at all.

        Only in the plain case: nothing else in progress on this connection
        (answers stay in order), HTTP/1.1 keep-alive, GET or HEAD, no upgrade,
        and the transport accepting writes. Everything else takes uvicorn's path.
        """
        previous = self.cycle
        if (previous is not None and not previous.response_complete) or self.pipeline:
            return False
        parser = self.parser
        if (
            self.flow.write_paused
            or parser.get_http_version() != "1.1"
            or not parser.should_keep_alive()
            or parser.should_upgrade()
        ):
            return False
        method = parser.get_method()
        if method not in (b"GET", b"HEAD"):
            return False
        url = httptools.parse_url(self.url)
        raw_path = url.path
        path = raw_path.decode("ascii")
        if "%" in path:
            path = urllib.parse.unquote(path)
        scope = {
            "type": "http",
            "method": method.decode("ascii"),
            "path": path,
            "raw_path": raw_path,
            "query_string": url.query or b"",
            "headers": self.headers,
        }
        # answer_hit never raises (a bug there would be a 400 from httptools).
        answer = answer_hit(scope)
        if answer is None:
            self.scope[HIT_CHECKED] = True  # type: ignore[literal-required]
            return False
        status, headers, body = answer
        content = [STATUS_LINE[status]]
        for name, value in (*self.server_state.default_headers, *headers):
            content.extend((name, b": ", value, b"\r\n"))
        content.append(b"\r\n")
        if method != b"HEAD":
            content.append(body)
        self.transport.write(b"".join(content))
        self.answered = True
        # As at the end of any response: count it, re-arm keep-alive, read on.
        self.on_response_complete()
        return True
