"""Settings set the way a user sets them: environment variables and `pixelpipe serve`.

Each family of security and limit settings is observed end to end, through
the real command in its own process, with our names on one server and
imgproxy's on another (an imgproxy deployment's environment carries over).
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from proxy.app import address_policy
from proxy.settings import Settings
from proxy.sources.policy import AddressClass
from tests.conftest import KEY, SALT, signed
from tests.images import decode, encode, gradient
from tests.ports import free_port
from tests.servers import Origin
from tests.soak import pixelpipe_process
from tests.test_cli import PIXELPIPE, clean_env

FAKE_SECRET = "fake-test-secret-not-for-use"


@contextmanager
def serving(**variables: str) -> Iterator[str]:
    port = free_port()
    env = clean_env(PIXELPIPE_KEY=KEY, PIXELPIPE_SALT=SALT, **variables)
    with pixelpipe_process(PIXELPIPE, env, port, workers=1):
        yield f"http://127.0.0.1:{port}"


@contextmanager
def unanswering_port() -> Iterator[int]:
    """A loopback port whose accept queue is full: a new connect hangs (SYNs are dropped)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):  # more than the queue holds; the extra connects are left pending
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    try:
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


@pytest.fixture(scope="module")
def photo(origin: Origin) -> str:
    return origin.add("/served/allowed/photo.jpg", encode(gradient(640, 480), "jpg"))


@pytest.fixture(scope="module")
def strict(origin: Origin) -> Iterator[str]:
    with serving(
        PIXELPIPE_ALLOW_LOOPBACK_SOURCE_ADDRESSES="true",
        PIXELPIPE_SECRET=FAKE_SECRET,
        PIXELPIPE_ALLOWED_SOURCES=f"{origin.base}/served/allowed/,http://127.0.0.1:*/slow/",
        PIXELPIPE_MAX_RESULT_DIMENSION="100",
        PIXELPIPE_MAX_HEADER_BYTES="2048",
        PIXELPIPE_CONNECT_TIMEOUT="0.5",
        PIXELPIPE_DOWNLOAD_TIMEOUT="60",
        PIXELPIPE_TIMEOUT="2",
    ) as base:
        yield base


@pytest.fixture(scope="module")
def imgproxy_names(origin: Origin) -> Iterator[str]:
    with serving(
        IMGPROXY_ALLOW_LOOPBACK_SOURCE_ADDRESSES="true",
        IMGPROXY_SECRET=FAKE_SECRET,
        IMGPROXY_ALLOWED_SOURCES=(
            f"{origin.base}/served/allowed/,http://user:fake-password@127.0.0.1:*/served/allowed/"
        ),
        IMGPROXY_MAX_RESULT_DIMENSION="100",
        PIXELPIPE_ALLOW_SOURCE_CREDENTIALS="true",
    ) as base:
        yield base


BEARER = {"authorization": f"Bearer {FAKE_SECRET}"}


def test_a_thumbor_url_says_thumbor_is_off(strict: str, photo: str) -> None:
    # No THUMBOR_KEY or THUMBOR_ALLOW_UNSAFE: imgproxy's dialect refuses the
    # path as before (same status), and the reason says what would open it.
    hint = (
        " (a thumbor URL? thumbor URLs are off:"
        " set PIXELPIPE_THUMBOR_KEY or PIXELPIPE_THUMBOR_ALLOW_UNSAFE)\n"
    )
    with httpx.Client(timeout=30, headers=BEARER) as client:
        for path in (f"/unsafe/300x200/smart/{photo}", f"/{'A' * 27}=/fit-in/80x60/{photo}"):
            refused = client.get(strict + path)
            assert (refused.status_code, refused.text) == (403, "invalid signature" + hint), path
        # Not a thumbor path: imgproxy's reason alone.
        plain = client.get(strict + "/unsafe/bogus:1/plain/" + photo)
        assert (plain.status_code, plain.text) == (403, "invalid signature\n")
        answered = client.get(strict + signed(f"/w:50/plain/{photo}"))
        assert answered.status_code == 200 and decode(answered.content).width == 50


