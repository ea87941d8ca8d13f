"""The playground of `pixelpipe serve --dev` (what `make run` starts), in Debian's Chromium.

The real command, as a subprocess with no key in its environment (development
mode makes one up), driven by Playwright. Checked: the page loads and every
result image decodes; the bytes it shows are what /info reports for the URL
it shows, and change with the format and the quality; the copied URL fetched
directly gives the bytes the browser got; the quality sweep draws ten points;
Tab alone reaches every control. Screenshots go to test-artifacts/. And the
page never holds the key or salt; without development mode (a key and salt
set, as in the image and the chart) `/` and the playground's routes are 404.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import pyvips

from tests.conftest import make_settings
from tests.ports import free_port
from tests.servers import serve_pixelpipe, wait_until_serving
from tests.test_cli import PIXELPIPE, clean_env
from tests.test_gallery_browser import ARTIFACTS

ROOT = Path(__file__).resolve().parent.parent
CONTROLS = (
    "sample", "source-url", "resizing-type", "width", "height", "gravity", "format", "quality",
    "quality-auto", "max-bytes", "blur", "sharpen", "pixelate", "brightness", "contrast",
    "saturation", "monochrome", "duotone", "colorize", "colorize-colour", "gradient",
    "watermark-text", "unsharp", "url", "copy-url", "python", "run-sweep",
)  # fmt: skip
ROUTES = ("/", "/playground/app.js", "/playground/style.css", "/playground/samples")


class DevServer:
    def __init__(self, base: str, environ: dict[str, str]) -> None:
        self.base, self.environ = base, environ


@pytest.fixture(scope="module")
def dev_server() -> Iterator[DevServer]:
    port = free_port()
    process = subprocess.Popen(
        [PIXELPIPE, "serve", "--dev", "--port", str(port), "--workers", "1"],
        env=clean_env(PIXELPIPE_LOG_LEVEL="warning"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base, process)
        # The key development mode made up, read where only this machine's root can.
        raw = Path(f"/proc/{process.pid}/environ").read_bytes().split(b"\0")
        environ = dict(item.decode().split("=", 1) for item in raw if b"=" in item)
        yield DevServer(base, environ)
    finally:
        process.terminate()
        process.wait(timeout=30)


def number(text: str) -> int:
    return int(text.replace(",", ""))


def test_development_mode_made_up_a_key_and_serves_the_samples(dev_server: DevServer) -> None:
    assert len(dev_server.environ["PIXELPIPE_KEY"]) == 64
    samples = httpx.get(dev_server.base + "/playground/samples").json()
    assert {s["name"] for s in samples} >= {"kite.jpg", "kite-round.png", "jetty.jpg"}


def test_the_page_never_holds_the_key_or_salt(dev_server: DevServer) -> None:
    key, salt = dev_server.environ["PIXELPIPE_KEY"], dev_server.environ["PIXELPIPE_SALT"]
    signed = httpx.post(
        dev_server.base + "/playground/sign",
        json={"source": "local:///kite.jpg", "options": {"resize": ["fit", 200, 200]}},
    )
    for text in [httpx.get(dev_server.base + route).text for route in ROUTES] + [signed.text]:
        for secret in (key, salt, bytes.fromhex(key).decode("latin-1")):
            assert secret not in text


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"resize": ["fit", -5, 400]}, "width"),
        ({"quality": 101}, "quality"),
        ({"no_such_option": 1}, "no_such_option"),
    ],
)
def test_the_sign_endpoint_signs_only_what_the_grammar_accepts(
    dev_server: DevServer, options: dict[str, object], reason: str
) -> None:
    answer = httpx.post(
        dev_server.base + "/playground/sign",
        json={"source": "local:///kite.jpg", "options": options},
    )
    assert answer.status_code == 400
    assert reason in answer.json()["error"] and "\n" not in answer.json()["error"]
    assert httpx.get(dev_server.base + "/health").status_code == 200


def test_without_development_mode_the_playground_is_absent() -> None:
    # A key and salt set, no PIXELPIPE_PLAYGROUND: production, as the image and chart run.
    with serve_pixelpipe(make_settings()) as base, httpx.Client() as client:
        for route in ROUTES:
            assert client.get(base + route).status_code == 404, route
        answer = client.post(base + "/playground/sign", json={"source": "local:///x.jpg"})
        assert answer.status_code == 404
    # Neither the image nor the chart turns it on.
    for text in ((ROOT / "Dockerfile").read_text(), *_chart_texts()):
        assert "PLAYGROUND" not in text and "--dev" not in text


def _chart_texts() -> list[str]:
    return [p.read_text() for p in (ROOT / "helm").rglob("*") if p.is_file()]


def settled(page) -> None:  # type: ignore[no-untyped-def]
    """The page finished its update: four format rows, no status, every image decoded."""
    page.wait_for_function(
        "document.querySelectorAll('#format-rows tr').length === 4"
        " && document.getElementById('status').textContent === ''"
        " && Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)",
        timeout=90_000,
    )


def test_the_playground_in_chromium(dev_server: DevServer, chromium) -> None:  # type: ignore[no-untyped-def]
    base = dev_server.base
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    page = context.new_page()
    bodies: dict[str, bytes] = {}

    def keep(response) -> None:  # type: ignore[no-untyped-def]
        if "/plain/local:" in response.url and "/info/" not in response.url:
            bodies[response.url] = response.body()

    page.on("response", keep)
    page.goto(base + "/")
    settled(page)
    # Smaller results keep the /info measurements (SSIMULACRA2 each) quick.
    page.fill("#width", "320")
    page.fill("#height", "200")
    page.press("#height", "Tab")
    page.wait_for_function("document.getElementById('url').value.includes('/rs:fit:320:200/')")
    settled(page)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "playground-loaded.png"), full_page=True)

    seen: dict[str, int] = {}
    for fmt, quality in (("jpeg", None), ("webp", None), ("avif", None), ("avif", 30)):
        if quality is None:
            page.select_option("#format", fmt)
        else:
            # The keyboard moves the slider: from 80, fifty steps down.
            page.focus("#quality")
            for _ in range(50):
                page.keyboard.press("ArrowLeft")
        wanted = f"url.endsWith('@{fmt}')" + (
            f" && url.includes('/q:{quality}/')" if quality else ""
        )
        page.wait_for_function(f"(url => {wanted})(document.getElementById('url').value)")
        settled(page)
        url = page.input_value("#url")
        shown = number(page.text_content("#result-bytes") or "")
        path = url.removeprefix(base)
        report = httpx.get(base + "/info" + path, timeout=60).json()["result"]
        assert shown == report["bytes"], (fmt, quality)
        assert report["format"] == fmt
        direct = httpx.get(url, timeout=60).content
        assert len(direct) == shown and bodies[url] == direct
        seen[f"{fmt}-{quality}"] = shown
    assert len(set(seen.values())) == 4, seen  # every change changed the bytes
    assert seen["avif-30"] < seen["avif-None"]

    # The faces /info found are shown; a fit crops nothing, so none were looked
    # for. The object gravity goes into the URL.
    assert json.loads(page.get_attribute("#source-faces", "data-faces") or "0") is None
    assert (page.text_content("#source-faces") or "").startswith("Faces: not looked for")
    before = page.input_value("#url")
    page.select_option("#gravity", "obj:face")
    page.wait_for_function("document.getElementById('url').value.includes('/g:obj:face/')")
    settled(page)
    page.select_option("#gravity", "ce")
    page.wait_for_function(f"document.getElementById('url').value === {json.dumps(before)}")
    settled(page)

    # imgproxy Pro's adjustments go into the URL and into the picture: no colour left.
    page.fill("#saturation", "0")
    page.fill("#brightness", "30")
    page.press("#brightness", "Tab")
    page.wait_for_function(
        "(u => u.includes('/br:30/') && u.includes('/sa:0/'))(document.getElementById('url').value)"
    )
    settled(page)
    grey = pyvips.Image.new_from_buffer(httpx.get(page.input_value("#url"), timeout=60).content, "")
    assert (grey[0].cast("int") - grey[1].cast("int")).abs().avg() < 3
    page.fill("#saturation", "1")
    page.fill("#brightness", "0")
    page.press("#brightness", "Tab")
    settled(page)
    page.fill("#watermark-text", "<b>pp</b>")
    page.press("#watermark-text", "Tab")
    page.wait_for_function("document.getElementById('url').value.includes('/wmt:PGI-cHA8L2I-/')")
    settled(page)
    page.fill("#watermark-text", "")
    page.press("#watermark-text", "Tab")
    page.wait_for_function(f"document.getElementById('url').value === {json.dumps(before)}")
    settled(page)

    # The copy button copies the URL; fetched directly it gives the browser's bytes.
    page.click("#copy-url")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == page.input_value("#url")
    assert httpx.get(copied, timeout=60).content == bodies[copied]
    decoded = pyvips.Image.new_from_buffer(bodies[copied], "")
    assert decoded.get("vips-loader").startswith("heifload") and decoded.width == 320

    page.click("#run-sweep")
    page.wait_for_function("document.getElementById('sweep-chart').dataset.points", timeout=120_000)
    points = json.loads(page.get_attribute("#sweep-chart", "data-points") or "[]")
    assert [p["quality"] for p in points] == list(range(10, 101, 10))
    assert points[-1]["bytes"] > points[0]["bytes"] and points[-1]["ssim"] > points[0]["ssim"]
    page.screenshot(path=str(ARTIFACTS / "playground-sweep.png"), full_page=True)

    # Keyboard only: Tab from the top reaches every control.
    page.goto(base + "/")
    settled(page)
    reached = set()
    for _ in range(90):
        page.keyboard.press("Tab")
        reached.add(page.evaluate("document.activeElement.id"))
    assert set(CONTROLS) <= reached, set(CONTROLS) - reached
    context.close()


def test_make_run_with_your_own_pair_runs_the_snippet_it_shows() -> None:
    """`make run PORT=…` with the pair the snippet's comment says to export: the snippet runs."""
    from tests.conftest import KEY, SALT

    port = free_port()
    env = clean_env(PIXELPIPE_KEY=KEY, PIXELPIPE_SALT=SALT)
    make = subprocess.Popen(
        ["make", "--no-print-directory", "run", f"PORT={port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # make and the server it starts: one group to stop
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base, make, "/", timeout=120)
        options = {"resize": ["fill", 120, 80], "format": "webp"}
        answer = httpx.post(
            base + "/playground/sign", json={"source": "local:///kite.jpg", "options": options}
        ).json()
        snippet = answer["python"].replace("http://127.0.0.1:8080", base)
        assert "make run" in snippet and "export PIXELPIPE_KEY" in snippet
        made = subprocess.run(
            [
                os.path.join(os.path.dirname(PIXELPIPE), "python"),
                "-c",
                snippet.replace("images.url(", "print(images.url(") + ")",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert made == base + answer["path"]
        image = httpx.get(made, timeout=60)
        assert image.status_code == 200 and image.headers["content-type"] == "image/webp"
        decoded = pyvips.Image.new_from_buffer(image.content, "")
        assert (decoded.width, decoded.height) == (120, 80)
    finally:
        os.killpg(make.pid, 15)
        make.wait(timeout=30)
