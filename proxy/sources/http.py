"""HTTP(S) sources: one shared httpx.AsyncClient, streamed, with limits.

Redirects are followed here, hop by hop, rather than by httpx, so the
address policy is applied to every host the chain visits.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from proxy.errors import (
    InvalidURL,
    SourceNotFound,
    SourceTimeout,
    SourceTooLarge,
    SourceUnavailable,
)
from proxy.sources import SourceImage
from proxy.sources.policy import AddressPolicy, check_address

Resolver = Callable[[str, int], Awaitable[list[str]]]

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


async def resolve_host(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True, slots=True)
class HttpLimits:
    max_bytes: int  # 0: no limit
    timeout: float  # seconds for the whole download, redirects included
    max_redirects: int


class HttpSource:
    def __init__(
        self,
        client: httpx.AsyncClient,
        limits: HttpLimits,
        policy: AddressPolicy,
        resolver: Resolver = resolve_host,
    ) -> None:
        self._client = client
        self._limits = limits
        self._policy = policy
        self._resolve = resolver

    async def fetch(self, url: str) -> SourceImage:
        try:
            async with asyncio.timeout(self._limits.timeout or None):
                return await self._follow(url)
        except (TimeoutError, httpx.TimeoutException):
            raise SourceTimeout() from None

    async def _follow(self, url: str) -> SourceImage:
        current = _parse_url(url)
        for _hop in range(self._limits.max_redirects + 1):
            await self._check_host(current)
            try:
                async with self._client.stream("GET", current) as response:
                    if response.status_code in REDIRECT_STATUSES:
                        location = response.headers.get("location")
                        if not location:
                            raise SourceUnavailable("source redirect has no Location")
                        current = _parse_url(str(current.join(location)))
                        continue
                    return await self._read(url, response)
            except httpx.TimeoutException:
                raise
            except httpx.HTTPError:
                raise SourceUnavailable("source image could not be downloaded") from None
        raise SourceUnavailable("source image redirects too many times")

    async def _check_host(self, url: httpx.URL) -> None:
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            addresses = await self._resolve(url.host, port)
        except OSError:
            raise SourceNotFound("source host not found") from None
        if not addresses:
            raise SourceNotFound("source host not found")
        # Every address the name resolves to must pass: httpx may pick any of them.
        # (Pinning the connection to the checked address comes with the full policy.)
        for address in addresses:
            check_address(address, self._policy)

    async def _read(self, url: str, response: httpx.Response) -> SourceImage:
        if response.status_code in (404, 410):
            raise SourceNotFound()
        if response.status_code != 200:
            raise SourceUnavailable(f"source answered HTTP {response.status_code}")
        limit = self._limits.max_bytes
        declared = response.headers.get("content-length", "")
        if limit and declared.isdigit() and int(declared) > limit:
            raise SourceTooLarge()
        chunks: list[bytes] = []
        received = 0
        async for chunk in response.aiter_bytes():
            received += len(chunk)
            if limit and received > limit:
                raise SourceTooLarge()  # stop reading at once: the rest never arrives
            chunks.append(chunk)
        return SourceImage(url, b"".join(chunks), response.headers.get("content-type"))


def _parse_url(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError):
        raise InvalidURL("invalid source URL") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise InvalidURL("invalid source URL: expected http(s)://host/...")
    if parsed.userinfo:
        raise InvalidURL("invalid source URL: credentials are not allowed")
    return parsed
