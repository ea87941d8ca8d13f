"""JPEG XL and HEIC results, read back by independent decoders (djxl, heif-convert).

Debian's tools are other builds than the libraries pixelpipe encodes with, so a
result that only pixelpipe's own decoders could read would fail here.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import pyvips

from tests.conftest import make_settings, signed
from tests.images import encode, gradient, mean_abs_difference, with_alpha
from tests.servers import Origin, serve_pixelpipe

DECODERS = {"jxl": "djxl", "heic": "heif-convert"}
MISSING = [tool for tool in DECODERS.values() if shutil.which(tool) is None]
pytestmark = pytest.mark.skipif(
    bool(MISSING),
    reason=f"{', '.join(MISSING)} not installed (make test installs libjxl-tools and "
    "libheif-examples): SKIPPING the JPEG XL and HEIC result tests",
)
CONTENT_TYPES = {"jxl": "image/jxl", "heic": "image/heif"}


def read_back(fmt: str, data: bytes, work: Path) -> pyvips.Image:
    encoded, decoded = work / f"result.{fmt}", work / f"result-{fmt}.png"
    encoded.write_bytes(data)
    subprocess.run([DECODERS[fmt], str(encoded), str(decoded)], check=True, capture_output=True)
    return pyvips.Image.new_from_file(str(decoded)).copy_memory()


@pytest.fixture(scope="module")
def sources(origin: Origin) -> dict[str, str]:
    return {
        "photo": origin.add("/formats-out/photo.png", encode(gradient(400, 300), "png")),
        "alpha": origin.add(
            "/formats-out/alpha.png", encode(with_alpha(gradient(400, 300), 100), "png")
        ),
    }


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with serve_pixelpipe(make_settings(auto_jxl=True, auto_avif=True)) as base:
        yield base


@pytest.mark.parametrize("fmt", ["jxl", "heic"])
@pytest.mark.parametrize("spelling", ["extension", "option"])
def test_results_decode_elsewhere_to_the_same_picture(
    fmt: str, spelling: str, server: str, sources: dict[str, str], tmp_path: Path
) -> None:
    path = (
        f"/rs:fit:200:200/plain/{sources['photo']}@{fmt}"
        if spelling == "extension"
        else f"/rs:fit:200:200/f:{fmt}/plain/{sources['photo']}"
    )
    answer = httpx.get(server + signed(path), timeout=60)
    assert answer.status_code == 200 and answer.headers["content-type"] == CONTENT_TYPES[fmt]
    image = read_back(fmt, answer.content, tmp_path)
    assert (image.width, image.height) == (200, 150)
    expected = pyvips.Image.thumbnail_buffer(encode(gradient(400, 300), "png"), 200)
    assert mean_abs_difference(image[:3], expected) < 3.0


@pytest.mark.parametrize("fmt", ["jxl", "heic"])
def test_alpha_survives(fmt: str, server: str, sources: dict[str, str], tmp_path: Path) -> None:
    answer = httpx.get(server + signed(f"/w:100/plain/{sources['alpha']}@{fmt}"), timeout=60)
    image = read_back(fmt, answer.content, tmp_path)
    assert image.bands == 4 and abs(image.extract_band(3).avg() - 100) < 2


@pytest.mark.parametrize("fmt", ["jxl", "heic"])
def test_quality_and_max_bytes_move_the_size(
    fmt: str, server: str, sources: dict[str, str]
) -> None:
    sizes = {
        quality: len(
            httpx.get(
                server + signed(f"/q:{quality}/plain/{sources['photo']}@{fmt}"), timeout=60
            ).content
        )
        for quality in (30, 90)
    }
    assert sizes[30] < sizes[90]
    budget = (sizes[30] + sizes[90]) // 2
    fitted = httpx.get(server + signed(f"/mb:{budget}/plain/{sources['photo']}@{fmt}"), timeout=60)
    assert len(fitted.content) <= budget and int(fitted.headers["x-pixelpipe-quality"]) < 90
    report = httpx.get(
        server + "/info" + signed(f"/q:90/plain/{sources['photo']}@{fmt}"), timeout=60
    ).json()
    assert report["result"]["format"] == fmt and report["result"]["bytes"] == sizes[90]
    assert report["result"]["ssim"] > 0.9


def test_accept_image_jxl_is_preferred_over_avif(server: str, sources: dict[str, str]) -> None:
    path = signed(f"/w:100/plain/{sources['photo']}")
    for accept, expected in (
        ("image/jxl,image/avif,image/webp,*/*", "image/jxl"),
        ("image/avif,image/webp,*/*", "image/avif"),
        ("image/webp,*/*", "image/png"),
    ):
        answer = httpx.get(server + path, headers={"accept": accept}, timeout=60)
        assert answer.headers["content-type"] == expected, accept
        assert "Accept" in answer.headers["vary"]
