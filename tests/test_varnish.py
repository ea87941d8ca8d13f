"""Real Varnish (Debian's varnishd) with the shipped VCL in front of `pixelpipe serve`.

The VCL is what `pixelpipe cdn-config varnish` prints for the server's
settings (AUTO_AVIF and AUTO_WEBP on), and docs/cdn/varnish.vcl is that file
for those settings. Which answers came from the cache is read from the
`X-Cache` header the VCL sets; Varnish runs unjailed in a temporary directory,
listening on loopback only.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import pyvips

from tests.conftest import signed
from tests.emulators import running, wait_for
from tests.images import encode, photo_like
from tests.ports import free_port
from tests.servers import Origin
from tests.test_cli import PIXELPIPE, clean_env
from tests.test_settings_served import serving

VARNISHD = shutil.which("varnishd") or "/usr/sbin/varnishd"
pytestmark = pytest.mark.skipif(
    not Path(VARNISHD).exists(),
    reason="varnishd not installed (make test installs Debian's varnish): SKIPPING the CDN tests",
)
SETTINGS = {"PIXELPIPE_AUTO_AVIF": "true", "PIXELPIPE_AUTO_WEBP": "true"}
ERROR_TTL = 4
# Eight clients' Accept headers, as they send them for <img>.
BROWSERS = {
    "Chrome": "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",
    "Firefox": "image/avif,image/webp,*/*",
    "Safari 17": "image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,"
    "image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5",
    "Safari 13": "image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5",
    "old Edge": "image/png,image/svg+xml,image/jxr,image/*;q=0.8,*/*;q=0.5",
    "IE 11": "image/png, image/svg+xml, image/*;q=0.8, */*;q=0.5",
    "curl": "*/*",
    "none": "",
}
SHOWS = {
    "Chrome": {"image/avif", "image/webp", "image/jpeg"},
    "Firefox": {"image/avif", "image/webp", "image/jpeg"},
    "Safari 17": {"image/avif", "image/webp", "image/jpeg"},
}


def cdn_config(port: int, **variables: str) -> str:
    return subprocess.run(
        [PIXELPIPE, "cdn-config", "varnish", "--backend", f"127.0.0.1:{port}"],
        env=clean_env(**variables),
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@pytest.fixture(scope="module")
def edge() -> Iterator[str]:
    with varnish_in_front(SETTINGS) as base:
        yield base


@contextmanager
def varnish_in_front(settings: dict[str, str]) -> Iterator[str]:
    """Varnish on a free loopback port in front of `pixelpipe serve`."""
    with serving(
        **settings,
        PIXELPIPE_ALLOW_LOOPBACK_SOURCE_ADDRESSES="true",
        PIXELPIPE_ERROR_TTL=str(ERROR_TTL),
    ) as origin_base:
        backend_port = int(origin_base.rsplit(":", 1)[1])
        with tempfile.TemporaryDirectory() as work:
            vcl = Path(work) / "pixelpipe.vcl"
            vcl.write_text(cdn_config(backend_port, **settings))
            port = free_port()
            command = [VARNISHD, "-F", "-j", "none", "-a", f"127.0.0.1:{port}",
                       "-f", str(vcl), "-n", str(Path(work) / "varnish"),
                       "-s", "malloc,64m", "-T", "none"]  # fmt: skip
            with running(command) as process:
                base = f"http://127.0.0.1:{port}"
                wait_for(lambda: _answers(base), process, "varnishd")
                yield base


def _answers(base: str) -> bool:
    try:
        httpx.get(base + "/health", timeout=2)
    except httpx.TransportError:
        return False
    return True


@pytest.fixture(scope="module")
def photo(origin: Origin) -> str:
    return origin.add("/cdn/photo.jpg", encode(photo_like(320, 240), "jpg", Q=90))


def get(base: str, path: str, **headers: str) -> httpx.Response:
    return httpx.get(base + path, headers={k: v for k, v in headers.items() if v}, timeout=60)


def test_the_shipped_vcl_is_what_cdn_config_prints() -> None:
    shipped = Path(__file__).resolve().parent.parent / "docs" / "cdn" / "varnish.vcl"
    assert shipped.read_text() == cdn_config(8080, **SETTINGS)


def test_every_browser_gets_what_it_shows_and_the_origin_sees_one_request_per_class(
    edge: str, photo: str
) -> None:
    path = signed(f"/rs:fit:200:200/cb:classes/plain/{photo}")
    misses, types = 0, {}
    for _ in range(3):
        for browser, accept in BROWSERS.items():
            answer = get(edge, path, Accept=accept)
            assert answer.status_code == 200, (browser, answer.text)
            types[browser] = answer.headers["content-type"]
            misses += answer.headers["x-cache"] == "MISS"
            image = pyvips.Image.new_from_buffer(answer.content, "")
            assert (image.width, image.height) == (200, 150)
    for browser, content_type in types.items():
        assert content_type in SHOWS.get(browser, {"image/jpeg"}), (browser, content_type)
    assert types["Chrome"] == "image/avif" and types["curl"] == "image/jpeg"
    # Two classes here (AVIF and WebP named; neither): at most three with WebP alone.
    assert misses == 2


def test_revalidation_at_the_edge_answers_304(edge: str, photo: str) -> None:
    path = signed(f"/rs:fit:100:100/cb:etag/plain/{photo}")
    first = get(edge, path, Accept=BROWSERS["curl"])
    etag = first.headers["etag"]
    again = get(edge, path, Accept=BROWSERS["curl"], **{"If-None-Match": etag})
    assert (again.status_code, again.headers["x-cache"], again.content) == (304, "HIT", b"")


def test_errors_are_cached_for_error_ttl_and_refusals_never_as_images(
    edge: str, origin: Origin
) -> None:
    missing = signed(f"/rs:fit:100:100/plain/{origin.base + '/cdn/missing.jpg'}")
    answers = [get(edge, missing) for _ in range(2)]
    assert [a.status_code for a in answers] == [404, 404]
    assert [a.headers["x-cache"] for a in answers] == ["MISS", "HIT"]
    time.sleep(ERROR_TTL + 1.5)  # behaviour after the lifetime, not a timing
    assert get(edge, missing).headers["x-cache"] == "MISS"
    refused = "/badsignature/rs:fit:100:100/plain/" + origin.base + "/cdn/photo.jpg"
    for _ in range(2):
        answer = get(edge, refused)
        assert answer.status_code == 403 and answer.headers["content-type"].startswith("text/")


def test_a_url_past_its_expiry_is_not_served_from_the_cache(edge: str, photo: str) -> None:
    # Six seconds of life: with two, a first answer slow on a loaded machine
    # left the edge a TTL of a second or less, and the second ask was a MISS.
    expires = int(time.time()) + 6
    path = signed(f"/rs:fit:100:100/exp:{expires}/plain/{photo}")
    assert get(edge, path).status_code == 200
    assert get(edge, path).headers["x-cache"] == "HIT"
    time.sleep(max(0.0, expires - time.time()) + 1.5)
    late = get(edge, path)
    assert late.status_code != 200 and not late.headers["content-type"].startswith("image/")


def test_the_request_id_passes_and_each_client_sees_its_own(edge: str, photo: str) -> None:
    path = signed(f"/rs:fit:90:90/cb:rid/plain/{photo}")
    first = get(edge, path, **{"X-Request-ID": "edge-test-1"})
    second = get(edge, path, **{"X-Request-ID": "edge-test-2"})
    assert first.headers["x-request-id"] == "edge-test-1"
    assert (second.headers["x-cache"], second.headers["x-request-id"]) == ("HIT", "edge-test-2")
    assert "surrogate-key" not in second.headers  # for the edge only


def test_a_ban_by_source_key_purges_every_variant(edge: str, photo: str) -> None:
    paths = [signed(f"/rs:fit:{w}:{w}/cb:ban/plain/{photo}") for w in (60, 70)]
    for path in paths:
        get(edge, path, Accept=BROWSERS["Chrome"])
        assert get(edge, path, Accept=BROWSERS["Chrome"]).headers["x-cache"] == "HIT"
    key = subprocess.run(
        [PIXELPIPE, "source-key", photo], capture_output=True, text=True, check=True
    ).stdout.strip()
    ban = httpx.request("BAN", edge + "/", headers={"Surrogate-Key": key})
    assert ban.status_code == 200, ban.text
    for path in paths:
        assert get(edge, path, Accept=BROWSERS["Chrome"]).headers["x-cache"] == "MISS"
    assert httpx.request("BAN", edge + "/", headers={"Surrogate-Key": "x; y"}).status_code == 400


def test_client_hints_are_rounded_at_the_edge_as_the_server_rounds_them(photo: str) -> None:
    """With ENABLE_CLIENT_HINTS the VCL rounds DPR and Width up to the
    server's steps before the cache looks: near-equal hints share one copy,
    and the copy is what pixelpipe makes of the rounded hint."""
    with varnish_in_front(SETTINGS | {"PIXELPIPE_ENABLE_CLIENT_HINTS": "true"}) as base:
        path = signed(f"/rs:fit:0:0/cb:hints/plain/{photo}")
        first = get(base, path, **{"Sec-CH-DPR": "1.2", "Sec-CH-Width": "151"})
        second = get(base, path, **{"Sec-CH-DPR": "1.4", "Sec-CH-Width": "190"})
        other = get(base, path, **{"Sec-CH-DPR": "1.6", "Sec-CH-Width": "190"})
    assert [a.headers["x-cache"] for a in (first, second, other)] == ["MISS", "HIT", "MISS"]
    # Width 151 -> 200 device pixels at DPR 1.5: 133 CSS pixels, times 1.5 = 200 wide.
    assert pyvips.Image.new_from_buffer(first.content, "").width == 200
