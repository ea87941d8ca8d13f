"""End to end: signed URL -> uvicorn -> origin on loopback -> libvips -> image.

Every result is decoded and checked as an image: size, format, alpha and
pixels, against known colours or against the same operation done directly
with pyvips.
"""

from __future__ import annotations

import base64
import io
import itertools

import httpx
import pytest
import pyvips

from tests.conftest import signed
from tests.images import (
    BLUE,
    GREEN,
    RED,
    WHITE,
    YELLOW,
    close,
    decode,
    encode,
    gradient,
    loader_format,
    mean_abs_difference,
    photo_like,
    pixel,
    png16,
    quadrants,
    solid,
    with_alpha,
    with_orientation,
)
from tests.servers import Origin

_names = itertools.count()


def serve(origin: Origin, data: bytes, content_type: str = "image/png") -> str:
    return origin.add(f"/img/{next(_names)}", data, content_type)


def fetch(client: httpx.Client, base: str, path: str) -> httpx.Response:
    response = client.get(base + signed(path))
    assert response.status_code == 200, response.text
    return response


@pytest.fixture(scope="module")
def quad_url(origin: Origin) -> str:
    return serve(origin, encode(quadrants(400, 300), "png"))


@pytest.mark.parametrize(
    ("options", "size"),
    [
        ("rs:fit:200:200", (200, 150)),
        ("rs:fill:200:200", (200, 200)),
        ("rs:fill-down:800:100", (400, 50)),
        ("rs:fill-down:100:800", (38, 300)),
        ("rs:force:100:250", (100, 250)),
        ("rs:auto:300:100", (300, 100)),
        ("rs:auto:100:300", (100, 75)),
        ("resize:fit:800:800", (400, 300)),
        ("rs:fit:800:800:1", (800, 600)),
        ("rs:fit:800:800/el:1", (800, 600)),
        ("rs:fit:800:800:0:1", (800, 800)),
        ("s:100", (100, 75)),
        ("size:0:60", (80, 60)),
        ("w:100", (100, 75)),
        ("width:100/height:100/rt:fill", (100, 100)),
        ("h:30", (40, 30)),
        ("w:100/mw:200", (100, 150)),
        ("min-height:150/w:100", (100, 150)),
        ("z:0.5", (200, 150)),
        ("zoom:0.5:0.25", (200, 75)),
        ("rs:fit:100:100/dpr:2", (200, 150)),
        ("rs:fit:300:300/dpr:3", (400, 300)),
        ("c:100:50", (100, 50)),
        ("crop:0.5:0.5", (200, 150)),
        ("c:200:0/rs:fit:100:100", (67, 100)),
        ("rs:fit:500:500/ex:1", (500, 500)),
        ("rs:fit:500:200/extend:1:nowe", (500, 200)),
    ],
)
def test_geometry(
    client: httpx.Client, pixelpipe: str, quad_url: str, options: str, size: tuple[int, int]
) -> None:
    image = decode(fetch(client, pixelpipe, f"/{options}/plain/{quad_url}@png").content)
    assert (image.width, image.height) == size


@pytest.mark.parametrize(
    ("options", "top_left", "bottom_right"),
    [
        ("rs:fill:100:300/g:we", RED, BLUE),
        ("rs:fill:100:300/g:ea", GREEN, YELLOW),
        ("rs:fill:400:100/g:no", RED, GREEN),
        ("rs:fill:400:100/g:so", BLUE, YELLOW),
        ("rs:fill:100:300/g:fp:0:0.5", RED, BLUE),
        ("rs:fill:100:300/g:fp:1:0.5", GREEN, YELLOW),
        ("rs:fill:100:300/g:we:200:0", GREEN, YELLOW),
        ("rs:fill:100:300/g:we:0.5:0", GREEN, YELLOW),
        ("rs:fill:400:100/g:no:0:0.5", BLUE, YELLOW),
        ("c:100:100:nowe:200:150", YELLOW, YELLOW),
        ("c:100:100:nowe", RED, RED),
        ("c:100:100:soea", YELLOW, YELLOW),
        ("c:0.5:0.5:noea", GREEN, GREEN),
        ("g:sowe/c:100:100", BLUE, BLUE),
        ("c:100:100:fp:1:0", GREEN, GREEN),
    ],
)
def test_gravity_picks_the_right_region(
    client: httpx.Client,
    pixelpipe: str,
    quad_url: str,
    options: str,
    top_left: tuple[int, int, int],
    bottom_right: tuple[int, int, int],
) -> None:
    image = decode(fetch(client, pixelpipe, f"/{options}/plain/{quad_url}@png").content)
    assert close(pixel(image, 2, 2), top_left)
    assert close(pixel(image, image.width - 3, image.height - 3), bottom_right)


