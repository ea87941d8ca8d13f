"""Sources in HEIC, JPEG XL, BMP and ICO, written by independent encoders.

The files are made by Debian's tools, never by pixelpipe or the libraries it
decodes with: ImageMagick for BMP and ICO (a top-down BMP is written byte by
byte here, as ImageMagick writes bottom-up only), libheif's `heif-enc` (x265)
for HEIC, libjxl's `cjxl` for JPEG XL. Pixels are compared with the image
the file was made from (lossless formats: exactly or nearly; lossy: within a
stated tolerance), and JPEG XL also with libjxl's own `djxl` decode.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import pyvips

from tests.conftest import make_settings, signed
from tests.heif_boxes import with_irot
from tests.images import (
    close,
    decode,
    gradient,
    loader_format,
    mean_abs_difference,
    pixel,
    solid,
    with_alpha,
    with_orientation,
)
from tests.servers import Origin, serve_pixelpipe

IMAGEMAGICK = "/usr/bin/convert"  # Debian's; /usr/local/bin/convert may be a stand-in
TOOLS = {
    "convert": IMAGEMAGICK,
    "heif-enc": "heif-enc",
    "heif-convert": "heif-convert",
    "cjxl": "cjxl",
    "djxl": "djxl",
}
MISSING = [name for name, path in TOOLS.items() if shutil.which(path) is None]
pytestmark = pytest.mark.skipif(
    bool(MISSING),
    reason=f"{', '.join(MISSING)} not installed (make test installs imagemagick, "
    "libheif-examples, libjxl-tools): SKIPPING the source format tests",
)


def run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=120)


def photo(width: int = 160, height: int = 120) -> pyvips.Image:
    """A smooth image with detail in one corner: what lossy encoders keep well."""
    return gradient(width, height)


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every test file, by name, written by the independent encoders."""
    work = tmp_path_factory.mktemp("formats")
    files: dict[str, Path] = {}
    source = work / "source.png"
    photo().pngsave(str(source))
    alpha = work / "alpha.png"
    with_alpha(photo(), 128).pngsave(str(alpha))
    deep = work / "deep.png"
    (photo().cast("ushort") * 257).copy(interpretation="rgb16").pngsave(str(deep), bitdepth=16)
    few = work / "few.png"  # 16 colours: palette formats keep them exactly
    (photo() // 64 * 64).cast("uchar").pngsave(str(few))
    two = work / "two.png"
    (photo()[0] > 128).ifthenelse(255, 0).cast("uchar").pngsave(str(two))

    def make(name: str, *command: str) -> None:
        """Run `command` with OUT standing for the file's path."""
        files[name] = work / name
        run(*(part.replace("OUT", str(files[name])) for part in command))

    make("24.bmp", IMAGEMAGICK, str(source), "BMP3:OUT")
    make("32.bmp", IMAGEMAGICK, str(alpha), "-define", "bmp:format=bmp4", "OUT")
    make("8.bmp", IMAGEMAGICK, str(few), "-type", "Palette", "BMP3:OUT")
    make("rle8.bmp", IMAGEMAGICK, str(few), "-type", "Palette", "-compress", "RLE", "BMP3:OUT")
    make("1.bmp", IMAGEMAGICK, str(two), "-monochrome", "BMP3:OUT")
    make("16.bmp", IMAGEMAGICK, str(source), "-define", "bmp:subtype=RGB565", "OUT")
    make("a.ico", IMAGEMAGICK, str(source), "-define", "icon:auto-resize=16,48,256", "OUT")
    make("q90.heic", "heif-enc", "-q", "90", str(source), "-o", "OUT")
    make("alpha.heic", "heif-enc", "-q", "90", str(alpha), "-o", "OUT")
    make("10bit.heic", "heif-enc", "-q", "90", str(deep), "-o", "OUT")
    make("lossy.jxl", "cjxl", str(source), "OUT", "-d", "1")
    make("lossless.jxl", "cjxl", str(source), "OUT", "-d", "0")
    make("alpha.jxl", "cjxl", str(alpha), "OUT", "-d", "0")
    # Display P3 colours: decoded right only if the profile comes along.
    p3 = work / "p3.png"
    solid(64, 48, (40, 200, 60)).icc_transform(
        "p3", input_profile="srgb", intent="relative"
    ).pngsave(str(p3))
    make("p3-lossy.jxl", "cjxl", str(p3), "OUT", "-d", "1")
    make("p3-lossless.jxl", "cjxl", str(p3), "OUT", "-d", "0")
    make("p3.heic", "heif-enc", "-L", str(p3), "-o", "OUT")
    # EXIF orientation 6 (a quarter turn clockwise) on a JPEG, the way cameras write it.
    turned = work / "turned.jpg"
    with_orientation(marked(), 6).jpegsave(str(turned), Q=95)
    make("turned.jxl", "cjxl", str(turned), "OUT")  # lossless JPEG transcode
    make("turned-pixels.jxl", "cjxl", str(turned), "OUT", "--lossless_jpeg=0", "-d", "1")
    make("turned.heic", "heif-enc", "-q", "90", str(turned), "-o", "OUT")
    # The same picture turned by HEIF's own box: heif-enc's file of the
    # unturned picture with an `irot` added by hand (no tool here writes one).
    upright = work / "marked.png"
    marked().pngsave(str(upright))
    make("marked.heic", "heif-enc", "-q", "90", str(upright), "-o", "OUT")
    files["irot.heic"] = work / "irot.heic"
    files["irot.heic"].write_bytes(with_irot(files["marked.heic"].read_bytes(), 3))
    # Three frames of 100, 200 and 300 ms: ImageMagick's GIF, then cjxl (which
    # writes "loop forever" whatever the GIF said, as libjxl's jxlinfo shows).
    make(
        "frames.gif", IMAGEMAGICK, "-size", "48x32",
        "-delay", "10", "xc:#ff0000", "-delay", "20", "xc:#00ff00", "-delay", "30", "xc:#0000ff",
        "-loop", "0", "OUT",
    )  # fmt: skip
    make("animated.jxl", "cjxl", str(files["frames.gif"]), "OUT", "-d", "0")
    files["topdown.bmp"] = work / "topdown.bmp"
    files["topdown.bmp"].write_bytes(top_down_bmp(photo()))
    files |= {"source.png": source, "alpha.png": alpha, "few.png": few, "two.png": two}
    files["p3.png"] = p3
    return files


def marked() -> pyvips.Image:
    """60x40 red with a blue 10x10 block in the top-left corner."""
    return solid(60, 40, (255, 0, 0)).insert(solid(10, 10, (0, 0, 255)), 0, 0)


def top_down_bmp(image: pyvips.Image) -> bytes:
    """A 24-bit BMP whose rows run top to bottom (negative height), by hand."""
    width, height = image.width, image.height
    stride = (width * 3 + 3) // 4 * 4
    rows = bytearray()
    memory = image.write_to_memory()
    for y in range(height):
        row = memory[y * width * 3 : (y + 1) * width * 3]
        bgr = bytearray(row)
        bgr[0::3], bgr[2::3] = row[2::3], row[0::3]
        rows += bgr + b"\0" * (stride - width * 3)
    info = struct.pack("<IiiHHIIiiII", 40, width, -height, 1, 24, 0, len(rows), 2835, 2835, 0, 0)
    header = struct.pack("<2sIHHI", b"BM", 14 + len(info) + len(rows), 0, 0, 14 + len(info))
    return header + info + bytes(rows)


@pytest.fixture(scope="module")
def served(made: dict[str, Path], origin: Origin) -> Callable[[str], str]:
    for name, path in made.items():
        origin.add(f"/formats-in/{name}", path.read_bytes(), "application/octet-stream")
    return lambda name: f"{origin.base}/formats-in/{name}"


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with serve_pixelpipe(make_settings()) as base:
        yield base


def fetch(server: str, path: str) -> pyvips.Image:
    answer = httpx.get(server + signed(path), timeout=60)
    assert answer.status_code == 200, answer.text
    return decode(answer.content)


def reference(made: dict[str, Path], name: str) -> pyvips.Image:
    return pyvips.Image.new_from_file(str(made[name]))


@pytest.mark.parametrize(
    ("name", "truth", "tolerance"),
    [
        ("24.bmp", "source.png", 0.01),
        ("topdown.bmp", "source.png", 0.01),
        ("8.bmp", "few.png", 0.01),
        ("rle8.bmp", "few.png", 0.01),
        ("1.bmp", "two.png", 0.01),
        ("16.bmp", "source.png", 4.0),  # 5-6-5 bits per channel
        ("q90.heic", "source.png", 3.0),
        ("10bit.heic", "source.png", 3.0),
        ("lossy.jxl", "source.png", 2.0),
        ("lossless.jxl", "source.png", 0.01),
    ],
)
def test_pixels_match_the_image_the_file_was_made_from(
    server: str, served: Callable[[str], str], made: dict[str, Path], name: str, truth: str,
    tolerance: float,
) -> None:  # fmt: skip
    result = fetch(server, f"/plain/{served(name)}@png")
    expected = reference(made, truth)
    assert (result.width, result.height) == (expected.width, expected.height)
    if expected.bands == 1:
        result = result.colourspace("b-w")[0]
    assert mean_abs_difference(result[: expected.bands], expected) <= tolerance


@pytest.mark.parametrize("name", ["32.bmp", "alpha.heic", "alpha.jxl"])
def test_alpha_is_kept(
    server: str, served: Callable[[str], str], made: dict[str, Path], name: str
) -> None:
    result = fetch(server, f"/plain/{served(name)}@png")
    assert result.hasalpha() and result.bands == 4
    expected = reference(made, "alpha.png")
    assert abs(pixel(result, 10, 10)[3] - 128) <= 2
    tolerance = 0.01 if name != "alpha.heic" else 3.0
    assert mean_abs_difference(result, expected) <= tolerance


def test_jpeg_xl_agrees_with_libjxls_own_decoder(
    server: str, served: Callable[[str], str], made: dict[str, Path], tmp_path: Path
) -> None:
    decoded = tmp_path / "djxl.png"
    run("djxl", str(made["lossy.jxl"]), str(decoded))
    result = fetch(server, f"/plain/{served('lossy.jxl')}@png")
    assert mean_abs_difference(result, pyvips.Image.new_from_file(str(decoded))[:3]) <= 1.0


def test_ico_gives_its_largest_entry(
    server: str, served: Callable[[str], str], made: dict[str, Path]
) -> None:
    largest = fetch(server, f"/plain/{served('a.ico')}@png")
    assert (largest.width, largest.height) == (256, 256)  # ImageMagick stores it as PNG
    resized = fetch(server, f"/rs:fit:64:64/plain/{served('a.ico')}@webp")
    assert (resized.width, resized.height, loader_format(resized)) == (64, 64, "webp")


@pytest.mark.parametrize("name", ["q90.heic", "lossy.jxl", "24.bmp", "a.ico"])
def test_resized_and_reencoded(
    server: str, served: Callable[[str], str], made: dict[str, Path], name: str
) -> None:
    result = fetch(server, f"/rs:fill:80:40/plain/{served(name)}@jpg")
    assert (result.width, result.height, loader_format(result)) == (80, 40, "jpeg")
    default = httpx.get(server + signed(f"/w:50/plain/{served(name)}"), timeout=60)
    # No format asked: the first preferred format that fits (JPEG, or PNG for alpha).
    assert default.headers["content-type"] in ("image/jpeg", "image/png")


@pytest.mark.parametrize("name", ["q90.heic", "lossy.jxl", "24.bmp", "a.ico"])
def test_truncated_and_corrupt_files_are_422(
    server: str, made: dict[str, Path], origin: Origin, name: str
) -> None:
    data = made[name].read_bytes()
    broken = {
        "truncated": data[: len(data) // 2],
        "corrupt": data[:40] + bytes(255 - b for b in data[40:200]) + data[200:],
        "header-only": data[:30],
    }
    with httpx.Client(timeout=60) as client:
        for kind, body in broken.items():
            url = origin.add(f"/formats-in/broken/{kind}/{name}", body)
            answer = client.get(server + signed(f"/w:40/plain/{url}@png"))
            assert answer.status_code in (200, 422), (kind, answer.status_code, answer.text)
            if answer.status_code == 422:
                assert answer.text.count("\n") == 1
        assert client.get(server + signed(f"/w:40/plain/{origin.base}/formats-in/{name}@png"))


def test_resolution_limit_applies_before_decoding(
    made: dict[str, Path], origin: Origin, tmp_path: Path
) -> None:
    # 4 MP of one colour in a few hundred bytes, against a 1 MP limit.
    flat = tmp_path / "flat.png"
    pyvips.Image.black(2000, 2000).add(90).cast("uchar").bandjoin(
        [pyvips.Image.black(2000, 2000)] * 2
    ).pngsave(str(flat))
    run("heif-enc", "-q", "50", str(flat), "-o", str(tmp_path / "bomb.heic"))
    run("cjxl", str(flat), str(tmp_path / "bomb.jxl"), "-d", "3")
    run(IMAGEMAGICK, str(flat), "BMP3:" + str(tmp_path / "bomb.bmp"))
    with (
        serve_pixelpipe(make_settings(max_src_resolution=1.0)) as base,
        httpx.Client(timeout=60) as client,
    ):
        for name in ("bomb.heic", "bomb.jxl", "bomb.bmp"):
            url = origin.add(f"/formats-in/{name}", (tmp_path / name).read_bytes())
            answer = client.get(base + signed(f"/w:10/plain/{url}"))
            assert (answer.status_code, answer.text) == (
                422,
                "source image resolution is too large\n",
            )
        assert client.get(base + "/health").status_code == 200


@pytest.mark.parametrize(
    ("name", "tolerance"), [("p3-lossy.jxl", 3.0), ("p3-lossless.jxl", 1.0), ("p3.heic", 1.0)]
)
def test_colour_profiles_are_applied(
    server: str, served: Callable[[str], str], made: dict[str, Path], name: str, tolerance: float
) -> None:
    """A Display P3 source comes out in sRGB with the colours it had: what
    pyvips makes of the PNG it was encoded from (the colour was sRGB
    (40, 200, 60) before it went to P3)."""
    result = fetch(server, f"/plain/{served(name)}@png")
    expected = reference(made, "p3.png").icc_transform("srgb", intent="relative")
    assert mean_abs_difference(result[:3], expected) <= tolerance
    assert close(pixel(result, 20, 20)[:3], (40, 200, 60), 4)


@pytest.mark.parametrize("name", ["turned.jxl", "turned-pixels.jxl"])
def test_jpeg_xl_orientation_is_applied(
    server: str, served: Callable[[str], str], name: str
) -> None:
    """cjxl moves the JPEG's EXIF orientation into the codestream; the result
    is upright: 40x60 with the blue block now in the top-right corner."""
    result = fetch(server, f"/plain/{served(name)}@png")
    assert (result.width, result.height) == (40, 60)
    assert close(pixel(result, 35, 4), (0, 0, 255), 40)
    assert close(pixel(result, 4, 4), (255, 0, 0), 40)
    resized = fetch(server, f"/rs:fit:20:20/plain/{served(name)}@png")
    assert (resized.width, resized.height) == (13, 20)


def test_heic_exif_orientation_is_information_only(
    server: str, served: Callable[[str], str]
) -> None:
    """HEIF turns pictures with its own boxes (irot, imir), which libheif
    applies; the EXIF orientation inside is descriptive only (ISO/IEC
    23008-12), so libvips and browsers leave it, and so do we. heif-enc kept
    the JPEG's EXIF (orientation 6) without turning the picture: it stays as
    stored, and a result that keeps metadata carries no orientation to turn
    it twice."""
    result = fetch(server, f"/sm:0/plain/{served('turned.heic')}@jpg")
    assert (result.width, result.height) == (60, 40)
    assert close(pixel(result, 4, 4), (0, 0, 255), 40)
    fields = result.get_fields()
    assert "exif-data" in fields  # the metadata was kept ...
    assert result.get("orientation") == 1  # ... but not the turn


def test_heic_irot_box_turns_the_picture(
    server: str, served: Callable[[str], str], made: dict[str, Path], tmp_path: Path
) -> None:
    """irot 3 (three anticlockwise quarter turns: EXIF's 6) turns the 60x40
    picture upright, as libheif's heif-convert decodes it: 40x60 with the blue
    block top-right. Sizes are planned on the turned picture, and a result
    that keeps metadata says no other orientation."""
    reference_png = tmp_path / "irot.png"
    run("heif-convert", str(made["irot.heic"]), str(reference_png))
    expected = pyvips.Image.new_from_file(str(reference_png))
    assert (expected.width, expected.height) == (40, 60)
    result = fetch(server, f"/sm:0/plain/{served('irot.heic')}@png")
    assert (result.width, result.height) == (40, 60)
    assert close(pixel(result, 35, 4), (0, 0, 255), 40)
    assert mean_abs_difference(result[:3], expected[:3]) <= 3.0
    if "orientation" in result.get_fields():
        assert result.get("orientation") == 1
    resized = fetch(server, f"/rs:fit:20:20/plain/{served('irot.heic')}@png")
    assert (resized.width, resized.height) == (13, 20)
    report = httpx.get(server + "/info" + signed(f"/plain/{served('irot.heic')}"), timeout=60)
    assert (report.json()["source"]["width"], report.json()["source"]["height"]) == (40, 60)


def test_animated_jpeg_xl_keeps_its_frames_and_delays(
    server: str, served: Callable[[str], str]
) -> None:
    answer = httpx.get(server + signed(f"/rs:fit:24:24/plain/{served('animated.jxl')}@webp"))
    assert answer.status_code == 200, answer.text
    result = pyvips.Image.new_from_buffer(answer.content, "", n=-1)
    assert result.get("n-pages") == 3 and result.get("page-height") == 16
    assert (result.width, result.height) == (24, 48)
    assert list(result.get("delay")) == [100, 200, 300]
    assert result.get("loop") == 0
    for frame, colour in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255)]):
        assert close(pixel(result, 12, frame * 16 + 8)[:3], colour, 4)
    # No format asked: the first preferred format that animates (GIF).
    default = httpx.get(server + signed(f"/plain/{served('animated.jxl')}"))
    assert default.headers["content-type"] == "image/gif"
    assert pyvips.Image.new_from_buffer(default.content, "", n=-1).get("n-pages") == 3
    # A still format: the first frame.
    still = fetch(server, f"/plain/{served('animated.jxl')}@png")
    assert (still.width, still.height) == (48, 32)
    assert close(pixel(still, 10, 10)[:3], (255, 0, 0), 4)


def test_animated_jpeg_xl_follows_the_animation_limits(
    made: dict[str, Path], origin: Origin
) -> None:
    """MAX_ANIMATION_FRAMES below the frame count: the first frame only, as for
    a GIF; a source limit below all frames' pixels (3 x 48 x 32) refuses it."""
    url = origin.add("/formats-in/limits/animated.jxl", made["animated.jxl"].read_bytes())
    with serve_pixelpipe(make_settings(max_animation_frames=2)) as base:
        answer = httpx.get(base + signed(f"/plain/{url}@webp"), timeout=60)
        assert answer.status_code == 200, answer.text
        result = pyvips.Image.new_from_buffer(answer.content, "", n=-1)
        assert (result.width, result.height) == (48, 32)
    with serve_pixelpipe(make_settings(max_src_resolution=0.004)) as base:
        answer = httpx.get(base + signed(f"/plain/{url}@webp"), timeout=60)
        assert (answer.status_code, answer.text) == (422, "source image resolution is too large\n")
