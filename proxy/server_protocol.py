"""uvicorn's h11 protocol with Nagle's algorithm off on every connection.

asyncio turns Nagle off on the sockets it accepts itself, but not on those
of a socket uvicorn hands to worker processes (`--workers` > 1). There a
response written as head and body waits for the client's delayed ACK: a
fixed ~40 ms on every answer, measured in bench/ (W4 p50 44 ms -> see
BENCHMARKS.md). Setting TCP_NODELAY here makes both modes the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

from uvicorn.protocols.http.h11_impl import H11Protocol


class NoDelayH11Protocol(H11Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)  # type: ignore[arg-type]