def test_smart_gravity_finds_the_detailed_part(
    client: httpx.Client, pixelpipe: str, origin: Origin
) -> None:
    flat = solid(300, 200, (128, 128, 128))
    busy = gradient(80, 200).colourspace("b-w").colourspace("srgb")
    checker = (
        ((__import__("pyvips").Image.xyz(80, 200)[0] // 4 % 2) * 255)
        .bandjoin([busy[1], busy[2]])
        .cast("uchar")
        .copy(interpretation="srgb")
    )
    source = flat.insert(checker, 220, 0)
    url = serve(origin, encode(source, "png"))
    image = decode(fetch(client, pixelpipe, f"/rs:fill:100:200/g:sm/plain/{url}@png").content)
    assert (image.width, image.height) == (100, 200)
    assert image.deviate() > 40  # the checkerboard, not the flat grey


def test_resize_matches_pyvips_directly(
    client: httpx.Client, pixelpipe: str, origin: Origin
) -> None:
    source = gradient(640, 480)
    url = serve(origin, encode(source, "png"))
    image = decode(fetch(client, pixelpipe, f"/rs:fit:320:320/plain/{url}@png").content)
    expected = source.resize(0.5)
    assert (image.width, image.height) == (expected.width, expected.height)
    assert mean_abs_difference(image, expected) < 1.0


def test_crop_and_resize_match_pyvips_directly(
    client: httpx.Client, pixelpipe: str, origin: Origin
) -> None:
    source = gradient(640, 480)
    url = serve(origin, encode(source, "png"))
    image = decode(
        fetch(client, pixelpipe, f"/c:320:240:nowe/rs:fit:160:160/plain/{url}@png").content
    )
    expected = source.crop(0, 0, 320, 240).resize(0.5)
    assert mean_abs_difference(image, expected) < 1.0


def test_jpeg_shrink_on_load_gives_the_same_picture(
    client: httpx.Client, pixelpipe: str, origin: Origin
) -> None:
    source = gradient(2000, 1200)
    url = serve(origin, encode(source, "jpg", Q=95), "image/jpeg")
    image = decode(fetch(client, pixelpipe, f"/rs:fit:200:200/plain/{url}@png").content)
    assert (image.width, image.height) == (200, 120)
    assert mean_abs_difference(image, source.resize(0.1)) < 3.0


@pytest.mark.parametrize(
    ("fmt", "loader"),
    [
        ("jpg", "jpeg"),
        ("jpeg", "jpeg"),
        ("png", "png"),
        ("webp", "webp"),
        ("avif", "avif"),
        ("gif", "gif"),
    ],
)
def test_output_formats(
    client: httpx.Client, pixelpipe: str, quad_url: str, fmt: str, loader: str
) -> None:
    for path in (
        f"/rs:fit:100:100/f:{fmt}/plain/{quad_url}",
        f"/rs:fit:100:100/plain/{quad_url}@{fmt}",
    ):
        response = fetch(client, pixelpipe, path)
        image = decode(response.content)
        assert loader_format(image) == loader
        assert response.headers["content-type"] == f"image/{loader}"
        assert (image.width, image.height) == (100, 75)
        assert close(pixel(image, 10, 10), RED, tolerance=40)


@pytest.mark.parametrize(
    ("fmt", "content_type", "default_out"),
    [
        ("jpg", "image/jpeg", "jpeg"),
        ("png", "image/png", "png"),
        # imgproxy's PREFERRED_FORMATS default (jpeg,png,gif) decides the rest.
        ("webp", "image/webp", "jpeg"),
        ("avif", "image/avif", "jpeg"),
        ("gif", "image/gif", "gif"),
        ("tif", "image/tiff", "jpeg"),  # TIFF is read, not written: JPEG by default
    ],
)
def test_input_formats_and_default_output(
    client: httpx.Client,
    pixelpipe: str,
    origin: Origin,
    fmt: str,
    content_type: str,
    default_out: str,
) -> None:
    url = serve(origin, encode(quadrants(200, 100), fmt), content_type)
    response = fetch(client, pixelpipe, f"/rs:fit:100:100/plain/{url}")
    image = decode(response.content)
    assert loader_format(image) == default_out
    assert (image.width, image.height) == (100, 50)
    assert close(pixel(image, 5, 5), RED, tolerance=40)
    assert close(pixel(image, 94, 44), YELLOW, tolerance=40)


def test_alpha_is_kept_where_the_format_has_it(
    client: httpx.Client, pixelpipe: str, origin: Origin
) -> None:
    half = solid(100, 100, RED).join(solid(100, 100, BLUE), "horizontal")
    alpha = solid(100, 100, (255,)).join(solid(100, 100, (0,)), "horizontal")
    url = serve(origin, encode(half.bandjoin(alpha).copy(interpretation="srgb"), "png"))
    for fmt in ("png", "webp", "avif"):
        image = decode(fetch(client, pixelpipe, f"/rs:fit:100:100/plain/{url}@{fmt}").content)
        assert image.hasalpha(), fmt
        assert close(pixel(image, 10, 25), (*RED, 255), tolerance=30), fmt
        assert pixel(image, 90, 25)[3] < 10, fmt


def test_alpha_is_flattened_onto_white_for_jpeg(
    client: httpx.Client, pixelpipe: str, origin: Origin
) -> None:
    url = serve(origin, encode(with_alpha(solid(100, 100, RED), 0), "png"))
    image = decode(fetch(client, pixelpipe, f"/plain/{url}@jpg").content)
    assert not image.hasalpha() and image.bands == 3
    assert close(pixel(image, 50, 50), WHITE)


def test_extend_fills_with_transparency_or_white(
    client: httpx.Client, pixelpipe: str, origin: Origin
) -> None:
    url = serve(origin, encode(solid(100, 50, RED), "png"))
    png = decode(fetch(client, pixelpipe, f"/rs:fit:200:200/ex:1/plain/{url}@png").content)
    assert (png.width, png.height) == (200, 200)
    assert pixel(png, 5, 5)[3] == 0
    assert close(pixel(png, 100, 100), (*RED, 255))
    jpg = decode(fetch(client, pixelpipe, f"/rs:fit:200:200/ex:1:so/plain/{url}@jpg").content)
    assert close(pixel(jpg, 100, 5), WHITE)
    assert close(pixel(jpg, 100, 195), RED, tolerance=30)


def test_auto_rotate_turns_exif_6_upright(
    client: httpx.Client, pixelpipe: str, origin: Origin
) -> None:
    stored = solid(100, 50, RED).join(solid(100, 50, BLUE), "horizontal")  # 200x50
    url = serve(origin, encode(with_orientation(stored, 6), "jpg", Q=95), "image/jpeg")
    upright = decode(fetch(client, pixelpipe, f"/plain/{url}@png").content)
    assert (upright.width, upright.height) == (50, 200)
    assert close(pixel(upright, 25, 20), RED, tolerance=30)
    assert close(pixel(upright, 25, 180), BLUE, tolerance=30)
    assert "orientation" not in upright.get_fields()
    as_stored = decode(fetch(client, pixelpipe, f"/ar:0/plain/{url}@png").content)
    assert (as_stored.width, as_stored.height) == (200, 50)
    sized = decode(fetch(client, pixelpipe, f"/rs:fill:25:50/plain/{url}@png").content)
    assert (sized.width, sized.height) == (25, 50)


def test_quality_changes_jpeg_bytes(client: httpx.Client, pixelpipe: str, origin: Origin) -> None:
    url = serve(origin, encode(gradient(400, 300), "png"))
    sizes = {
        q: len(fetch(client, pixelpipe, f"/q:{q}/plain/{url}@jpg").content) for q in (10, 50, 95)
    }
    assert sizes[10] < sizes[50] < sizes[95]
    by_format_quality = fetch(client, pixelpipe, f"/fq:jpeg:10/plain/{url}@jpg").content
    assert len(by_format_quality) == sizes[10]


def _with_metadata(image_fields: dict[str, str]) -> bytes:
    image = gradient(64, 64).copy()
    for name, value in image_fields.items():
        image.set_type(__import__("pyvips").GValue.gstr_type, name, value)
    return encode(image, "jpg")


def test_metadata_is_stripped_but_copyright_kept(
    client: httpx.Client, pixelpipe: str, origin: Origin
) -> None:
    source = _with_metadata(
        {"exif-ifd0-Copyright": "ACME Cups 2026", "exif-ifd0-ImageDescription": "secret place"}
    )
    assert "exif-ifd0-ImageDescription" in decode(source).get_fields()
    url = serve(origin, source, "image/jpeg")
    default = decode(fetch(client, pixelpipe, f"/plain/{url}@jpg").content)
    assert "ACME Cups 2026" in str(default.get("exif-ifd0-Copyright"))
    assert "exif-ifd0-ImageDescription" not in default.get_fields()
    no_copyright = decode(fetch(client, pixelpipe, f"/kcr:0/plain/{url}@jpg").content)
    assert "exif-data" not in no_copyright.get_fields()
    kept = decode(fetch(client, pixelpipe, f"/sm:0/plain/{url}@jpg").content)
    assert "secret place" in str(kept.get("exif-ifd0-ImageDescription"))


def test_colour_profile_is_converted_or_kept(
    client: httpx.Client, pixelpipe: str, origin: Origin
) -> None:
    p3 = solid(64, 64, (200, 60, 40)).icc_transform("p3")
    assert "icc-profile-data" in p3.get_fields()
    url = serve(origin, encode(p3, "jpg", Q=95), "image/jpeg")
    stripped = decode(fetch(client, pixelpipe, f"/plain/{url}@png").content)
    assert "icc-profile-data" not in stripped.get_fields()
    assert close(pixel(stripped, 32, 32), (200, 60, 40), tolerance=6)
    kept = decode(fetch(client, pixelpipe, f"/scp:0/plain/{url}@png").content)
    assert "icc-profile-data" in kept.get_fields()


def test_a_panorama_fills_a_square_larger_than_its_height(
    client: httpx.Client, pixelpipe: str, origin: Origin
) -> None:
    """12000x400 filling 600x600 is scaled to 18000x600 and cut: the side limit
    (16383) is the result's, not this canvas's. The canvas still counts
    against the 50 megapixels, and a result past the side limit is refused."""
    panorama = photo_like(12000, 400, 11)
    url = serve(origin, encode(panorama, "jpg", Q=95), "image/jpeg")
    for options in ("rs:fill:600:600/el:1", "rs:fill:600:600/el:1/g:ea"):
        image = decode(fetch(client, pixelpipe, f"/{options}/plain/{url}@png").content)
        assert (image.width, image.height) == (600, 600)
        scaled = decode(encode(panorama, "jpg", Q=95)).resize(1.5, kernel="lanczos3")
        left = scaled.width - 600 if options.endswith("g:ea") else (scaled.width - 600) // 2
        reference = scaled.crop(left, 0, 600, 600)
        assert mean_abs_difference(image, reference) < 3, options
    too_wide = client.get(pixelpipe + signed(f"/rs:fill:17000:600/el:1/plain/{url}"))
    assert (too_wide.status_code, too_wide.text) == (422, "result image would be too large\n")
    # 2000x2000 cut from a canvas of 60000x2000: 120 megapixels built.
    too_many = client.get(pixelpipe + signed(f"/rs:fill:2000:2000/el:1/plain/{url}"))
    assert (too_many.status_code, too_many.text) == (422, "result image would be too large\n")
    assert fetch(client, pixelpipe, f"/rs:fit:100:100/plain/{url}").status_code == 200


@pytest.mark.parametrize("extension", ["png", "jpg"])
def test_a_16_bit_source_with_a_colour_profile_is_processed_in_8_bits(
    client: httpx.Client, pixelpipe: str, origin: Origin, extension: str
) -> None:
    """libvips' profile transform keeps 16 bits; the steps count in bytes, so a
    16-bit PNG in Display P3 came out white where it was padded or brightened."""
    colour = (200, 60, 40)
    p3 = solid(1, 1, colour).icc_transform("p3", depth=16)
    values = tuple(int(v) for v in p3(0, 0))
    half = extension == "png"  # half transparent; a JPEG has no alpha
    rgba = (*values, 32768 if half else 65535)
    url = serve(origin, png16(200, 200, rgba, p3.get("icc-profile-data")))
    options = "rs:fit:160:160/pd:20/br:0/sa:1" + ("" if half else "/bg:00ff00")
    image = decode(fetch(client, pixelpipe, f"/{options}/plain/{url}@{extension}").content)
    assert (image.width, image.height, image.format) == (200, 200, "uchar")
    if half:  # the alpha is scaled to 8 bits, not clipped to opaque
        assert close(pixel(image, 100, 100), (*colour, 128), tolerance=3), pixel(image, 100, 100)
        assert pixel(image, 5, 5)[3] == 0  # padding is transparent without a background
    else:
        assert close(pixel(image, 100, 100), colour, tolerance=8), pixel(image, 100, 100)
        assert close(pixel(image, 5, 5), GREEN, tolerance=8), pixel(image, 5, 5)


def test_an_animation_with_a_colour_profile_is_converted_in_every_frame(
    client: httpx.Client, pixelpipe: str, origin: Origin
) -> None:
    """Display P3 frames in an animated WebP written by Pillow: every frame
    comes out in sRGB (the profile is converted once over all the frames)."""
    from PIL import Image

    colours = [(200, 60, 40), (40, 160, 90), (60, 70, 210)]
    p3 = [solid(32, 32, colour).icc_transform("p3") for colour in colours]
    profile = p3[0].get("icc-profile-data")
    pictures = [Image.frombytes("RGB", (32, 32), frame.write_to_memory()) for frame in p3]
    out = io.BytesIO()
    pictures[0].save(
        out,
        "WEBP",
        save_all=True,
        append_images=pictures[1:],
        duration=100,
        lossless=True,
        icc_profile=profile,
    )
    url = serve(origin, out.getvalue(), "image/webp")
    response = fetch(client, pixelpipe, f"/rs:fit:16:16/plain/{url}@webp")
    image = pyvips.Image.new_from_buffer(response.content, "", n=-1)
    assert image.get("n-pages") == 3 and "icc-profile-data" not in image.get_fields()
    for index, colour in enumerate(colours):
        assert close(pixel(image, 8, 16 * index + 8), colour, tolerance=8), index
    kept = fetch(client, pixelpipe, f"/scp:0/rs:fit:16:16/plain/{url}@webp").content
    assert "icc-profile-data" in pyvips.Image.new_from_buffer(kept, "", n=-1).get_fields()


def test_base64_source_url_split_into_pieces(
    client: httpx.Client, pixelpipe: str, quad_url: str
) -> None:
    encoded = base64.urlsafe_b64encode(quad_url.encode()).rstrip(b"=").decode()
    pieces = "/".join(encoded[i : i + 16] for i in range(0, len(encoded), 16))
    image = decode(fetch(client, pixelpipe, f"/rs:fill:100:100/g:nowe/{pieces}.png").content)
    assert (image.width, image.height) == (100, 100)
    assert loader_format(image) == "png"
    assert close(pixel(image, 10, 10), RED)
