"""The in-process caches as units (proxy/cache.py)."""

from __future__ import annotations

from proxy.cache import SourceCache
from proxy.sources import SourceImage


def test_a_urls_content_type_never_comes_from_another_url() -> None:
    cache = SourceCache(max_bytes=1 << 20, ttl=60)
    body = b"\xff\xd8\xff same bytes at two URLs"
    cache.put(SourceImage("http://o/u.html", body, "text/html", "d1", (("cache-control", "x"),)))
    cache.put(SourceImage("http://o/u.jpg", body, "image/jpeg", "d1"))
    jpg, html = cache.get("http://o/u.jpg"), cache.get("http://o/u.html")
    assert jpg is not None and html is not None
    assert (jpg.content_type, jpg.caching, jpg.data) == ("image/jpeg", (), body)
    assert (html.content_type, html.caching) == ("text/html", (("cache-control", "x"),))
    assert cache.size_bytes < 2 * len(body) + 512  # the bytes are kept once


def test_forgetting_a_url_drops_its_bytes() -> None:
    cache = SourceCache(max_bytes=1 << 20, ttl=60)
    cache.put(SourceImage("http://o/a", b"abc", "image/png", "d2"))
    cache.forget("http://o/a")
    assert cache.get("http://o/a") is None and cache.size_bytes == 0
