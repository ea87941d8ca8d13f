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
from tests.images import (
    close,
    encode,
    gradient,
    mean_abs_difference,
    pixel,
    solid,
    with_alpha,
    with_orientation,
)
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


def _exif_of(fmt: str, data: bytes, work: Path) -> dict[str, str]:
    """The result's EXIF as other programs read it: ImageMagick (through
    Debian's libheif) for HEIC; for JPEG XL, whose EXIF ImageMagick 6 cannot
    reach, the container's `Exif` box as jxlinfo lists it, read by Pillow."""
    if fmt == "heic":
        path = work / "meta.heic"
        path.write_bytes(data)
        names = ("Copyright", "ImageDescription", "Orientation")
        found = subprocess.run(
            ["identify", "-format", "|".join(f"%[EXIF:{name}]" for name in names), str(path)],
            capture_output=True,
            text=True,
        ).stdout.split("|")
        return {name: value for name, value in zip(names, found, strict=False) if value}
    path = work / "meta.jxl"
    path.write_bytes(data)
    if (
        'type: "Exif"'
        not in subprocess.run(["jxlinfo", "-v", str(path)], capture_output=True, text=True).stdout
    ):
        return {}
    from PIL import Image

    offset = 0
    while offset < len(data):  # ISO BMFF boxes: 32-bit size, 4-byte type
        size, kind = int.from_bytes(data[offset : offset + 4], "big"), data[offset + 4 : offset + 8]
        if kind == b"Exif":
            exif = Image.Exif()
            exif.load(data[offset + 12 : offset + size])  # after the 4-byte TIFF offset
            tags = {"Copyright": 0x8298, "ImageDescription": 0x010E, "Orientation": 0x0112}
            return {name: str(exif[tag]) for name, tag in tags.items() if tag in exif}
        offset += size
    raise AssertionError("jxlinfo listed an Exif box the container walk did not find")


@pytest.mark.parametrize("fmt", ["jxl", "heic"])
def test_metadata_follows_the_strip_settings(
    fmt: str, server: str, origin: Origin, tmp_path: Path
) -> None:
    """As for JPEG (test_metadata_is_stripped_but_copyright_kept): by default
    only the copyright survives; kcr:0 leaves no EXIF; sm:0 keeps it all, with
    orientation 1 for the pixels that were turned upright."""
    source = with_orientation(gradient(64, 48), 6).copy()
    for name, value in (
        ("exif-ifd0-Copyright", "ACME Cups 2026"),
        ("exif-ifd0-ImageDescription", "secret place"),
    ):
        source.set_type(pyvips.GValue.gstr_type, name, value)
    url = origin.add(f"/formats-out/meta-{fmt}.jpg", encode(source, "jpg"))

    def exif(options: str) -> dict[str, str]:
        answer = httpx.get(server + signed(f"{options}/plain/{url}@{fmt}"), timeout=60)
        assert answer.status_code == 200, answer.text
        assert (read_back(fmt, answer.content, tmp_path).width, fmt) == (48, fmt)
        return _exif_of(fmt, answer.content, tmp_path)

    assert exif("") == {"Copyright": "ACME Cups 2026"}
    assert exif("/kcr:0") == {}
    kept = exif("/sm:0")
    assert kept["ImageDescription"] == "secret place" and kept["Orientation"] == "1"


@pytest.mark.parametrize("fmt", ["jxl", "heic"])
def test_kept_colour_profile_keeps_the_colours(
    fmt: str, server: str, origin: Origin, tmp_path: Path
) -> None:
    """scp:0 keeps a Display P3 source's profile: HEIC carries it (heif-convert
    writes it into its PNG); JPEG XL, whose encoder here cannot write a
    profile, is converted to sRGB instead. Either way the colour is right."""
    p3 = solid(64, 64, (40, 200, 60)).icc_transform("p3")
    url = origin.add(f"/formats-out/p3-{fmt}.png", encode(p3, "png"))
    answer = httpx.get(server + signed(f"/scp:0/plain/{url}@{fmt}"), timeout=60)
    image = read_back(fmt, answer.content, tmp_path)
    if fmt == "heic":
        assert image.get("icc-profile-data") == p3.get("icc-profile-data")
        image = image.icc_transform("srgb", embedded=True, intent="relative")
    else:
        described = subprocess.run(
            ["jxlinfo", str(tmp_path / "result.jxl")], capture_output=True, text=True
        ).stdout
        assert "sRGB primaries" in described
    assert close(pixel(image, 32, 32)[:3], (40, 200, 60), 6)
