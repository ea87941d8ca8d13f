"""End to end: safe fetching, authorization, request limits.

Test host names are mapped to addresses by an injected resolver. Only ever
loopback is connected to: names that map elsewhere must be refused by the
policy before any connection, which these tests check.
"""

from __future__ import annotations

import itertools
import socket
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import make_settings, signed
from tests.images import decode, encode, quadrants
from tests.servers import Origin, serve_pixelpipe

LOOPBACK_REFUSED = (
    "source address is not allowed "
    "(loopback; PIXELPIPE_ALLOW_LOOPBACK_SOURCE_ADDRESSES=true allows it)\n"
)

_names = itertools.count()
PNG = encode(quadrants(60, 40), "png")

HOSTS = {
    "images.test": ["127.0.0.1"],
    "metadata.test": ["169.254.169.254"],
    "private.test": ["10.0.0.5"],
    "mixed.test": ["192.168.7.7", "127.0.0.1"],
    "v6metadata.test": ["fd00:ec2::254"],
    "mapped.test": ["::ffff:10.1.2.3"],
}


class FakeResolver:
    """Resolves only the test names above and counts lookups."""

    def __init__(self) -> None:
        self.lookups: Counter[str] = Counter()

    async def __call__(self, host: str, port: int) -> list[str]:
        self.lookups[host] += 1
        if host not in HOSTS:
            raise OSError("unknown test host")
        return list(HOSTS[host])


@pytest.fixture()
def resolver() -> FakeResolver:
    return FakeResolver()


@pytest.fixture()
def guarded(resolver: FakeResolver) -> Iterator[str]:
    """Loopback allowed (the origin lives there); every other class refused."""
    with serve_pixelpipe(make_settings(), resolver=resolver) as base:
        yield base


def image_path(origin: Origin) -> str:
    path = f"/sec/{next(_names)}.png"
    origin.add(path, PNG, "image/png")
    return path


def test_a_name_resolving_to_an_allowed_address_is_fetched_with_its_host_header(
    client: httpx.Client, guarded: str, origin: Origin
) -> None:
    path = image_path(origin)
    response = client.get(guarded + signed(f"/w:30/plain/http://images.test:{origin.port}{path}"))
    assert response.status_code == 200
    assert decode(response.content).width == 30
    assert origin.last_headers[path]["Host"] == f"images.test:{origin.port}"


@pytest.mark.parametrize(
    ("host", "kind"),
    [
        ("metadata.test", "link-local"),
        ("private.test", "private"),
        ("v6metadata.test", "private"),
        ("mapped.test", "private"),
        ("169.254.169.254", "link-local"),
        ("0xa9fea9fe", "link-local"),
        ("10.0.0.1", "private"),
        ("[::ffff:192.168.0.1]", "private"),
        ("[fe80::1]", "link-local"),
        ("224.0.0.1", "link-local"),
        ("239.1.1.1", "multicast"),
        ("240.0.0.1", "reserved"),
    ],
)
def test_internal_addresses_are_refused_before_connecting(
    client: httpx.Client, guarded: str, host: str, kind: str
) -> None:
    response = client.get(guarded + signed(f"/plain/http://{host}/latest/meta-data"))
    assert response.status_code == 403
    setting = kind.upper().replace("-", "_")
    # The refusal names the setting that would allow the class (none for reserved).
    opens = (
        "" if kind == "reserved" else f"; PIXELPIPE_ALLOW_{setting}_SOURCE_ADDRESSES=true allows it"
    )
    assert response.text == f"source address is not allowed ({kind}{opens})\n"


def test_only_the_allowed_address_of_a_name_is_used(
    client: httpx.Client, guarded: str, origin: Origin
) -> None:
    path = image_path(origin)
    response = client.get(guarded + signed(f"/plain/http://mixed.test:{origin.port}{path}"))
    assert response.status_code == 200  # 192.168.7.7 skipped, 127.0.0.1 used


def test_the_checked_address_is_the_connected_one(
    client: httpx.Client, guarded: str, origin: Origin, resolver: FakeResolver
) -> None:
    # One lookup per connection, and the connection goes to what that lookup
    # returned: a second, different answer (DNS rebinding) is never asked for.
    path = image_path(origin)
    client.get(guarded + signed(f"/cb:rebind/plain/http://images.test:{origin.port}{path}"))
    assert resolver.lookups["images.test"] == 1


