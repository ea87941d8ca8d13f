"""End to end: every kind of bad input gets its status and a one-line reason,
nothing leaks, and the server answers the next good request."""

from __future__ import annotations

import gzip
import itertools
from collections.abc import Callable

import httpx
import pytest

from tests.bombs import jpeg_with_size, png_bomb
from tests.conftest import signed
from tests.images import decode, encode, gradient, quadrants
from tests.servers import Origin
from tests.test_app_security import LOOPBACK_REFUSED

_names = itertools.count()
GOOD_PNG = encode(quadrants(200, 100), "png")


def good_request(client: httpx.Client, base: str, origin: Origin) -> None:
    url = origin.add(f"/good/{next(_names)}.png", GOOD_PNG, "image/png")
    response = client.get(base + signed(f"/rs:fit:20:20/plain/{url}"))
    assert response.status_code == 200
    assert decode(response.content).width == 20


def add(origin: Origin, body: bytes, content_type: str = "image/jpeg", **kw: object) -> str:
    return origin.add(f"/bad/{next(_names)}", body, content_type, **kw)


JPEG = encode(gradient(300, 200), "jpg")
PNG = encode(gradient(300, 200), "png")
WEBP = encode(gradient(300, 200), "webp")
GIF = encode(gradient(300, 200), "gif")
PNG_BOMB = png_bomb()  # 50,000 x 50,000 RGB in a few KB
TALL_BOMB = png_bomb(1, 20_000_000)
JPEG_BOMB = jpeg_with_size(60000, 60000)
JSON = b'{"a": 1}'
ZIP = b"PK\x03\x04" + b"\x00" * 26 + b"PK\x05\x06" + b"\x00" * 18
# Starts like a GIF, goes on as script: not a decodable image.
POLYGLOT = b"GIF89a/*\x00\x00*/=alert(document.domain);//" + b"\x00" * 16
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
SVG_BOMB = (
    b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa">'
    b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
    b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><text>&b;</text></svg>'
)

