"""HTTP(S) sources: one shared httpx.AsyncClient, streamed, with limits.

Redirects are followed here, hop by hop, rather than by httpx, so the URL
rules (scheme, credentials, allowed sources) apply to every hop; the address
policy applies to every connection in the client's network backend.
"""

from __future__ import annotations

import asyncio
import re
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
from proxy.sources.policy import check_allowed_source

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True, slots=True)
class HttpLimits:
    max_bytes: int  # 0: no limit
    timeout: float  # seconds for the whole download, redirects included
    max_redirects: int
    allow_credentials: bool = False
    allowed_sources: tuple[re.Pattern[str], ...] = ()


class HttpSource:
    def __init__(self, client: httpx.AsyncClient, limits: HttpLimits) -> None:
        self._client = client
        self._limits = limits

    async def fetch(self, url: str) -> SourceImage:
        try:
            async with asyncio.timeout(self._limits.timeout or None):
                return await self._follow(url)
        except httpx.ConnectTimeout:
            raise SourceTimeout("source connection timed out") from None
        except (TimeoutError, httpx.TimeoutException):
            raise SourceTimeout() from None

    async def _follow(self, url: str) -> SourceImage:
        current = self._check_url(url)
        for _hop in range(self._limits.max_redirects + 1):
            try:
                async with self._client.stream("GET", current) as response:
                    if response.status_code in REDIRECT_STATUSES:
                        location = response.headers.get("location")
                        if not location:
                            raise SourceUnavailable("source redirect has no Location")
                        current = self._check_url(str(current.join(location)))
                        continue
                    return await self._read(url, response)
            except httpx.TimeoutException:
                raise
            except httpx.HTTPError:
                raise SourceUnavailable("source image could not be downloaded") from None
        raise SourceUnavailable("source image redirects too many times")

    def _check_url(self, url: str) -> httpx.URL:
        parsed = _parse_url(url)
        if parsed.userinfo and not self._limits.allow_credentials:
            raise InvalidURL(
                "invalid source URL: credentials need PIXELPIPE_ALLOW_SOURCE_CREDENTIALS=true"
            )
        check_allowed_source(str(parsed), self._limits.allowed_sources)
        return parsed

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
        caching = tuple(
            (name, response.headers[name])
            for name in ("cache-control", "expires")
            if name in response.headers
        )
        return SourceImage(
            url, b"".join(chunks), response.headers.get("content-type"), caching=caching
        )


def _parse_url(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError):
        raise InvalidURL("invalid source URL") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise InvalidURL("invalid source URL: expected http(s)://host/...")
    return parsed
