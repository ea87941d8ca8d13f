"""The example gallery in a real browser: Debian's Chromium, driven by Playwright.

pixelpipe serves generated photos from a local folder; examples/gallery/build.py
writes the page; a plain HTTP server on loopback serves it; headless Chromium
opens it at two viewport widths. Checked: every image loads, the browser took
the AVIF <source> (it accepts AVIF) and the response was AVIF, the srcset
candidate it chose fits the viewport, and the page keeps its layout (width and
height attributes). A screenshot per viewport goes to test-artifacts/.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import KEY, SALT, make_settings
from tests.images import encode, gradient, quadrants
from tests.servers import serve_pixelpipe

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
WIDTHS = (320, 480, 640, 960, 1280, 1600)
# Flags for a sandboxed machine with no network but loopback (see the Chromium docs).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is installed by make test")
pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM),
    reason="Chromium is not installed (make test installs Debian's chromium): SKIPPING",
)


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def gallery(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    images = tmp_path_factory.mktemp("photos")
    (images / "a-landscape.jpg").write_bytes(encode(gradient(1600, 1000), "jpg"))
    (images / "b-square.png").write_bytes(encode(quadrants(1200, 1200), "png"))
    (images / "c-portrait.jpg").write_bytes(encode(gradient(800, 1200), "jpg"))
    site = tmp_path_factory.mktemp("site")
    with serve_pixelpipe(make_settings(local_filesystem_root=str(images))) as base:
        subprocess.run(
            [sys.executable, str(ROOT / "examples" / "gallery" / "build.py"),
             "--images", str(images), "--base", base, "--out", str(site / "index.html")],
            env=os.environ | {"PIXELPIPE_KEY": KEY, "PIXELPIPE_SALT": SALT},
            check=True, capture_output=True,
        )  # fmt: skip
        handler = functools.partial(QuietHandler, directory=str(site))
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
        finally:
            server.shutdown()
            server.server_close()


def expected_candidate(css_width: float, density: float = 1.0) -> int:
    """The smallest candidate at least as wide as the device pixels to fill."""
    need = css_width * density
    return min((w for w in WIDTHS if w >= need), default=WIDTHS[-1])


@pytest.mark.parametrize("viewport_width", [400, 1200])
def test_gallery_in_chromium(gallery: str, viewport_width: int) -> None:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(
                viewport={"width": viewport_width, "height": 800}, device_scale_factor=1
            )
            page = context.new_page()
            image_types: dict[str, str] = {}
            page.on(
                "response",
                lambda response: (
                    image_types.__setitem__(response.url, response.headers.get("content-type", ""))
                    if "/plain/local:" in response.url
                    else None
                ),
            )
            page.goto(gallery)
            # Before any image arrives the boxes already have their final size.
            boxes = page.eval_on_selector_all(
                "img", "els => els.map(e => [e.getBoundingClientRect().height, e.clientWidth])"
            )
            # Lazy images load as they come into view: scroll each one in.
            for index in range(len(boxes)):
                page.locator("img").nth(index).scroll_into_view_if_needed()
            page.wait_for_function(
                "Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)",
                timeout=60_000,
            )
            loaded = page.eval_on_selector_all(
                "img",
                "els => els.map(e => ({src: e.currentSrc, natural: e.naturalWidth, "
                "width: e.clientWidth, height: e.getBoundingClientRect().height}))",
            )
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"gallery-{viewport_width}.png"), full_page=True)
        finally:
            browser.close()

    assert len(loaded) == 3
    for before, image in zip(boxes, loaded, strict=True):
        assert image["natural"] > 0, image
        # The chosen source is the AVIF one, and the server answered AVIF.
        assert image["src"].endswith("@avif"), image["src"]
        assert image_types[image["src"]] == "image/avif"
        # The candidate fits the viewport: the smallest width covering the layout width.
        chosen = int(re.search(r"/w:(\d+)/", image["src"]).group(1))  # type: ignore[union-attr]
        assert chosen == expected_candidate(image["width"]), (chosen, image["width"])
        # No layout shift: the box had its final height before the image loaded.
        assert abs(before[0] - image["height"]) < 1, (before, image)
    assert (ARTIFACTS / f"gallery-{viewport_width}.png").stat().st_size > 0
