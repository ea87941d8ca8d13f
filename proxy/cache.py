"""In-process caches: results keyed by canonical options, sources by URL and content.

Both are bounded in bytes. Results age out so that a changed origin shows
up; sources are kept by content hash, so one image reachable at two URLs is
stored once and serves every set of options asked of it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field, replace

from cachetools import LRUCache, TTLCache

from proxy.sources import SourceImage


@dataclass(frozen=True, slots=True)
class CachedResult:
    body: bytes
    content_type: str
    etag: str
    disposition: str  # the Content-Disposition header value
    # Facts about how it was made, e.g. ("x-pixelpipe-encodes", "3").
    extra_headers: tuple[tuple[str, str], ...] = ()
    # The source's Cache-Control / Expires, kept only under CACHE_CONTROL_PASSTHROUGH.
    source_caching: tuple[tuple[str, str], ...] = ()
    # The headers that never change for this result, encoded once for the wire.
    raw_headers: tuple[tuple[bytes, bytes], ...] = field(init=False, repr=False, compare=False)
    raw_source_caching: tuple[tuple[bytes, bytes], ...] = field(
        init=False, repr=False, compare=False
    )
    # [second, answer]: the plain 200 answer of the current second (see
    # ImageService._image_response); its Expires date changes once a second.
    answer_memo: list[object] = field(
        default_factory=lambda: [-1, None], init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        headers = (
            (b"content-type", self.content_type.encode("latin-1")),
            (b"content-length", str(len(self.body)).encode()),
            (b"etag", self.etag.encode("latin-1")),
            (b"content-disposition", self.disposition.encode("latin-1")),
            *(
                (name.encode("latin-1"), value.encode("latin-1"))
                for name, value in self.extra_headers
            ),
        )
        object.__setattr__(self, "raw_headers", headers)
        object.__setattr__(
            self,
            "raw_source_caching",
            tuple((n.encode("latin-1"), v.encode("latin-1")) for n, v in self.source_caching),
        )


class ResultCache:
    """LRU within a byte budget; entries also age out, so origin changes show up."""

    def __init__(self, max_bytes: int, ttl: int) -> None:
        self._enabled = max_bytes > 0
        self._entries: TTLCache[str, CachedResult] = TTLCache(
            maxsize=max(max_bytes, 1), ttl=ttl, getsizeof=lambda r: len(r.body) + 256
        )
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> CachedResult | None:
        try:
            # Indexing, not .get(): cachetools' get() checks expiry twice (a hit's hot path).
            result = self._entries[key]
        except KeyError:
            self.misses += 1
            return None
        self.hits += 1
        return result

    def put(self, key: str, result: CachedResult) -> None:
        if not self._enabled:
            return
        # Larger than the whole budget: serve it, don't keep it.
        with contextlib.suppress(ValueError):
            self._entries[key] = result

    @property
    def size_bytes(self) -> int:
        return int(self._entries.currsize)


class SourceCache:
    """Fetched originals: URL -> what it answered (aging), digest -> bytes (LRU in bytes).

    Bytes are shared by every URL that served them; what a URL's own answer
    said (its Content-Type, its caching headers) stays with that URL, so the
    same bytes fetched as `u.html` never lend `u.jpg` their type.
    """

    def __init__(self, max_bytes: int, ttl: int, max_urls: int = 100_000) -> None:
        self._enabled = max_bytes > 0
        self._digest_of_url: TTLCache[str, SourceImage] = TTLCache(
            maxsize=max_urls, ttl=max(ttl, 1)
        )
        self._by_digest: LRUCache[str, SourceImage] = LRUCache(
            maxsize=max(max_bytes, 1), getsizeof=lambda s: len(s.data) + 256
        )
        self.hits = 0
        self.misses = 0

    def get(self, url: str) -> SourceImage | None:
        answer = self._digest_of_url.get(url) if self._enabled else None
        found = self._by_digest.get(answer.digest) if answer and answer.digest else None
        if found is None or answer is None:
            self.misses += 1
            return None
        self.hits += 1
        return found if found.url == url else replace(answer, data=found.data)

    def put(self, source: SourceImage) -> None:
        if not self._enabled or source.digest is None:
            return
        # The URL's own answer without its bytes (those live once, under the digest).
        self._digest_of_url[source.url] = replace(source, data=b"")
        if source.digest not in self._by_digest:
            with contextlib.suppress(ValueError):  # larger than the whole budget
                self._by_digest[source.digest] = source

    def forget(self, url: str) -> None:
        """Drop a URL whose bytes did not decode: they may be a download cut short.

        An origin that closes the connection early without a Content-Length
        sends a body HTTP cannot tell from a whole one; only the decoder can.
        Kept, those bytes would fail every request for the URL until they aged
        out, even after the origin recovered.
        """
        answer = self._digest_of_url.pop(url, None)
        if answer is not None and answer.digest is not None:
            self._by_digest.pop(answer.digest, None)

    @property
    def size_bytes(self) -> int:
        return int(self._by_digest.currsize)
