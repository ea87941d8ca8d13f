"""End to end: the HTTP side of a good answer (headers, caching, methods)."""

from __future__ import annotations

import itertools
import time

import httpx
import pytest

from tests.conftest import signed
from tests.images import decode, encode, quadrants
from tests.servers import Origin

_names = itertools.count()


def source(origin: Origin) -> str:
    return origin.add(
        f"/resp/{next(_names)}/cup.png", encode(quadrants(200, 100), "png"), "image/png"
    )


def test_headers_of_an_image(client: httpx.Client, pixelpipe: str, origin: Origin) -> None:
    url = source(origin)
    response = client.get(pixelpipe + signed(f"/rs:fit:50:50/plain/{url}@webp"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/webp"
    assert int(response.headers["content-length"]) == len(response.content)
    assert response.headers["cache-control"] == "public, max-age=31536000"
    assert "expires" in response.headers
    etag = response.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")
    assert response.headers["content-disposition"] == 'inline; filename="cup.webp"'


def test_if_none_match_gives_304(client: httpx.Client, pixelpipe: str, origin: Origin) -> None:
    path = signed(f"/rs:fit:50:50/plain/{source(origin)}")
    etag = client.get(pixelpipe + path).headers["etag"]
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        response = client.get(pixelpipe + path, headers={"If-None-Match": header})
        assert response.status_code == 304, header
        assert response.content == b""
        assert response.headers["etag"] == etag
    assert client.get(pixelpipe + path, headers={"If-None-Match": '"x"'}).status_code == 200


def test_etag_depends_on_options_and_cachebuster(
    client: httpx.Client, pixelpipe: str, origin: Origin
) -> None:
    url = source(origin)
    a = client.get(pixelpipe + signed(f"/w:50/plain/{url}"))
    b = client.get(pixelpipe + signed(f"/width:50/plain/{url}"))
    c = client.get(pixelpipe + signed(f"/w:50/cb:v2/plain/{url}"))
    d = client.get(pixelpipe + signed(f"/w:51/plain/{url}"))
    assert a.headers["etag"] == b.headers["etag"]
    assert a.content == c.content
    assert len({a.headers["etag"], c.headers["etag"], d.headers["etag"]}) == 3


def test_head_has_headers_and_no_body(client: httpx.Client, pixelpipe: str, origin: Origin) -> None:
    path = signed(f"/rs:fit:50:50/plain/{source(origin)}@png")
    full = client.get(pixelpipe + path)
    head = client.head(pixelpipe + path)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == full.headers["content-length"]
    assert head.headers["etag"] == full.headers["etag"]


def test_result_cache_serves_repeats_without_the_origin(
    client: httpx.Client, pixelpipe: str, origin: Origin
) -> None:
    url = source(origin)
    path = url.removeprefix(origin.base)
    first = client.get(pixelpipe + signed(f"/rs:fit:40:40/plain/{url}"))
    again = client.get(pixelpipe + signed(f"/resize:fit:40:40/plain/{url}"))
    assert first.content == again.content
    assert origin.hits[path] == 1
    # other options over the same source: a new result, from the cached original
    other = client.get(pixelpipe + signed(f"/rs:fit:41:41/plain/{url}"))
    assert decode(other.content).width == 41
    assert origin.hits[path] == 1


def test_filename_and_attachment(client: httpx.Client, pixelpipe: str, origin: Origin) -> None:
    url = source(origin)
    named = client.get(pixelpipe + signed(f"/fn:my%20cup/plain/{url}@jpg"))
    # As imgproxy: the result's extension is appended to the given name.
    assert named.headers["content-disposition"] == 'inline; filename="my cup.jpg"'
    attached = client.get(pixelpipe + signed(f"/att:1/plain/{url}@jpg"))
    assert attached.headers["content-disposition"] == 'attachment; filename="cup.jpg"'
    unicode = client.get(pixelpipe + signed(f"/fn:YsO2bmUuanBn:1/plain/{url}@jpg"))
    assert "filename*=UTF-8''b%C3%B6ne.jpg.jpg" in unicode.headers["content-disposition"]
    as_png = client.get(pixelpipe + signed(f"/fn:holiday/plain/{url}@png"))
    assert as_png.headers["content-disposition"] == 'inline; filename="holiday.png"'


def test_expires_in_the_future_limits_max_age(
    client: httpx.Client, pixelpipe: str, origin: Origin
) -> None:
    expires = int(time.time()) + 600
    response = client.get(pixelpipe + signed(f"/exp:{expires}/plain/{source(origin)}"))
    assert response.status_code == 200
    age = int(response.headers["cache-control"].rsplit("=", 1)[1])
    assert 0 < age <= 600


def test_ttl_setting(client: httpx.Client, pixelpipe_with, origin: Origin) -> None:  # type: ignore[no-untyped-def]
    with pixelpipe_with(ttl=60) as base:
        response = client.get(base + signed(f"/plain/{source(origin)}"))
    assert response.headers["cache-control"] == "public, max-age=60"


def test_presets_from_settings(client: httpx.Client, pixelpipe_with, origin: Origin) -> None:  # type: ignore[no-untyped-def]
    presets = {"default": ("f:png",), "thumb": ("rs:fill:30:30",)}
    with pixelpipe_with(presets=presets) as base:
        plain = client.get(base + signed(f"/plain/{source(origin)}"))
        thumb = client.get(base + signed(f"/pr:thumb/plain/{source(origin)}"))
        unknown = client.get(base + signed(f"/pr:nope/plain/{source(origin)}"))
    assert plain.headers["content-type"] == "image/png"
    image = decode(thumb.content)
    assert (image.width, image.height) == (30, 30)
    assert unknown.status_code == 404 and unknown.text == "unknown preset: nope\n"


def test_local_sources_from_the_root(client: httpx.Client, pixelpipe_with, tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "cup.png").write_bytes(encode(quadrants(200, 100), "png"))
    with pixelpipe_with(local_filesystem_root=str(tmp_path)) as base:
        good = client.get(base + signed("/rs:fit:50:50/plain/local:///shop/cup.png"))
        missing = client.get(base + signed("/plain/local:///shop/none.png"))
        escape = client.get(base + signed("/plain/local:///../../etc/passwd"))
    assert good.status_code == 200 and decode(good.content).width == 50
    assert missing.status_code == 404
    assert escape.status_code == 403


def test_health(client: httpx.Client, pixelpipe: str) -> None:
    response = client.get(pixelpipe + "/health")
    assert (response.status_code, response.text) == (200, "ok\n")


def _raw_exchange(base: str, request: bytes, answers: int) -> list[bytes]:
    """Send raw HTTP/1.1 bytes on one connection; read `answers` responses back, in order."""
    import socket

    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(request)
        data = b""
        responses: list[bytes] = []
        while len(responses) < answers:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            data += chunk
            while b"\r\n\r\n" in data:
                head, _, rest = data.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                if head.startswith(b"HTTP/1.1 304") or b"HEAD-REQUEST" in head:
                    length = 0
                if len(rest) < length:
                    break
                responses.append(head + b"\r\n\r\n" + rest[:length])
                data = rest[length:]
    return responses


def test_pipelined_hits_and_misses_come_back_in_order(pixelpipe: str, origin: Origin) -> None:
    """Hits are written by the protocol itself: they must never overtake a miss."""
    url = origin.add("/pipelined/photo.jpg", encode(quadrants(64, 64), "jpg"))
    hit = signed(f"/rs:fit:20:0/plain/{url}").encode()
    assert httpx.get(pixelpipe + hit.decode()).status_code == 200  # now cached
    miss_paths = [signed(f"/rs:fit:{w}:0/plain/{url}").encode() for w in (21, 22)]
    request = b"".join(
        b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nX-Request-ID: r" + str(n).encode() + b"\r\n\r\n"
        for n, path in enumerate([hit, miss_paths[0], hit, miss_paths[1], hit])
    )
    responses = _raw_exchange(pixelpipe, request, 5)
    assert len(responses) == 5
    widths = []
    for n, response in enumerate(responses):
        head, _, body = response.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 "), head
        assert f"x-request-id: r{n}".encode() in head.lower()
        widths.append(decode(body).width)
    assert widths == [20, 21, 20, 22, 20]


def test_hits_on_connection_close_and_head(pixelpipe: str, origin: Origin) -> None:
    url = origin.add("/pipelined/close.jpg", encode(quadrants(64, 64), "jpg"))
    path = signed(f"/rs:fit:30:0/plain/{url}")
    first = httpx.get(pixelpipe + path)
    assert first.status_code == 200
    with httpx.Client(headers={"Connection": "close"}) as client:
        closing = client.get(pixelpipe + path)
    assert closing.status_code == 200 and closing.content == first.content
    head = httpx.head(pixelpipe + path)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(first.content))
    assert head.headers["etag"] == first.headers["etag"]
    again = httpx.get(pixelpipe + path, headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    # HTTP/1.0 takes uvicorn's path and gets the same answer.
    old = _raw_exchange(pixelpipe, f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode(), 1)
    assert old and old[0].split(b"\r\n\r\n", 1)[1] == first.content


def test_a_failing_hit_path_falls_back_to_the_full_path(origin: Origin) -> None:
    """A bug in the cache-hit shortcut costs speed, never the answer."""
    from tests.conftest import make_settings
    from tests.servers import running_apps, serve_pixelpipe

    url = origin.add("/fallback/photo.jpg", encode(quadrants(64, 64), "jpg"))
    path = signed(f"/rs:fit:24:0/plain/{url}")
    with serve_pixelpipe(make_settings()) as base:
        first = httpx.get(base + path)
        assert first.status_code == 200
        service = running_apps[base].state.service  # type: ignore[attr-defined]

        def broken(*args: object) -> None:
            raise RuntimeError("hit path bug")

        service.cached_answer = broken
        for _ in range(3):
            again = httpx.get(base + path)
            assert again.status_code == 200 and again.content == first.content
            assert decode(again.content).width == 24


def test_keep_alive_connections_are_recycled(pixelpipe: str, origin: Origin) -> None:
    """After KEEPALIVE_REQUESTS requests a connection is closed, cache hits included.

    So that clients move to the workers that replaced dead ones: the soak
    (BENCHMARKS.md) showed connections piling onto the oldest worker otherwise.
    """
    from proxy.server_protocol import KEEPALIVE_REQUESTS

    url = origin.add("/recycle.png", encode(quadrants(40, 30), "png"), "image/png")
    path = signed(f"/rs:fit:20:20/plain/{url}@png")
    peers = []
    with httpx.Client(timeout=30, limits=httpx.Limits(max_connections=1)) as session:
        for count in range(1, KEEPALIVE_REQUESTS + 3):
            response = session.get(pixelpipe + path)
            assert response.status_code == 200
            closes = response.headers.get("connection") == "close"
            assert closes == (count == KEEPALIVE_REQUESTS), count
            if not closes:  # (a closed connection has no address left to ask)
                stream = response.extensions["network_stream"]
                peers.append(stream.get_extra_info("client_addr"))
    # One connection for the first KEEPALIVE_REQUESTS answers (most of them cache
    # hits, answered on the fast path), a new one after.
    assert len(set(peers[: KEEPALIVE_REQUESTS - 1])) == 1
    assert peers[-1] != peers[0]


def test_old_keep_alive_connections_are_recycled(
    pixelpipe: str, origin: Origin, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request arriving after KEEPALIVE_SECONDS on a connection is its last."""
    import proxy.server_protocol

    monkeypatch.setattr(proxy.server_protocol, "KEEPALIVE_SECONDS", 0.3)
    url = origin.add("/aged.png", encode(quadrants(40, 30), "png"), "image/png")
    path = signed(f"/rs:fit:20:20/plain/{url}@png")
    with httpx.Client(timeout=30, limits=httpx.Limits(max_connections=1)) as session:
        first = session.get(pixelpipe + path)  # a new connection: its clock starts
        second = session.get(pixelpipe + path)
        time.sleep(0.4)
        aged = session.get(pixelpipe + path)
        fresh = session.get(pixelpipe + path)
    assert [r.status_code for r in (first, second, aged, fresh)] == [200] * 4
    assert "close" not in (
        first.headers.get("connection", ""),
        second.headers.get("connection", ""),
    )
    assert aged.headers.get("connection") == "close"
    assert fresh.headers.get("connection") != "close"
