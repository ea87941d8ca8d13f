"""httpcore's network streams on asyncio's own transports, not AnyIO's.

httpcore reaches asyncio through AnyIO, whose socket stream wakes a task per
read and hands over at most 64 KiB each time. Every miss downloads its source,
so this is paid on every cold request: a protocol that keeps what the event
loop received and gives it out chunk by chunk spends less CPU per download
(BENCHMARKS.md, "The fetch on asyncio's transports"). Only the four calls
httpcore makes are here: connect, read, write, TLS; the address policy stays in
`proxy.sources.network`, which connects through this backend.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Iterable
from typing import Any

import httpcore

# Reading pauses while this much has arrived unread and resumes under the low
# mark: a stalled consumer cannot make the loop buffer a whole source twice.
HIGH_WATER = 1 << 20
LOW_WATER = 1 << 18


class _Receiver(asyncio.Protocol):
    """What the event loop received on one connection, until it is read."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.chunks: deque[bytes] = deque()
        self.offset = 0  # bytes of chunks[0] already handed out
        self.buffered = 0
        self.closed = False
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.buffered += len(data)
        if self.buffered > HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> None:
        self.closed = True
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.error = exc
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def take(self, max_bytes: int) -> bytes:
        """Up to max_bytes of what arrived, in order (there is some)."""
        head = self.chunks[0]
        if self.offset == 0 and len(head) <= max_bytes:
            self.chunks.popleft()
            piece = head
        else:
            piece = head[self.offset : self.offset + max_bytes]
            self.offset += len(piece)
            if self.offset == len(head):
                self.chunks.popleft()
                self.offset = 0
        self.buffered -= len(piece)
        if self.paused and self.buffered < LOW_WATER and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return piece


class AsyncioStream(httpcore.AsyncNetworkStream):
    def __init__(self, transport: asyncio.Transport, receiver: _Receiver) -> None:
        self._transport = transport
        self._receiver = receiver

    @property
    def waiting(self) -> int:
        """Bytes received and not read yet."""
        return self._receiver.buffered

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        receiver = self._receiver
        while not receiver.chunks:
            if receiver.closed:
                if receiver.error is not None:
                    raise httpcore.ReadError(str(receiver.error) or "connection lost")
                return b""  # the peer closed: httpcore decides whether that was early
            receiver.waiter = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(timeout):
                    await receiver.waiter
            except TimeoutError:
                raise httpcore.ReadTimeout("read timed out") from None
            finally:
                receiver.waiter = None
        return receiver.take(max_bytes)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        if self._transport.is_closing():
            raise httpcore.WriteError("connection closed")
        # A request's head: the transport takes it whole and sends it when it can.
        self._transport.write(buffer)

    async def aclose(self) -> None:
        self._transport.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                secured = await loop.start_tls(
                    self._transport, self._receiver, ssl_context, server_hostname=server_hostname
                )
        except TimeoutError:
            self._transport.close()
            raise httpcore.ConnectTimeout("TLS handshake timed out") from None
        except (OSError, ssl.SSLError) as error:
            self._transport.close()
            raise httpcore.ConnectError(str(error)) from None
        assert secured is not None
        self._receiver.transport = secured  # type: ignore[assignment]
        return AsyncioStream(secured, self._receiver)  # type: ignore[arg-type]

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            # httpcore asks before reusing an idle connection: anything there
            # (data or the peer's close) means it cannot carry a new request.
            receiver = self._receiver
            return bool(receiver.chunks) or receiver.closed or self._transport.is_closing()
        names = {
            "ssl_object": "ssl_object",
            "client_addr": "sockname",
            "server_addr": "peername",
            "socket": "socket",
        }
        return self._transport.get_extra_info(names[info]) if info in names else None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        local = (local_address, 0) if local_address else None
        try:
            async with asyncio.timeout(timeout):
                transport, receiver = await loop.create_connection(
                    _Receiver, host, port, local_addr=local
                )
        except TimeoutError:
            raise httpcore.ConnectTimeout("connection timed out") from None
        except OSError as error:
            raise httpcore.ConnectError(str(error)) from None
        sock = transport.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        return AsyncioStream(transport, receiver)  # type: ignore[arg-type]

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not supported")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