@pytest.mark.parametrize(
    "target",
    [
        "http://metadata.test/latest/meta-data/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:10.0.0.1]/",
        "http://private.test:8080/admin",
    ],
)
def test_redirects_to_internal_addresses_are_refused(
    client: httpx.Client, guarded: str, origin: Origin, target: str
) -> None:
    hop = origin.add(f"/sec/redirect/{next(_names)}", b"", status=302, headers={"Location": target})
    response = client.get(guarded + signed(f"/plain/{hop}"))
    assert response.status_code == 403


def test_loopback_is_refused_when_not_allowed(
    client: httpx.Client, origin: Origin, resolver: FakeResolver
) -> None:
    path = image_path(origin)
    settings = make_settings(allow_loopback_source_addresses=False)
    with serve_pixelpipe(settings, resolver=resolver) as base:
        for url in (f"http://images.test:{origin.port}{path}", f"{origin.base}{path}"):
            response = client.get(base + signed(f"/plain/{url}"))
            assert response.status_code == 403
            assert response.text == LOOPBACK_REFUSED
    assert origin.hits[path] == 0


def test_allowed_sources(client: httpx.Client, origin: Origin) -> None:
    allowed = origin.add(f"/allowed/{next(_names)}.png", PNG, "image/png")
    other = origin.add(f"/other/{next(_names)}.png", PNG, "image/png")
    escape = origin.add(f"/allowed/{next(_names)}", b"", status=302, headers={"Location": other})
    settings = make_settings(allowed_sources=(f"{origin.base}/allowed/",))
    with serve_pixelpipe(settings) as base:
        assert client.get(base + signed(f"/plain/{allowed}")).status_code == 200
        refused = client.get(base + signed(f"/plain/{other}"))
        assert refused.status_code == 403
        assert (
            refused.text == "source URL is not in the allowed sources (PIXELPIPE_ALLOWED_SOURCES)\n"
        )
        assert client.get(base + signed(f"/plain/{escape}")).status_code == 403


def test_credentials_in_source_urls_only_when_allowed(client: httpx.Client, origin: Origin) -> None:
    path = image_path(origin)
    # In a plain source URL "@" is written %40; the password's own "@" is %2540.
    url = f"http://user:pa55%2540x%40127.0.0.1:{origin.port}{path}"
    with serve_pixelpipe(make_settings()) as base:
        refused = client.get(base + signed(f"/plain/{url}"))
        assert refused.status_code == 404
        assert (
            refused.text
            == "invalid source URL: credentials need PIXELPIPE_ALLOW_SOURCE_CREDENTIALS=true\n"
        )
    with serve_pixelpipe(make_settings(allow_source_credentials=True)) as base:
        assert client.get(base + signed(f"/plain/{url}")).status_code == 200
    assert origin.last_headers[path]["Authorization"].startswith("Basic ")


def test_secret_is_required_when_set(client: httpx.Client, origin: Origin) -> None:
    url = origin.base + image_path(origin)
    path = signed(f"/w:10/plain/{url}")
    with serve_pixelpipe(make_settings(secret="fake-test-secret")) as base:
        assert client.get(base + path).status_code == 403
        assert client.get(base + path, headers={"Authorization": "Bearer wrong"}).status_code == 403
        assert (
            client.get(base + path, headers={"Authorization": "fake-test-secret"}).status_code
            == 403
        )
        ok = client.get(base + path, headers={"Authorization": "Bearer fake-test-secret"})
        assert ok.status_code == 200
        assert client.get(base + "/health").status_code == 200


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_are_405(
    client: httpx.Client, pixelpipe: str, origin: Origin, method: str
) -> None:
    url = origin.base + image_path(origin)
    response = client.request(method, pixelpipe + signed(f"/plain/{url}"))
    assert response.status_code == 405


def test_oversized_headers_and_request_lines_are_refused(
    client: httpx.Client,
    pixelpipe_with,
    origin: Origin,  # type: ignore[no-untyped-def]
) -> None:
    url = origin.base + image_path(origin)
    with pixelpipe_with(max_header_bytes=4096) as base:
        big_header = client.get(base + "/health", headers={"X-Filler": "a" * 8000})
        assert big_header.status_code in (400, 431)
        long_line = client.get(base + "/insecure/cb:" + "a" * 8000 + "/plain/x")
        assert long_line.status_code in (400, 414, 431)
        assert client.get(base + signed(f"/w:10/plain/{url}")).status_code == 200