@pytest.mark.parametrize("server", ["strict", "imgproxy_names"])
def test_secret_needs_the_bearer_token(
    server: str, request: pytest.FixtureRequest, photo: str
) -> None:
    base = request.getfixturevalue(server)
    path = signed(f"/w:50/plain/{photo}")
    with httpx.Client(timeout=30) as client:
        for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": FAKE_SECRET}):
            refused = client.get(base + path, headers=headers)
            assert (refused.status_code, refused.text) == (403, "forbidden\n")
        answered = client.get(base + path, headers=BEARER)
        assert answered.status_code == 200 and decode(answered.content).width == 50
        info = client.get(base + "/info" + path)
        assert info.status_code == 403


@pytest.mark.parametrize("server", ["strict", "imgproxy_names"])
def test_allowed_sources_refuse_the_rest(
    server: str, request: pytest.FixtureRequest, origin: Origin, photo: str
) -> None:
    base = request.getfixturevalue(server)
    outside = origin.add("/served/elsewhere.jpg", encode(gradient(64, 48), "jpg"))
    before = origin.hits["/served/elsewhere.jpg"]
    with httpx.Client(timeout=30, headers=BEARER) as client:
        refused = client.get(base + signed(f"/w:50/plain/{outside}"))
        assert refused.status_code == 403
        assert (
            refused.text == "source URL is not in the allowed sources (PIXELPIPE_ALLOWED_SOURCES)\n"
        )
        assert client.get(base + signed(f"/w:60/plain/{photo}")).status_code == 200
    assert origin.hits["/served/elsewhere.jpg"] == before  # never fetched


@pytest.mark.parametrize("server", ["strict", "imgproxy_names"])
def test_max_result_dimension_refuses_larger_results(
    server: str, request: pytest.FixtureRequest, photo: str
) -> None:
    base = request.getfixturevalue(server)
    with httpx.Client(timeout=30, headers=BEARER) as client:
        refused = client.get(base + signed(f"/w:500/plain/{photo}"))
        assert (refused.status_code, refused.text) == (422, "result image would be too large\n")
        fits = client.get(base + signed(f"/rs:fit:100:100/plain/{photo}"))
        image = decode(fits.content)
        assert (image.width, image.height) == (100, 75)


def test_max_header_bytes_bounds_the_request_head(strict: str, photo: str) -> None:
    with httpx.Client(timeout=30, headers=BEARER) as client:
        assert client.get(strict + "/health", headers={"x-pad": "a" * 1500}).status_code == 200
        assert client.get(strict + "/health", headers={"x-pad": "a" * 3000}).status_code == 431
        assert client.get(strict + "/x/" + "a" * 3000).status_code == 414
        assert client.get(strict + signed(f"/w:40/plain/{photo}")).status_code == 200


def test_connect_timeout_ends_a_connect_that_hangs(strict: str) -> None:
    # DOWNLOAD_TIMEOUT is 60 s on this server: only CONNECT_TIMEOUT can end it,
    # and its answer says it was the connection.
    with unanswering_port() as port, httpx.Client(timeout=30, headers=BEARER) as client:
        answer = client.get(strict + signed(f"/w:40/plain/http://127.0.0.1:{port}/slow/a.jpg"))
        assert (answer.status_code, answer.text) == (504, "source connection timed out\n")


def test_source_credentials_only_when_allowed(imgproxy_names: str, origin: Origin) -> None:
    url = origin.add("/served/allowed/creds.jpg", encode(gradient(64, 48), "jpg"))
    with_credentials = url.replace("http://", "http://user:fake-password%40")  # @ escaped
    path = signed(f"/w:20/plain/{with_credentials}")
    with (
        serving(PIXELPIPE_ALLOW_LOOPBACK_SOURCE_ADDRESSES="true") as default,
        httpx.Client(timeout=30, headers=BEARER) as client,
    ):
        refused = client.get(default + path)
        assert refused.status_code == 404
        assert "PIXELPIPE_ALLOW_SOURCE_CREDENTIALS=true" in refused.text
        served = client.get(imgproxy_names + path)
        assert served.status_code == 200 and decode(served.content).width == 20
    sent = origin.last_headers["/served/allowed/creds.jpg"]
    assert sent["Authorization"].startswith("Basic ")


