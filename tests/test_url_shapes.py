"""No URL shape makes the server fail: a property over paths of both dialects (hypothesis).

Paths are built from pieces that look like what clients send and what attackers
try (option segments with odd arguments, plain and base64 sources, hosts that
do not parse, NUL and control characters, thumbor geometry and filters). Every
answer must be a status other than 500 with a one-line reason. Hosts come from
a fixed list: loopback (the test origin), names the test resolver refuses, and
malformed ones, so no request can leave the machine.
"""

from __future__ import annotations

import base64
import tempfile
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import make_settings, signed
from tests.images import encode, gradient
from tests.servers import Origin, serve_pixelpipe


@pytest.fixture(scope="module")
def server(origin: Origin) -> Iterator[str]:
    origin.add("/shapes/a.jpg", encode(gradient(80, 60), "jpg"))
    with tempfile.TemporaryDirectory() as root:
        with open(f"{root}/a.jpg", "wb") as handle:
            handle.write(encode(gradient(40, 30), "jpg"))
        overrides = {"local_filesystem_root": root, "thumbor_allow_unsafe": True}
        with serve_pixelpipe(make_settings(**overrides)) as base:
            yield base


ORIGIN_PORT: list[int] = []
ODD = st.sampled_from(
    ["", "%00", "%0d%0a", "%C2%85", "%ff", "..", "%2e%2e", "\\", "%", "%zz", "@", "?", "#", "*"]
)
WORD = st.text(alphabet="abcxyz0123456789-_.", min_size=0, max_size=8)
PIECE = st.one_of(WORD, ODD)


@st.composite
def hosts(draw: st.DrawFn) -> str:
    port = ORIGIN_PORT[0]
    return draw(
        st.sampled_from(
            [
                f"127.0.0.1:{port}",
                f"localhost:{port}",
                f"[::1]:{port}",
                "cups.example",  # the test resolver answers for localhost only
                "[zz]",
                "[::1",
                "a:99999",
                "%00",
                "",
                "user:pw@localhost",
            ]
        )
    )


@st.composite
def source_urls(draw: st.DrawFn) -> str:
    scheme = draw(
        st.sampled_from(["http", "http", "http", "local", "local", "https", "s3", "ftp", "HTTP"])
    )
    path = "/".join(draw(st.lists(PIECE, max_size=4)))
    if scheme == "local":
        return f"local:///{path}" + draw(st.sampled_from(["", "a.jpg", "%00.jpg"]))
    known = draw(st.sampled_from(["", "shapes/a.jpg"]))
    return f"{scheme}://{draw(hosts())}/{known or path}"


OPTION = st.builds(
    lambda name, args: ":".join([name, *args]),
    st.sampled_from(
        [
            "rs",
            "w",
            "h",
            "q",
            "f",
            "g",
            "c",
            "bl",
            "sh",
            "pix",
            "pd",
            "rot",
            "wm",
            "t",
            "exp",
            "el",
            "ex",
            "dpr",
            "z",
            "mb",
            "pr",
            "fn",
            "raw",
            "skp",
            "bg",
            "ar",
            "x",
            "",
        ]
    ),
    st.lists(st.one_of(WORD, ODD, st.integers(-5, 100000).map(str)), max_size=5),
)


@st.composite
def imgproxy_paths(draw: st.DrawFn) -> str:
    options = "/".join(draw(st.lists(OPTION, max_size=4)))
    url = draw(source_urls())
    if draw(st.booleans()):
        source = "plain/" + url + draw(st.sampled_from(["", "@png", "@webp", "@x", "@", "@@"]))
    else:
        encoded = base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")
        source = draw(st.sampled_from([encoded, encoded + ".jpg", "!!!", encoded[:-1]]))
    path = "/" + (options + "/" if options else "") + source
    # Mostly signed: a bad signature is refused before anything else is read.
    return "/bad-signature" + path if draw(st.integers(0, 7)) == 0 else signed(path)


@st.composite
def thumbor_paths(draw: st.DrawFn) -> str:
    parts = [
        draw(st.sampled_from(["", "meta/", "trim/", "trim:bottom-right:300/"])),
        draw(st.sampled_from(["", "10x10:5x5/", "0x0:99999x99999/", "5x5:1x1/"])),
        draw(st.sampled_from(["", "fit-in/", "adaptive-full-fit-in/"])),
        draw(st.sampled_from(["", "300x200/", "-0x-0/", "origxorig/", "99999x1/"])),
        draw(st.sampled_from(["", "left/top/", "smart/"])),
    ]
    filters = draw(
        st.lists(
            st.builds(
                lambda name, args: f"{name}({','.join(args)})",
                st.sampled_from(
                    [
                        "quality",
                        "blur",
                        "brightness",
                        "rgb",
                        "fill",
                        "round_corner",
                        "rotate",
                        "watermark",
                        "focal",
                        "format",
                        "max_bytes",
                        "nope",
                        "",
                    ]
                ),
                st.lists(st.one_of(WORD, st.integers(-300, 99999).map(str), hosts()), max_size=4),
            ),
            max_size=3,
        )
    )
    if filters:
        parts.append("filters:" + ":".join(filters) + "/")
    image = draw(hosts()) + "/" + draw(st.sampled_from(["shapes/a.jpg", "", "%00", "x"]))
    return "/unsafe/" + "".join(parts) + image


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(path=st.one_of(imgproxy_paths(), thumbor_paths(), st.text(max_size=40).map("/".__add__)))
def test_no_url_shape_fails_the_server(server: str, origin: Origin, path: str) -> None:
    if not ORIGIN_PORT:
        ORIGIN_PORT.append(origin.port)
    try:
        request = httpx.Request("GET", server + path)
    except (httpx.InvalidURL, UnicodeError):
        return  # a path no HTTP client can send
    with httpx.Client(timeout=30) as client:
        answer = client.send(request)
    assert answer.status_code != 500, (path, answer.text)
    if answer.status_code >= 400:
        assert answer.text.count("\n") == 1 and len(answer.text) <= 301, (path, answer.text)


@pytest.fixture(autouse=True)
def _origin_port(origin: Origin) -> None:
    # hypothesis draws hosts before the test body runs: the port must be known first.
    if not ORIGIN_PORT:
        ORIGIN_PORT.append(origin.port)
