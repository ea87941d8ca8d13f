"""uvicorn's HTTP protocols as pixelpipe runs them: Nagle off, and a bound on request heads.

TCP_NODELAY: asyncio turns Nagle's algorithm off on the sockets it accepts
itself, but not on those of a socket handed to worker processes. There a
response written as head and body waits for the client's delayed ACK: a
fixed ~40 ms on every answer (BENCHMARKS.md). Setting it here makes both
modes the same.

httptools is the default protocol: its C parser does a cache hit's HTTP work
in about half the time of h11 (BENCHMARKS.md, "Hits"). h11 bounds the bytes
of an incomplete request head itself; httptools keeps accumulating a header
it has not seen the end of, so `BoundedHttpToolsProtocol` counts the bytes
that arrive while a head is incomplete and answers 431 and closes the
connection past `max_header_bytes`. What it holds is then bounded by that
limit plus one read (asyncio reads at most 256 KiB at a time).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

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
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self.in_head = True
        super().on_message_complete()
