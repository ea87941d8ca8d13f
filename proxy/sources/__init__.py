"""fetch(source URL) -> SourceImage, by the URL's scheme."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from proxy.errors import InvalidURL
from proxy.sources.policy import check_allowed_source

# Object storage schemes and the (imgproxy) setting that enables each.
SWITCHES = {"s3": "S3", "gs": "GCS", "abs": "ABS"}


@dataclass(frozen=True, slots=True)
class SourceImage:
    url: str
    data: bytes
    content_type: str | None = None
    digest: str | None = None  # content hash, set once the bytes are in hand
    # The origin's Cache-Control / Expires, for CACHE_CONTROL_PASSTHROUGH.
    caching: tuple[tuple[str, str], ...] = ()


class Source(Protocol):
    async def fetch(self, url: str) -> SourceImage: ...


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_source_url(url: str) -> None:
    """InvalidURL for what no source can fetch: control characters (a NUL in a
    path, CR/LF in a request line), or a host that does not parse (`[zz]`)."""
    if _CONTROL.search(url):
        raise InvalidURL("invalid source URL: control characters")
    try:
        parts = urlsplit(url)
        _ = (parts.hostname, parts.port)  # each raises ValueError when malformed
    except ValueError:
        raise InvalidURL("invalid source URL") from None


class Sources:
    """Routes a source URL to the source that serves its scheme."""

    def __init__(
        self, by_scheme: dict[str, Source], allowed: tuple[re.Pattern[str], ...] = ()
    ) -> None:
        self._by_scheme = by_scheme
        self._allowed = allowed

    async def fetch(self, url: str) -> SourceImage:
        check_source_url(url)
        check_allowed_source(url, self._allowed)
        scheme = urlsplit(url).scheme.lower()
        source = self._by_scheme.get(scheme)
        if source is None:
            if scheme in SWITCHES:
                # imgproxy answers 404 too; the line says which switch turns it on.
                raise InvalidURL(f"{scheme}:// sources are not enabled (USE_{SWITCHES[scheme]})")
            allowed = ", ".join(sorted(self._by_scheme)) or "none"
            raise InvalidURL(f"unsupported source scheme {scheme[:20]!r}: expected {allowed}")
        return await source.fetch(url)