def test_loopback_sources_only_when_allowed(origin: Origin, photo: str) -> None:
    with serving() as base, httpx.Client(timeout=30) as client:
        refused = client.get(base + signed(f"/w:20/plain/{photo}"))
        assert refused.status_code == 403
        assert "PIXELPIPE_ALLOW_LOOPBACK_SOURCE_ADDRESSES=true" in refused.text


@pytest.mark.parametrize(
    ("variable", "kind"),
    [
        ("PIXELPIPE_ALLOW_PRIVATE_SOURCE_ADDRESSES", AddressClass.PRIVATE),
        ("IMGPROXY_ALLOW_PRIVATE_SOURCE_ADDRESSES", AddressClass.PRIVATE),
        ("PIXELPIPE_ALLOW_LINK_LOCAL_SOURCE_ADDRESSES", AddressClass.LINK_LOCAL),
        ("IMGPROXY_ALLOW_LINK_LOCAL_SOURCE_ADDRESSES", AddressClass.LINK_LOCAL),
        ("PIXELPIPE_ALLOW_MULTICAST_SOURCE_ADDRESSES", AddressClass.MULTICAST),
        ("PIXELPIPE_ALLOW_LOOPBACK_SOURCE_ADDRESSES", AddressClass.LOOPBACK),
    ],
)
def test_address_class_variables_reach_the_policy(variable: str, kind: AddressClass) -> None:
    # Allowing a private or link-local class cannot be shown by connecting to
    # one (tests reach loopback only): the variable is followed to the policy
    # the app's client checks every connection against.
    assert not address_policy(Settings.from_env({})).allows(kind)
    assert address_policy(Settings.from_env({variable: "true"})).allows(kind)


def test_the_refusals_of_the_address_classes_are_served(photo: str) -> None:
    with serving() as base, httpx.Client(timeout=30) as client:
        for host, variable in (
            ("10.0.0.1", "ALLOW_PRIVATE_SOURCE_ADDRESSES"),
            ("169.254.169.254", "ALLOW_LINK_LOCAL_SOURCE_ADDRESSES"),
            ("239.1.1.1", "ALLOW_MULTICAST_SOURCE_ADDRESSES"),
        ):
            # Literal addresses are refused before any connection is tried.
            refused = client.get(base + signed(f"/w:20/plain/http://{host}/a.jpg"))
            assert refused.status_code == 403 and f"PIXELPIPE_{variable}=true" in refused.text


def test_bad_values_of_the_new_variables_stop_start_up() -> None:
    for variable, value in (
        ("PIXELPIPE_MAX_RESULT_DIMENSION", "0"),
        ("PIXELPIPE_CONNECT_TIMEOUT", "0"),
        ("PIXELPIPE_MAX_HEADER_BYTES", "10"),
        ("PIXELPIPE_SECRET", " "),
        ("IMGPROXY_ALLOW_PRIVATE_SOURCE_ADDRESSES", "perhaps"),
    ):
        result = subprocess.run(
            [PIXELPIPE, "serve", "--port", str(free_port())],
            env=clean_env(**{variable: value}),
            capture_output=True,
            text=True,
            timeout=30,
        )
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and variable in lines[0], variable


def test_timeout_bounds_the_whole_request(strict: str, origin: Origin) -> None:
    # The origin takes 5 s and DOWNLOAD_TIMEOUT is 60 s: the request's deadline ends it.
    url = origin.add("/served/allowed/slow.jpg", encode(gradient(64, 48), "jpg"), delay=5.0)
    with httpx.Client(timeout=30, headers=BEARER) as client:
        answer = client.get(strict + signed(f"/w:40/plain/{url}"))
        assert (answer.status_code, answer.text) == (503, "request timed out\n")
        assert client.get(strict + "/health").status_code == 200
