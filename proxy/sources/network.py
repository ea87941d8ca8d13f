"""The one place outgoing connections are made: resolve, check, connect.

httpcore asks its network backend for a TCP connection to a host name. This
backend resolves the name itself, keeps only the addresses the policy
allows, and connects to one of those: the address checked is the address
used, so a name that resolves differently a moment later (DNS rebinding)
cannot slip through. TLS still verifies and sends SNI for the original host
name, and the Host header is untouched: httpcore takes both from the URL.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import httpcore
import httpx

from proxy.errors import SourceForbidden, SourceNotFound
from proxy.sources.policy import AddressPolicy, allowed_addresses, parse_address

Resolver = Callable[[str, int], Awaitable[list[str]]]


async def resolve_host(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class PolicyNetworkBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, policy: AddressPolicy, resolver: Resolver = resolve_host) -> None:
        self._policy = policy
        self._resolve = resolver
        self._inner = httpcore.AnyIOBackend()

    async def addresses_for(self, host: str, port: int) -> list[str]:
        literal = parse_address(host)
        if literal is not None:
            found = [str(literal)]
        else:
            try:
                found = await self._resolve(host, port)
            except (OSError, UnicodeError):
                # UnicodeError: no DNS name at all (a label over 63 characters,
                # an empty one), refused by the IDNA codec before any lookup.
                raise SourceNotFound("source host not found") from None
            if not found:
                raise SourceNotFound("source host not found")
        return allowed_addresses(found, self._policy)

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        error: Exception | None = None
        for address in await self.addresses_for(host, port):
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc  # try the next allowed address, as a resolver-driven client would
        assert error is not None
        raise error

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise SourceForbidden("unix sockets are not sources")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class PolicyTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with its connection pool on the policy backend."""

    def __init__(self, backend: PolicyNetworkBackend, max_connections: int = 100) -> None:
        super().__init__()
        # httpx has no parameter for a network backend, so its pool is replaced
        # by an equivalent one that has ours (httpx 0.28 keeps it in `_pool`).
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=max_connections,
            max_keepalive_connections=20,
            keepalive_expiry=30.0,
            http1=True,
            http2=False,
            network_backend=backend,
        )