# (name, make path from origin, status, reason starts with)
CASES: list[tuple[str, Callable[[Origin], str], int, str]] = [
    ("no source", lambda o: signed("/rs:fit:10:10"), 404, "invalid URL"),
    ("empty plain source", lambda o: signed("/rs:fit:10:10/plain/"), 404, "invalid URL"),
    ("unknown option", lambda o: signed(f"/nope:1/plain/{add(o, JPEG)}"), 404, "unknown option"),
    ("bad argument", lambda o: signed(f"/w:-1/plain/{add(o, JPEG)}"), 404, "invalid width"),
    ("bad enum", lambda o: signed(f"/rt:squash/plain/{add(o, JPEG)}"), 404, "invalid"),
    ("bad format", lambda o: signed(f"/plain/{add(o, JPEG)}@pdf"), 404, "invalid extension"),
    ("bad base64", lambda o: signed("/w:10/!!!notbase64"), 404, "invalid URL"),
    ("bad scheme", lambda o: signed("/w:10/plain/ftp://example.invalid/a.jpg"), 404, "unsupported"),
    ("local off", lambda o: signed("/plain/local:///a.jpg"), 404, "unsupported"),
    ("credentials", lambda o: signed("/plain/http://u:p%40127.0.0.1/a.jpg"), 404, "invalid source"),
    # Once answered 500 with a traceback in the log.
    ("bad IPv6 host", lambda o: signed("/plain/http://[zz]/a.jpg"), 404, "invalid source URL"),
    ("open IPv6 host", lambda o: signed("/plain/http://[::1/a.jpg"), 404, "invalid source URL"),
    ("port out of range", lambda o: signed("/plain/http://a:99999/a.jpg"), 404, "invalid source"),
    ("NUL in a URL", lambda o: signed("/plain/http://a%00b/a.jpg"), 404, "invalid source URL"),
    (
        "bad signature",
        lambda o: "/AAAA" + signed(f"/plain/{add(o, JPEG)}")[44:],
        403,
        "invalid sig",
    ),
    ("expired", lambda o: signed(f"/exp:1000/plain/{add(o, JPEG)}"), 404, "expired URL"),
    ("origin 404", lambda o: signed(f"/plain/{o.base}/missing.jpg"), 404, "source image not found"),
    ("origin 500", lambda o: signed(f"/plain/{add(o, b'x', status=500)}"), 502, "source answered"),
    (
        "html",
        lambda o: signed(f"/plain/{add(o, b'<html>hi</html>', 'text/html')}"),
        422,
        "source is not",
    ),
    ("empty body", lambda o: signed(f"/plain/{add(o, b'')}"), 422, "source is empty"),
    (
        "truncated",
        lambda o: signed(f"/plain/{add(o, JPEG[: len(JPEG) // 2])}@png"),
        422,
        "source image",
    ),
    ("garbage", lambda o: signed(f"/plain/{add(o, bytes(range(256)) * 8)}"), 422, "source is not"),
    (
        "pdf",
        lambda o: signed(f"/plain/{add(o, PDF, 'application/pdf')}"),
        422,
        "pdf sources are off",
    ),
    (
        "svg entities",
        lambda o: signed(f"/plain/{add(o, SVG_BOMB, 'image/svg+xml')}"),
        422,
        "SVG with entity declarations",
    ),
    ("svg output from jpeg", lambda o: signed(f"/plain/{add(o, JPEG)}@svg"), 422, "SVG output"),
    (
        "too big result",
        lambda o: signed(f"/rs:fit:20000:20000:1/plain/{add(o, JPEG)}"),
        422,
        "result",
    ),
    # more URL-level cases
    ("signature only", lambda o: "/onlyasignature", 404, "invalid URL"),
    ("two extensions", lambda o: signed(f"/plain/{add(o, JPEG)}@png@jpg"), 404, "invalid URL"),
    ("empty option name", lambda o: signed(f"/:1/plain/{add(o, JPEG)}"), 404, "unknown option"),
    ("long option name", lambda o: signed(f"/{'x' * 300}:1/plain/{add(o, JPEG)}"), 404, "unknown"),
    ("too many args", lambda o: signed(f"/w:1:2/plain/{add(o, JPEG)}"), 404, "invalid width"),
    ("bad gravity", lambda o: signed(f"/g:middle/plain/{add(o, JPEG)}"), 404, "invalid gravity"),
    ("bad rotation", lambda o: signed(f"/rot:45/plain/{add(o, JPEG)}"), 404, "invalid rotate"),
    ("bad expiry", lambda o: signed(f"/exp:soon/plain/{add(o, JPEG)}"), 404, "invalid expires"),
    ("unknown preset", lambda o: signed(f"/pr:nope/plain/{add(o, JPEG)}"), 404, "unknown preset"),
    ("javascript source", lambda o: signed("/plain/javascript:alert(1)"), 404, "unsupported"),
    ("file source", lambda o: signed("/plain/file:///etc/passwd"), 404, "unsupported"),
    ("unresolvable host", lambda o: signed("/plain/http://no-such.test/a.jpg"), 404, "source host"),
    # more file-level cases
    (
        "truncated png",
        lambda o: signed(f"/plain/{add(o, PNG[: len(PNG) // 2])}@jpg"),
        422,
        "source",
    ),
    (
        "truncated webp",
        lambda o: signed(f"/plain/{add(o, WEBP[: len(WEBP) // 2])}@png"),
        422,
        "source",
    ),
    (
        "truncated gif",
        lambda o: signed(f"/plain/{add(o, GIF[: len(GIF) // 3])}@png"),
        422,
        "source",
    ),
    ("header only", lambda o: signed(f"/plain/{add(o, JPEG[:20])}"), 422, "source"),
    ("broken magic", lambda o: signed(f"/plain/{add(o, b'xx' + JPEG[2:])}"), 422, "source is not"),
    ("json", lambda o: signed(f"/plain/{add(o, JSON, 'application/json')}"), 422, "source is not"),
    ("text as jpeg", lambda o: signed(f"/plain/{add(o, b'hello world')}"), 422, "source is not"),
    ("zip", lambda o: signed(f"/plain/{add(o, ZIP, 'application/zip')}"), 422, "source is not"),
    ("gif polyglot", lambda o: signed(f"/plain/{add(o, POLYGLOT, 'image/gif')}"), 422, "source"),
    ("png bomb", lambda o: signed(f"/plain/{add(o, PNG_BOMB)}"), 422, "source image resolution"),
    (
        "tall png bomb",
        lambda o: signed(f"/plain/{add(o, TALL_BOMB)}"),
        422,
        "source image resolution",
    ),
    ("jpeg bomb", lambda o: signed(f"/plain/{add(o, JPEG_BOMB)}"), 422, "source image resolution"),
]


@pytest.mark.parametrize(("name", "make", "status", "reason"), CASES, ids=[c[0] for c in CASES])
def test_bad_input(
    client: httpx.Client,
    pixelpipe: str,
    origin: Origin,
    name: str,
    make: Callable[[Origin], str],
    status: int,
    reason: str,
) -> None:
    response = client.get(pixelpipe + make(origin))
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text.startswith(reason), response.text
    assert response.text.count("\n") == 1
    assert "Traceback" not in response.text and "127.0.0.1" not in response.text
    assert response.headers["cache-control"] == "no-store"
    good_request(client, pixelpipe, origin)


def test_matrix_has_at_least_forty_cases() -> None:
    assert len(CASES) >= 40


def test_content_type_is_not_trusted_the_bytes_decide(
    client: httpx.Client, pixelpipe: str, origin: Origin
) -> None:
    url = add(origin, JPEG, "text/html")
    response = client.get(pixelpipe + signed(f"/w:30/plain/{url}"))
    assert response.status_code == 200
    assert decode(response.content).width == 30


