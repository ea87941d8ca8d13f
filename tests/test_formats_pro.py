"""What only imgproxy Pro reads: PDF pages, PSD composites, video frames, each behind its switch.

Test files come from independent writers: PDFs written here object by object
(a filled rectangle per page, so the expected colours are exact), PSD by
ImageMagick, video by Debian's FFmpeg (libx264). Each is read only when its
setting is on (set through the environment as a user would, for one of them
through `pixelpipe serve`); off, it is a 422 that names the setting.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import pyvips

from proxy.settings import Settings
from tests.conftest import make_settings, signed
from tests.images import close, decode, mean_abs_difference, pixel
from tests.ports import free_port
from tests.servers import Origin, serve_pixelpipe
from tests.soak import pixelpipe_process
from tests.test_cli import PIXELPIPE, serve_env

IMAGEMAGICK = "/usr/bin/convert"
RED, BLUE, GREEN = (255, 0, 0), (0, 0, 255), (0, 200, 0)


def pdf(pages: list[tuple[int, int, tuple[int, int, int]]]) -> bytes:
    """A PDF whose pages (width and height in points) are each filled with one colour."""
    objects = ["<< /Type /Catalog /Pages 2 0 R >>"]
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(len(pages)))
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>")
    for i, (width, height, colour) in enumerate(pages):
        rgb = " ".join(f"{c / 255:.3f}" for c in colour)
        content = f"{rgb} rg 0 0 {width} {height} re f"
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {width} {height}] "
            f"/Contents {4 + 2 * i} 0 R >>"
        )
        objects.append(f"<< /Length {len(content)} >>\nstream\n{content}\nendstream")
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\n".encode()
    return out + f"startxref\n{xref}\n%%EOF\n".encode()


def dng(width: int, height: int, red_left: bool = True) -> bytes:
    """A DNG written by pidng (not LibRaw): an RGGB mosaic, red on the left, blue on the right."""
    import tempfile

    import numpy as np
    from pidng.core import RAW2DNG, DNGTags, Tag
    from pidng.defs import (
        CalibrationIlluminant,
        CFAPattern,
        DNGVersion,
        Orientation,
        PhotometricInterpretation,
    )

    mosaic = np.full((height, width), 200, dtype=np.uint16)
    half = width // 2
    mosaic[0::2, 0:half:2] = 3800 if red_left else 200  # red sites, left half
    mosaic[1::2, half + 1 :: 2] = 3800  # blue sites, right half
    tags = DNGTags()
    for tag, value in (
        (Tag.ImageWidth, width),
        (Tag.ImageLength, height),
        (Tag.TileWidth, width),
        (Tag.TileLength, height),
        (Tag.Orientation, Orientation.Horizontal),
        (Tag.PhotometricInterpretation, PhotometricInterpretation.Color_Filter_Array),
        (Tag.SamplesPerPixel, 1),
        (Tag.BitsPerSample, 16),
        (Tag.CFARepeatPatternDim, [2, 2]),
        (Tag.CFAPattern, CFAPattern.RGGB),
        (Tag.BlackLevel, 0),
        (Tag.WhiteLevel, 4095),
        (
            Tag.ColorMatrix1,
            [[1, 1], [0, 1], [0, 1], [0, 1], [1, 1], [0, 1], [0, 1], [0, 1], [1, 1]],
        ),
        (Tag.CalibrationIlluminant1, CalibrationIlluminant.D65),
        (Tag.AsShotNeutral, [[1, 1], [1, 1], [1, 1]]),
        (Tag.Make, "Test"),
        (Tag.Model, "Mosaic"),
        (Tag.DNGVersion, DNGVersion.V1_4),
        (Tag.DNGBackwardVersion, DNGVersion.V1_2),
    ):
        tags.set(tag, value)
    with tempfile.TemporaryDirectory() as work:
        writer = RAW2DNG()
        writer.options(tags, path="", compress=False)
        writer.convert(mosaic, filename=f"{work}/mosaic")
        return Path(f"{work}/mosaic.dng").read_bytes()


REFERENCES: dict[str, pyvips.Image] = {}


@pytest.fixture(scope="module")
def sources(origin: Origin, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    work = tmp_path_factory.mktemp("pro")
    made = {
        "two.pdf": pdf([(200, 100, RED), (100, 300, BLUE)]),
        "bomb.pdf": pdf([(20000, 20000, RED)]),
        "mosaic.dng": dng(256, 192),
    }
    if Path(IMAGEMAGICK).exists():
        pyvips.Image.black(80, 60).add(GREEN).cast("uchar").pngsave(str(work / "g.png"))
        subprocess.run([IMAGEMAGICK, str(work / "g.png"), str(work / "g.psd")], check=True)
        made["g.psd"] = (work / "g.psd").read_bytes()
        subprocess.run([IMAGEMAGICK, str(work / "g.png"), str(work / "plain.tif")], check=True)
        made["plain.tif"] = (work / "plain.tif").read_bytes()
    if shutil.which("ffmpeg"):
        # Red for the first second, blue after: which frame was taken shows.
        subprocess.run(
            ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=red:s=160x120:d=1:r=10",
             "-f", "lavfi", "-i", "color=blue:s=160x120:d=2:r=10",
             "-filter_complex", "[0:v][1:v]concat=n=2:v=1", "-c:v", "libx264",
             "-pix_fmt", "yuv420p", str(work / "clip.mp4")],
            check=True,
        )  # fmt: skip
        made["clip.mp4"] = (work / "clip.mp4").read_bytes()
        subprocess.run(
            ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=red:s=7680x4320:d=0.1:r=10",
             "-c:v", "libx264", "-preset", "ultrafast", str(work / "8k.mp4")],
            check=True,
        )  # fmt: skip
        made["8k.mp4"] = (work / "8k.mp4").read_bytes()
        # A phone held upright: landscape frames and a display matrix turning
        # them; FFmpeg's own frame (it turns by the matrix) is the reference.
        for command in (
            ["-f", "lavfi", "-i", "testsrc=s=96x64:d=2:r=10", "-c:v", "libx264",
             "-pix_fmt", "yuv420p", str(work / "flat.mp4")],
            ["-i", str(work / "flat.mp4"), "-metadata:s:v", "rotate=90", "-c", "copy",
             str(work / "upright.mp4")],
            ["-ss", "1", "-i", str(work / "upright.mp4"), "-frames:v", "1",
             str(work / "upright.png")],
        ):  # fmt: skip
            subprocess.run(["ffmpeg", "-v", "error", *command], check=True)
        made["upright.mp4"] = (work / "upright.mp4").read_bytes()
        REFERENCES["upright.png"] = pyvips.Image.new_from_file(str(work / "upright.png"))
    return {name: origin.add(f"/pro/{name}", body) for name, body in made.items()}


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    switched = Settings.from_env(
        {"PIXELPIPE_ENABLE_PDF": "true", "PIXELPIPE_ENABLE_PSD": "true",
         "PIXELPIPE_ENABLE_RAW": "true", "IMGPROXY_ENABLE_VIDEO_THUMBNAILS": "true"}
    )  # fmt: skip
    settings = make_settings(
        enable_pdf=switched.enable_pdf,
        enable_psd=switched.enable_psd,
        enable_raw=switched.enable_raw,
        enable_video_thumbnails=switched.enable_video_thumbnails,
    )
    with serve_pixelpipe(settings) as base:
        yield base


def get(server: str, path: str) -> httpx.Response:
    return httpx.get(server + signed(path), timeout=60)


def test_pdf_pages_are_chosen_from_zero_and_drawn_at_the_size_needed(
    server: str, sources: dict[str, str]
) -> None:
    first = decode(get(server, f"/plain/{sources['two.pdf']}@png").content)
    assert (first.width, first.height) == (200, 100) and close(pixel(first, 100, 50), RED)
    second = decode(get(server, f"/pg:1/plain/{sources['two.pdf']}@png").content)
    assert (second.width, second.height) == (100, 300) and close(pixel(second, 50, 150), BLUE)
    # Drawn at the result's size: 1000 px wide without `enlarge`, edges sharp.
    large = decode(get(server, f"/page:0/rs:fit:1000:0/plain/{sources['two.pdf']}@png").content)
    assert (large.width, large.height) == (1000, 500) and close(pixel(large, 999, 499), RED)
    missing = get(server, f"/pg:2/plain/{sources['two.pdf']}")
    assert (missing.status_code, missing.text) == (
        422,
        "source PDF has 2 pages (page counts from 0)\n",
    )


def test_a_huge_pdf_page_is_refused_before_drawing(server: str, sources: dict[str, str]) -> None:
    # 20000x20000 pt: 400 megapixels at 72 dpi, counted against MAX_SRC_RESOLUTION
    # from the page's size alone, whatever size is asked.
    for path in ("/plain/{}@png", "/rs:fit:100:100/plain/{}@png"):
        answer = get(server, path.format(sources["bomb.pdf"]))
        assert (answer.status_code, answer.text) == (422, "source image resolution is too large\n")
    assert httpx.get(server + "/health").status_code == 200


def test_a_crop_enlarged_from_a_pdf_page_is_bounded_by_the_page_drawn(
    server: str, sources: dict[str, str]
) -> None:
    """The page is drawn whole at the scale the result needs: 10x10 pt cut from
    the 200x100 pt page and filled to 1000x1000 would draw it at 100x (200 MP;
    it took 3.6 GB and 8 s before it was refused). A crop whose page is drawn
    under 50 MP is answered, sharp."""
    url = sources["two.pdf"]
    for path in (
        f"/c:10:10:nowe/rs:fill:1000:1000/el:1/plain/{url}@png",
        f"/c:10:10/w:1000/el:1/plain/{url}@png",
    ):
        answer = get(server, path)
        assert (answer.status_code, answer.text) == (422, "source page would be drawn too large\n")
    drawn = get(server, f"/c:100:50:nowe/rs:fill:2000:1000/el:1/plain/{url}@png")
    assert drawn.status_code == 200, drawn.text
    image = decode(drawn.content)
    assert (image.width, image.height) == (2000, 1000) and close(pixel(image, 1999, 999), RED)
    assert httpx.get(server + "/health").status_code == 200


def test_psd_gives_its_composite(server: str, sources: dict[str, str]) -> None:
    if "g.psd" not in sources:
        pytest.skip("ImageMagick is not installed (make test installs it): SKIPPING")
    image = decode(get(server, f"/rs:fit:40:40/plain/{sources['g.psd']}@png").content)
    assert (image.width, image.height) == (40, 30) and close(pixel(image, 20, 15), GREEN)


def test_camera_raw_is_developed(server: str, sources: dict[str, str]) -> None:
    image = decode(get(server, f"/plain/{sources['mosaic.dng']}@png").content)
    assert (image.width, image.height) == (256, 192)
    left, right = pixel(image, 60, 96), pixel(image, 196, 96)
    assert left[0] > 2 * max(left[1], left[2]), left  # red where the red sites were lit
    assert right[2] > 2 * max(right[0], right[1]), right  # blue on the right
    if "plain.tif" in sources:  # a TIFF that is a picture is still libvips', not LibRaw's
        tiff = decode(get(server, f"/w:40/plain/{sources['plain.tif']}@png").content)
        assert tiff.width == 40 and close(pixel(tiff, 20, 15), GREEN)


def test_video_frame_at_the_asked_second(server: str, sources: dict[str, str]) -> None:
    if "clip.mp4" not in sources:
        pytest.skip("ffmpeg is not installed (make test installs it): SKIPPING")
    default = decode(get(server, f"/plain/{sources['clip.mp4']}@png").content)  # second 1
    assert (default.width, default.height) == (160, 120)
    assert close(pixel(default, 80, 60), BLUE, tolerance=30)
    start = decode(get(server, f"/vts:0/plain/{sources['clip.mp4']}@png").content)
    assert close(pixel(start, 80, 60), RED, tolerance=30)
    beyond = decode(
        get(server, f"/video_thumbnail_second:60/plain/{sources['clip.mp4']}@png").content
    )
    assert close(pixel(beyond, 80, 60), BLUE, tolerance=30)  # shorter: the last frame
    huge = get(server, f"/plain/{sources['8k.mp4']}@png")
    assert (huge.status_code, huge.text) == (422, "source image resolution is too large\n")


def test_video_display_matrix_is_applied(server: str, sources: dict[str, str]) -> None:
    if "upright.mp4" not in sources:
        pytest.skip("ffmpeg is not installed (make test installs it): SKIPPING")
    expected = REFERENCES["upright.png"]
    assert (expected.width, expected.height) == (64, 96)
    result = decode(get(server, f"/plain/{sources['upright.mp4']}@png").content)
    assert (result.width, result.height) == (64, 96)
    assert mean_abs_difference(result, expected[:3]) <= 3.0
    fitted = decode(get(server, f"/rs:fit:32:32/plain/{sources['upright.mp4']}@png").content)
    assert (fitted.width, fitted.height) == (21, 32)


def test_each_is_off_unless_switched_on(origin: Origin, sources: dict[str, str]) -> None:
    port = free_port()
    env = serve_env()
    with pixelpipe_process(PIXELPIPE, env, port, workers=1), httpx.Client(timeout=60) as client:
        base = f"http://127.0.0.1:{port}"
        for name, setting in (
            ("two.pdf", "ENABLE_PDF"),
            ("g.psd", "ENABLE_PSD"),
            ("mosaic.dng", "ENABLE_RAW"),
            ("clip.mp4", "ENABLE_VIDEO_THUMBNAILS"),
        ):
            if name not in sources:
                continue
            answer = client.get(base + signed(f"/plain/{sources[name]}@png"))
            assert answer.status_code == 422 and f"PIXELPIPE_{setting}" in answer.text
            # Nor is the document ever passed through.
            raw = client.get(base + signed(f"/raw:1/plain/{sources[name]}"))
            assert raw.status_code == 422
