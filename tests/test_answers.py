"""The README's table of answers, held to what the server says.

The table is generated from `proxy.errors` (`make docs`); here every error kind
is provoked through the real app on loopback, and its status and one-line
body must be the table's. A new error kind without a case here fails.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from proxy.errors import ProxyError, error_classes
from tests.bombs import png_bomb
from tests.conftest import make_settings, signed
from tests.images import encode, gradient
from tests.servers import Origin, serve_pixelpipe

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
JPEG = encode(gradient(64, 48), "jpg")


@dataclass(frozen=True)
class Provoke:
    """How a client meets one error kind: the server's settings and the request."""

    request: Callable[[httpx.Client, str, Origin], httpx.Response]
    settings: dict[str, object] = field(default_factory=dict)


def get(path: Callable[[Origin], str], **headers: str) -> Callable[..., httpx.Response]:
    def send(client: httpx.Client, base: str, origin: Origin) -> httpx.Response:
        return client.get(base + path(origin), headers=headers)

    return send


def source(route: str) -> Callable[[Origin], str]:
    return lambda origin: signed(f"/w:20/plain/{origin.base}/answers/{route}")


def overloaded(client: httpx.Client, base: str, origin: Origin) -> httpx.Response:
    # One processing thread and no queue: a second job while a slow download
    # holds the only slot is refused.
    slow = signed(f"/w:20/plain/{origin.base}/answers/slow.jpg")
    first = threading.Thread(target=lambda: httpx.get(base + slow, timeout=30))
    first.start()
    while not origin.hits["/answers/slow.jpg"]:
        threading.Event().wait(0.01)
    try:
        return client.get(base + source("ok.jpg")(origin))
    finally:
        first.join()


CASES: dict[str, Provoke] = {
    "InvalidURL": Provoke(get(lambda o: "/just-one-segment")),
    "UnknownOption": Provoke(get(lambda o: signed(f"/foo:1/plain/{o.base}/answers/ok.jpg"))),
    "InvalidOptionArgument": Provoke(get(lambda o: signed(f"/q:abc/plain/{o.base}/a.jpg"))),
    "ForbiddenOption": Provoke(
        get(lambda o: signed(f"/bl:2/plain/{o.base}/answers/ok.jpg")),
        {"allowed_processing_options": ("w",)},
    ),
    "UnknownPreset": Provoke(get(lambda o: signed(f"/pr:nope/plain/{o.base}/answers/ok.jpg"))),
    "URITooLong": Provoke(get(lambda o: "/x/" + "a" * 3000), {"max_header_bytes": 2048}),
    "HeadersTooLarge": Provoke(
        get(lambda o: "/health", **{"x-big": "a" * 3000}), {"max_header_bytes": 2048}
    ),
    "InvalidSignature": Provoke(get(lambda o: f"/bad-signature/w:20/plain/{o.base}/a.jpg")),
    "Unauthorized": Provoke(get(source("ok.jpg")), {"secret": "fake-test-secret"}),
    "ServiceOverloaded": Provoke(overloaded, {"concurrency": 1, "requests_queue_size": 0}),
    "RequestTimeout": Provoke(get(source("slow.jpg")), {"timeout": 0.3}),
    "ExpiredURL": Provoke(get(lambda o: signed(f"/exp:1/plain/{o.base}/answers/ok.jpg"))),
    "SourceNotFound": Provoke(get(source("missing.jpg"))),
    "SourceForbidden": Provoke(get(source("ok.jpg")), {"allow_loopback_source_addresses": False}),
    "SourceTimeout": Provoke(get(source("drip.jpg")), {"download_timeout": 0.5}),
    "SourceUnavailable": Provoke(get(source("error.jpg"))),
    "SourceTooLarge": Provoke(get(source("ok.jpg")), {"max_src_file_size": 100}),
    "NotAnImage": Provoke(get(source("page.html"))),
    "UnsupportedFormat": Provoke(get(lambda o: signed(f"/plain/{o.base}/answers/ok.jpg@svg"))),
    "ImageTooLarge": Provoke(get(source("bomb.png"))),
    "ProcessingFailed": Provoke(get(source("truncated.jpg"))),
}

# Kinds that only an emulator can provoke, and the test that checks their
# table body there.
ELSEWHERE = {"SourceAccessDenied": "tests/test_object_storage.py"}


@pytest.fixture(scope="module")
def answers_origin(origin: Origin) -> Origin:
    origin.add("/answers/ok.jpg", JPEG)
    origin.add("/answers/slow.jpg", JPEG, delay=1.0)
    origin.add("/answers/drip.jpg", JPEG * 4, fault="drip")
    origin.add("/answers/error.jpg", b"down", "text/plain", status=500)
    origin.add("/answers/page.html", b"<html><body>hi</body></html>", "text/html")
    origin.add("/answers/bomb.png", png_bomb(), "image/png")
    origin.add("/answers/truncated.jpg", JPEG[: len(JPEG) * 4 // 5])
    return origin


@pytest.fixture(scope="module")
def servers() -> Iterator[Callable[[dict[str, object]], str]]:
    """One server per distinct settings, started on first use."""
    with ExitStack() as stack:
        started: dict[str, str] = {}

        def server_for(overrides: dict[str, object]) -> str:
            name = repr(sorted(overrides.items()))
            if name not in started:
                started[name] = stack.enter_context(serve_pixelpipe(make_settings(**overrides)))
            return started[name]

        yield server_for


def example(kind: type[ProxyError]) -> str:
    return kind.__dict__.get("example") or kind.default_reason


def test_every_error_kind_has_a_case() -> None:
    names = {kind.__name__ for kind in error_classes()}
    assert names == set(CASES) | set(ELSEWHERE)


@pytest.mark.parametrize("kind", error_classes(), ids=lambda kind: kind.__name__)
def test_the_server_answers_as_the_table_says(
    kind: type[ProxyError],
    answers_origin: Origin,
    servers: Callable[[dict[str, object]], str],
) -> None:
    row = f"| {kind.when} | {kind.status} | `{example(kind)}` |"
    assert row in README, "run `make docs`"
    if kind.__name__ in ELSEWHERE:
        checked_there = (Path(__file__).parent.parent / ELSEWHERE[kind.__name__]).read_text()
        assert f'"{example(kind)}"' in checked_there
        return
    case = CASES[kind.__name__]
    base = servers(case.settings)
    with httpx.Client(timeout=30) as client:
        response = case.request(client, base, answers_origin)
        assert (response.status_code, response.text) == (kind.status, example(kind) + "\n")
        # Still serving the next request.
        assert client.get(base + "/health").status_code == 200