def _send_until_closed(port: int, head: bytes, filler: bytes, total: int) -> tuple[int, bytes]:
    """Send a request head that never ends; return how much went out and what came back."""
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            sock.sendall(head)
            while sent < total:
                sock.sendall(filler)
                sent += len(filler)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            answer = sock.recv(200)
        except ConnectionResetError:
            answer = b""
    return sent, answer


def test_an_endless_request_head_is_cut_off(pixelpipe_with, origin: Origin) -> None:  # type: ignore[no-untyped-def]
    """httptools keeps an unfinished header in memory: the server stops it at the bound."""
    url = origin.base + image_path(origin)
    with pixelpipe_with(max_header_bytes=4096) as base:
        port = int(base.rsplit(":", 1)[1])
        # 64 MiB of one header line: the connection must end long before it is all sent.
        total = 64 * 1024 * 1024
        sent, answer = _send_until_closed(
            port, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Filler: ", b"a" * 65536, total
        )
        assert sent < total
        assert answer == b"" or answer.startswith(b"HTTP/1.1 431 ")
        # Many header lines, each short, add up the same way.
        sent, answer = _send_until_closed(
            port, b"GET /health HTTP/1.1\r\n", b"X-A: b\r\n" * 8192, total
        )
        assert sent < total
        # A head just within the bound is served, on a connection that stays usable.
        with httpx.Client(timeout=10) as client:
            ok = client.get(base + "/health", headers={"X-Filler": "a" * 3000})
            assert ok.status_code == 200
            assert client.get(base + signed(f"/w:10/plain/{url}")).status_code == 200


def test_allowed_processing_options_hold_for_thumbor_urls(
    client: httpx.Client, origin: Origin
) -> None:
    """Each thumbor operation counts as the imgproxy option it becomes; the rest are refused."""
    url = origin.add("/allowed/thumbor.jpg", encode(quadrants(200, 150), "jpg"))
    image = url.removeprefix("http://")
    settings = make_settings(
        thumbor_allow_unsafe=True, allowed_processing_options=("rs", "w", "h", "q", "g", "el")
    )
    refused = {
        "trim": f"/unsafe/trim/{image}",
        "thumbor brightness": f"/unsafe/filters:brightness(50)/{image}",
        "thumbor round_corner": f"/unsafe/filters:round_corner(10,255,0,0)/{image}",
        "thumbor watermark": f"/unsafe/filters:watermark({image},0,0,50)/{image}",
        "bl": f"/unsafe/100x0/filters:blur(2)/{image}",
        "thumbor rgb": f"/unsafe/filters:rgb(10,0,0)/{image}",
    }
    with serve_pixelpipe(settings) as base:
        for path in (
            f"/unsafe/100x50/{image}",
            f"/unsafe/100x0/filters:quality(50)/{image}",
            f"/unsafe/fit-in/300x300/filters:upscale()/{image}",  # upscale() counts as el
        ):
            answer = client.get(base + path)
            assert answer.status_code == 200, (path, answer.text)
        for what, path in refused.items():
            answer = client.get(base + path)
            assert answer.status_code == 403, (path, answer.text)
            assert answer.text.startswith("forbidden processing option: ")
            assert what.split()[-1] in answer.text, answer.text


def test_every_answer_says_nosniff(client: httpx.Client, pixelpipe: str, origin: Origin) -> None:
    url = origin.add("/nosniff/a.png", encode(quadrants(40, 30), "png"), "image/png")
    path = signed(f"/w:20/plain/{url}")
    answers = [
        client.get(pixelpipe + path),  # a miss
        client.get(pixelpipe + path),  # a hit, answered before the app's layers
        client.get(pixelpipe + "/bad/w:1/plain/x"),
        client.get(pixelpipe + signed("/plain/http://no-such-host.test/a.png")),
        client.get(pixelpipe + "/health"),
        client.get(pixelpipe + "/metrics"),
    ]
    assert [answer.headers.get("x-content-type-options") for answer in answers] == ["nosniff"] * 6


def test_svg_answers_carry_a_csp_that_forbids_script_and_loads(
    client: httpx.Client, pixelpipe: str, origin: Origin
) -> None:
    svg = (
        b'<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4">'
        b'<rect width="4" height="4"/></svg>'
    )
    url = origin.add("/csp/a.svg", svg, "image/svg+xml")
    for path in (f"/plain/{url}", f"/raw:1/plain/{url}", f"/w:2/plain/{url}@svg"):
        answer = client.get(pixelpipe + signed(path))
        assert answer.status_code == 200 and answer.headers["content-type"] == "image/svg+xml"
        policy = answer.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "sandbox" in policy and "script" not in policy