def test_payload_after_an_image_does_not_survive(
    client: httpx.Client, pixelpipe: str, origin: Origin
) -> None:
    url = add(origin, JPEG + b"<script>alert(1)</script>", "image/jpeg")
    response = client.get(pixelpipe + signed(f"/plain/{url}"))
    assert response.status_code == 200
    assert b"<script>" not in response.content


def test_gzip_encoded_sources_count_decoded_bytes(
    client: httpx.Client,
    pixelpipe_with,
    origin: Origin,  # type: ignore[no-untyped-def]
) -> None:
    bomb = gzip.compress(b"\x00" * 5_000_000)  # ~5 KB on the wire
    url = add(origin, bomb, "image/png", headers={"Content-Encoding": "gzip"})
    with pixelpipe_with(max_src_file_size=100_000) as base:
        response = client.get(base + signed(f"/plain/{url}"))
        assert response.status_code == 422
        assert response.text == "source image file is too large\n"


def test_loopback_sources_are_refused_by_default(
    client: httpx.Client,
    pixelpipe_with,
    origin: Origin,  # type: ignore[no-untyped-def]
) -> None:
    url = add(origin, JPEG)
    with pixelpipe_with(allow_loopback_source_addresses=False) as base:
        for target in (
            url,
            url.replace("127.0.0.1", "localhost"),
            url.replace("127.0.0.1", "[::1]"),
        ):
            response = client.get(base + signed(f"/plain/{target}"))
            assert response.status_code == 403, target
            assert response.text == LOOPBACK_REFUSED
    assert origin.hits[url.removeprefix(origin.base)] == 0


def test_source_timeout_is_504(client: httpx.Client, pixelpipe_with, origin: Origin) -> None:  # type: ignore[no-untyped-def]
    url = add(origin, JPEG, delay=2.0)
    with pixelpipe_with(download_timeout=0.3) as base:
        response = client.get(base + signed(f"/plain/{url}"))
        assert response.status_code == 504
        assert response.text == "source image download timed out\n"
        good_request(client, base, origin)


@pytest.mark.parametrize("send_length", [True, False], ids=["declared", "streamed"])
def test_source_too_large_is_422(
    client: httpx.Client,
    pixelpipe_with,
    origin: Origin,
    send_length: bool,  # type: ignore[no-untyped-def]
) -> None:
    url = add(origin, JPEG + b"\0" * 50_000, send_length=send_length)
    with pixelpipe_with(max_src_file_size=20_000) as base:
        response = client.get(base + signed(f"/plain/{url}"))
        assert response.status_code == 422
        assert response.text == "source image file is too large\n"
        good_request(client, base, origin)


def test_source_resolution_limit_is_422(
    client: httpx.Client, pixelpipe_with, origin: Origin
) -> None:  # type: ignore[no-untyped-def]
    url = add(origin, JPEG)  # 300x200 = 0.06 MP
    with pixelpipe_with(max_src_resolution=0.05) as base:
        response = client.get(base + signed(f"/plain/{url}"))
        assert response.status_code == 422
        assert response.text == "source image resolution is too large\n"


def test_redirects_are_followed_up_to_the_limit(
    client: httpx.Client,
    pixelpipe_with,
    origin: Origin,  # type: ignore[no-untyped-def]
) -> None:
    target = origin.add(f"/redirected/{next(_names)}.png", GOOD_PNG, "image/png")
    hop1 = add(origin, b"", status=302, headers={"Location": target})
    hop2 = add(origin, b"", status=301, headers={"Location": hop1.removeprefix(origin.base)})
    with pixelpipe_with(max_redirects=2) as base:
        assert client.get(base + signed(f"/plain/{hop2}")).status_code == 200
    with pixelpipe_with(max_redirects=1) as base:
        response = client.get(base + signed(f"/plain/{hop2}"))
        assert response.status_code == 502
        assert response.text == "source image redirects too many times\n"


def test_no_500_for_unexpected_paths(client: httpx.Client, pixelpipe: str) -> None:
    for path in ("/", "/x", "/%ff%fe/plain/x", "//////", "/sig/w:1/plain/http://[::1"):
        response = client.get(pixelpipe + path)
        assert 400 <= response.status_code < 500, path


def test_malformed_local_and_watermark_urls_are_4xx(
    client: httpx.Client,
    pixelpipe_with,
    tmp_path,
    origin: Origin,  # type: ignore[no-untyped-def]
) -> None:
    (tmp_path / "a.jpg").write_bytes(JPEG)
    image = add(origin, JPEG).removeprefix("http://")
    with pixelpipe_with(local_filesystem_root=str(tmp_path), thumbor_allow_unsafe=True) as base:
        for path, status in (
            (signed("/plain/local:///a%2500.jpg"), 404),  # %00 once the plain URL is unquoted
            (f"/unsafe/filters:watermark(http://[zz]/m.png,0,0,50)/{image}", 404),
        ):
            answer = client.get(base + path)
            assert answer.status_code == status, (path, answer.text)
            assert answer.text.startswith("invalid source URL"), answer.text
        assert client.get(base + signed("/w:10/plain/local:///a.jpg")).status_code == 200
