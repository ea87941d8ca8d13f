"""Response headers as pure functions: ETag, Cache-Control, Content-Disposition."""

from __future__ import annotations

import functools
import hashlib
import posixpath
from email.utils import formatdate
from urllib.parse import quote, unquote, urlsplit


def make_etag(canonical_options: str, source_digest: str) -> str:
    """Strong ETag: the same options over the same source bytes give the same bytes."""
    material = f"{canonical_options}\n{source_digest}".encode()
    return f'"{hashlib.blake2b(material, digest_size=16).hexdigest()}"'


def source_digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 If-None-Match: weak comparison over a list, or `*`."""
    if not if_none_match:
        return False
    candidates = [item.strip() for item in if_none_match.split(",")]
    if "*" in candidates:
        return True
    bare = etag.removeprefix("W/")
    return any(item.removeprefix("W/") == bare for item in candidates)


def max_age(ttl: int, expires: int | None, now: float) -> int:
    """A signed URL with `expires` must not be cached beyond its expiry."""
    if expires is None or expires <= 0:
        return ttl
    return max(0, min(ttl, int(expires - now)))


@functools.lru_cache(maxsize=64)
def cache_headers(age: int, now: int) -> tuple[tuple[bytes, bytes], ...]:
    """Per whole second: a busy server formats each Expires date once, not per response."""
    return (
        (b"cache-control", f"public, max-age={age}".encode()),
        (b"expires", formatdate(now + age, usegmt=True).encode()),
    )


def default_filename(source_url: str, extension: str) -> str:
    """`https://shop/cup.jpeg?x=1` + "webp" -> "cup.webp" (as imgproxy)."""
    name = posixpath.basename(unquote(urlsplit(source_url).path)) or "image"
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return f"{stem or 'image'}.{extension}"


def content_disposition(filename: str, attachment: bool) -> str:
    kind = "attachment" if attachment else "inline"
    # Plain ASCII fallback (quotes and controls removed) plus RFC 6266 filename*.
    ascii_name = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "_" for ch in filename)
    value = f'{kind}; filename="{ascii_name}"'
    if ascii_name != filename:
        value += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return value
