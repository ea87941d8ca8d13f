"""thumbor's URL dialect: the grammar, signing, routing beside imgproxy's, and a
cross-check of URLs against real thumbor 7.8 on loopback.

Pixels are compared as the mean absolute difference per channel (0-255) of
the two decoded results: at most 3.0. Both servers resample with a Lanczos
kernel but not the same one (PIL's against libvips' shrink-on-load plus
lanczos3) and encode JPEG independently at quality 80; those alone measure
0.3-1.1 here. Blur, sharpen and fill measure up to ~2.3: thumbor truncates
its Gaussian at the radius, and its sharpen has an amount imgproxy's lacks.
A wrong crop, alignment, flip or rotation measures 20 and more.
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Iterator

import httpx
import pytest
from libthumbor import CryptoURL

from proxy.errors import InvalidOptionArgument, InvalidURL, UnknownOption
from proxy.options.model import GravityType, ResizingType
from proxy.options.parse import ParserConfig
from proxy.options.thumbor import looks_like_thumbor, parse_thumbor
from signing.thumbor import thumbor_signature, thumbor_url, thumbor_verify
from tests.conftest import make_settings, signed
from tests.images import decode, encode, mean_abs_difference, photo_like, quadrants, with_alpha
from tests.servers import Origin, serve_pixelpipe
from tests.thumbor_server import THUMBOR_KEY, thumbor_server

CONFIG = ParserConfig()
_names = itertools.count()
THRESHOLD = 3.0


def parse(path: str):  # type: ignore[no-untyped-def]
    return parse_thumbor(path, CONFIG).options


# --- the grammar -----------------------------------------------------------------


def test_sizes_fit_and_alignment_become_imgproxy_options() -> None:
    crop = parse("300x200/left/top/example.com/a.jpg")
    assert crop.source_url == "http://example.com/a.jpg"
    assert (crop.resizing_type, crop.width, crop.height) == (ResizingType.FILL, 300, 200)
    assert crop.gravity.type is GravityType.NORTH_WEST and crop.enlarge
    fit = parse("fit-in/300x200/https%3A%2F%2Fexample.com%2Fa.jpg")
    assert fit.source_url == "https://example.com/a.jpg"
    assert fit.resizing_type is ResizingType.FIT and not fit.enlarge
    flipped = parse("-300x-200/example.com/a.jpg")
    assert flipped.flip_horizontal and flipped.flip_vertical
    manual = parse("10x20:110x70/example.com/a.jpg")
    assert (manual.crop.width, manual.crop.height) == (100, 50)
    assert manual.crop.gravity is not None and (manual.crop.gravity.x, manual.crop.gravity.y) == (
        10,
        20,
    )
    assert parse("300x200/smart/example.com/a.jpg").gravity.type is GravityType.SMART


def test_filters_become_imgproxy_options() -> None:
    options = parse(
        "fit-in/300x200/filters:quality(55):format(webp):blur(4):fill(red):"
        "strip_icc():max_bytes(9000):upscale()/example.com/a.jpg"
    )
    assert options.quality == 55 and options.format == "webp" and options.blur == 4
    assert options.background == (255, 0, 0) and options.extend
    assert options.strip_color_profile and options.max_bytes == 9000 and options.enlarge
    assert parse("300x200/filters:stretch()/a.jpg").resizing_type is ResizingType.FORCE
    assert parse("300x200/filters:no_upscale()/a.jpg").enlarge is False
    assert parse("300x200/filters:proportion(0.5)/a.jpg").zoom_x == 0.5
    coloured = parse("300x200/filters:brightness(20):grayscale():rgb(1,-2,3)/a.jpg")
    assert coloured.adjustments == (("brightness", (20,)), ("grayscale", ()), ("rgb", (1, -2, 3)))
    assert "adj:brightness(20):grayscale():rgb(1,-2,3)" in coloured.canonical()
    turned = parse("300x200/left/top/filters:rotate(90)/a.jpg")
    assert (turned.width, turned.height, turned.rotate) == (200, 300, 270)
    # The source turns a quarter counter-clockwise: its top-left corner is now bottom-left.
    assert turned.gravity.type is GravityType.SOUTH_WEST


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("300x200/filters:nope()/a.jpg", UnknownOption),
        ("300x200/filters:watermark(a.png,left,0,0)/a.jpg", InvalidOptionArgument),
        ("300x200/filters:watermark(a.png,0,0,101)/a.jpg", InvalidOptionArgument),
        ("300x200/filters:round_corner(1|2|3,0,0,0)/a.jpg", InvalidOptionArgument),
        ("300x200/filters:brightness(101)/a.jpg", InvalidOptionArgument),
        ("300x200/filters:rgb(1,2)/a.jpg", InvalidOptionArgument),
        ("300x200/filters:grayscale(1)/a.jpg", InvalidOptionArgument),
        ("300x200/filters:quality(abc)/a.jpg", InvalidOptionArgument),
        ("300x200/filters:quality(500)/a.jpg", InvalidOptionArgument),
        ("300x200/filters:quality(1,2)/a.jpg", InvalidOptionArgument),
        ("300x200/filters:format(bmp)/a.jpg", InvalidOptionArgument),
        ("300x200/filters:fill(notacolour)/a.jpg", InvalidOptionArgument),
        ("300x200/filters:blur(0)/a.jpg", InvalidOptionArgument),
        ("fit-in/a.jpg", InvalidURL),
        ("10x10:50x50/300x200/filters:rotate(90)/a.jpg", InvalidOptionArgument),
        ("origx100/filters:rotate(90)/a.jpg", InvalidOptionArgument),
        ("300x200/filters:focal(10x10)/a.jpg", InvalidOptionArgument),
        ("300x200/filters:focal(50x50:10x10)/a.jpg", InvalidOptionArgument),
        ("trim/10x10:50x50/300x200/a.jpg", InvalidOptionArgument),
        ("trim:500/300x200/a.jpg", InvalidOptionArgument),
    ],
)
def test_bad_thumbor_urls_are_refused_with_a_reason(path: str, error: type) -> None:
    with pytest.raises(error) as caught:
        parse(path)
    assert caught.value.status == 404 and "\n" not in caught.value.reason


def test_signatures_match_libthumbor() -> None:
    crypto = CryptoURL(key=THUMBOR_KEY)
    built = crypto.generate(
        width=300, height=200, smart=True, filters=["quality(70)"], image_url="example.com/a.jpg"
    )
    signature, _, path = built.lstrip("/").partition("/")
    assert thumbor_verify(signature, path, THUMBOR_KEY)
    assert not thumbor_verify(signature, path + "x", THUMBOR_KEY)
    assert thumbor_url(path, THUMBOR_KEY) == built
    assert len(thumbor_signature(path, THUMBOR_KEY)) == 28
    assert looks_like_thumbor(built) and looks_like_thumbor("/unsafe/300x200/a.jpg")
    assert not looks_like_thumbor(signed("/rs:fit:10:10/plain/http://a/b.jpg"))


# --- served beside imgproxy's dialect ----------------------------------------------


@pytest.fixture(scope="module")
def photo(origin: Origin) -> str:
    """A 640x480 JPEG on the test origin, as thumbor's loaders name it (no scheme)."""
    url = origin.add("/thumbor/photo.jpg", encode(photo_like(640, 480, 3), "jpg", Q=92))
    return url.removeprefix("http://")


@pytest.fixture(scope="module")
def both(photo: str) -> Iterator[tuple[str, str]]:
    settings = make_settings(thumbor_key=THUMBOR_KEY)
    with thumbor_server() as thumbor, serve_pixelpipe(settings) as pixelpipe:
        yield thumbor, pixelpipe


def thumbor_path(path: str) -> str:
    return thumbor_url(path, THUMBOR_KEY)


def test_libthumbor_urls_and_imgproxy_urls_on_one_server(
    client: httpx.Client, origin: Origin, photo: str
) -> None:
    with serve_pixelpipe(make_settings(thumbor_key=THUMBOR_KEY)) as base:
        built = CryptoURL(key=THUMBOR_KEY).generate(width=120, height=80, image_url=photo)
        answer = client.get(base + built)
        assert answer.status_code == 200 and decode(answer.content).width == 120
        imgproxy = client.get(base + signed(f"/rs:fit:50:50/plain/http://{photo}"))
        assert imgproxy.status_code == 200 and decode(imgproxy.content).width == 50
        wrong = client.get(base + "/" + "A" * 27 + f"=/120x80/{photo}")
        assert wrong.status_code == 403 and wrong.text.strip() == "invalid signature"
        unsafe = client.get(base + f"/unsafe/120x80/{photo}")
        assert unsafe.status_code == 403
        assert unsafe.text.strip() == "unsigned thumbor URLs are not allowed"
        bad = client.get(base + thumbor_path(f"120x80/filters:sepia()/{photo}"))
        assert bad.status_code == 404
        assert bad.text.strip() == "unknown or unsupported thumbor filter: sepia"
        assert client.get(base + built).status_code == 200  # still serving


def test_a_path_both_dialects_read_is_imgproxys(client: httpx.Client, photo: str) -> None:
    """Unsigned imgproxy and unsafe thumbor on: `/unsafe/<base64>` is imgproxy's base64 source."""
    settings = make_settings(keys=(), salts=(), thumbor_allow_unsafe=True)
    source = base64.urlsafe_b64encode(f"http://{photo}".encode()).decode().rstrip("=")
    with serve_pixelpipe(settings) as base:
        as_imgproxy = client.get(f"{base}/unsafe/rs:fit:40:40/{source}")
        assert as_imgproxy.status_code == 200 and decode(as_imgproxy.content).width == 40
        plain = client.get(f"{base}/unsafe/{source}")
        assert plain.status_code == 200 and decode(plain.content).width == 640
        as_thumbor = client.get(f"{base}/unsafe/fit-in/40x40/{photo}")
        assert as_thumbor.status_code == 200 and decode(as_thumbor.content).width == 40


def test_prefix_keeps_thumbor_urls_apart(client: httpx.Client, photo: str) -> None:
    settings = make_settings(thumbor_allow_unsafe=True, thumbor_prefix="/thumbor")
    with serve_pixelpipe(settings) as base:
        assert client.get(f"{base}/thumbor/unsafe/60x40/{photo}").status_code == 200
        outside = client.get(f"{base}/unsafe/60x40/{photo}")
        assert outside.status_code in (403, 404)  # read as imgproxy's only


def test_meta_answers_the_info_report(client: httpx.Client, photo: str) -> None:
    with serve_pixelpipe(make_settings(thumbor_key=THUMBOR_KEY)) as base:
        # The image of the same request is cached first: meta/ must still report.
        for _ in range(2):
            assert client.get(base + thumbor_path(f"300x200/{photo}")).status_code == 200
        answer = client.get(base + thumbor_path(f"meta/300x200/{photo}"))
        assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
        report = answer.json()
        assert report["source"]["width"] == 640 and report["result"]["width"] == 300


# --- against thumbor itself ---------------------------------------------------------

SAME = [
    "300x200",
    "fit-in/300x200",
    "fit-in/300x0",
    "fit-in/0x120",
    "0x100",
    "-300x200",
    "300x-200",
    "-300x-200",
    "fit-in/-300x200",
    "10x20:400x300/200x100",
    "10x20:400x300/fit-in/200x200",
    "300x200/left/top",
    "300x200/right/bottom",
    "200x300/center/top",
    "200x300/left/middle",
    "100x300/right",
    "fit-in/1000x1000",
    "fit-in/1000x1000/filters:upscale()",
    "1000x100",
    "100x100/filters:no_upscale()",
    "300x200/filters:quality(40)",
    "300x200/filters:format(webp)",
    "300x200/filters:format(png)",
    "300x200/filters:blur(3)",
    "300x200/filters:blur(5,2)",
    "300x200/filters:sharpen(2,1,true)",
    "300x200/filters:rotate(90)",
    "300x200/left/top/filters:rotate(90)",
    "-300x200/filters:rotate(270)",
    "300x200/filters:rotate(180)",
    "fit-in/300x300/filters:fill(ff0000)",
    "fit-in/300x300/filters:fill(blue)",
    "300x200/filters:stretch()",
    "300x200/filters:proportion(0.5)",
    "300x200/filters:strip_exif():strip_icc()",
    "300x200/filters:quality(90):format(webp)",
    "300x200/filters:brightness(20)",
    "300x200/filters:brightness(-35)",
    "300x200/filters:contrast(30)",
    "300x200/filters:contrast(-40)",
    "300x200/filters:rgb(10,-20,30)",
    "300x200/filters:grayscale()",
    "fit-in/200x200/filters:brightness(-30):grayscale()",
    "origx200",
    "300xorig",
    "fit-in/origx100",
    "adaptive-fit-in/200x300",
    "adaptive-fit-in/300x200",
    "full-fit-in/300x200",
    "full-fit-in/100x300",
    "adaptive-full-fit-in/200x300",
    "300x200/filters:focal(100x100:200x200)",
    "100x300/filters:focal(500x100:600x200)",
    "10x20:400x300/200x200/filters:focal(300x200:340x240)",
    "fit-in/300x300/filters:fill(auto)",
    "fit-in/300x300/filters:fill(blur)",
    "300x200/filters:round_corner(20,255,255,255)",
    "300x200/filters:round_corner(30|10,0,0,255)",
    "300x200/filters:round_corner(20,0,0,0,true):format(png)",
]


@pytest.mark.parametrize("options", SAME)
def test_same_picture_as_thumbor(options: str, both: tuple[str, str], photo: str) -> None:
    thumbor, pixelpipe = both
    path = thumbor_path(f"{options}/{photo}")
    theirs, ours = httpx.get(thumbor + path, timeout=60), httpx.get(pixelpipe + path, timeout=60)
    assert theirs.status_code == 200 and ours.status_code == 200, ours.text
    assert ours.headers["content-type"] == theirs.headers["content-type"]
    a, b = decode(theirs.content), decode(ours.content)
    assert (b.width, b.height) == (a.width, a.height)
    assert mean_abs_difference(a, b) <= THRESHOLD


def test_alpha_png_fits_as_thumbor(origin: Origin, both: tuple[str, str]) -> None:
    thumbor, pixelpipe = both
    url = origin.add("/thumbor/alpha.png", encode(with_alpha(quadrants(200, 100), 160), "png"))
    for options in ("fit-in/100x100", "fit-in/100x100/filters:background_color(ffffff)"):
        path = thumbor_path(f"{options}/{url.removeprefix('http://')}")
        theirs, ours = httpx.get(thumbor + path), httpx.get(pixelpipe + path)
        assert ours.headers["content-type"] == theirs.headers["content-type"] == "image/png"
        a, b = decode(theirs.content), decode(ours.content)
        assert (a.width, a.height) == (b.width, b.height)
        if "background_color" in options:
            # Deliberate: flattened onto the colour, the result has no alpha band
            # here; thumbor keeps an alpha band that is opaque everywhere.
            assert b.bands == 3 and a.bands == 4 and a[3].min() == 255
            a = a[:3]
        assert mean_abs_difference(a, b) <= THRESHOLD


@pytest.mark.parametrize("options", ["trim/200x150", "trim:top-left:40/fit-in/300x300",
                                     "trim:bottom-right/300x100"])  # fmt: skip
def test_trim_as_thumbor(options: str, origin: Origin, both: tuple[str, str]) -> None:
    thumbor, pixelpipe = both
    framed = photo_like(320, 200, 5).embed(40, 30, 400, 280, extend="white")
    url = origin.add(f"/thumbor/framed-{next(_names)}.png", encode(framed, "png"))
    path = thumbor_path(f"{options}/{url.removeprefix('http://')}")
    theirs, ours = httpx.get(thumbor + path), httpx.get(pixelpipe + path)
    assert theirs.status_code == ours.status_code == 200, ours.text
    a, b = decode(theirs.content), decode(ours.content)
    assert (a.width, a.height) == (b.width, b.height)
    assert mean_abs_difference(a, b) <= THRESHOLD


@pytest.fixture(scope="module")
def mark(origin: Origin) -> str:
    """A 60x40 PNG, nearly opaque: the watermark thumbor's filter pastes."""
    image = with_alpha(quadrants(60, 40), 230)
    return origin.add("/thumbor/mark.png", encode(image, "png")).removeprefix("http://")


@pytest.mark.parametrize(
    "args",
    ["10,10,0", "-10,-10,30", "center,center,50", "repeat,repeat,20", "20p,-5p,0",
     "repeat,10,40", "0,0,0,30,none", "-0,center,10,none,50"],
)  # fmt: skip
def test_watermark_as_thumbor(args: str, mark: str, both: tuple[str, str], photo: str) -> None:
    thumbor, pixelpipe = both
    path = thumbor_path(f"300x200/filters:watermark({mark},{args})/{photo}")
    theirs, ours = httpx.get(thumbor + path), httpx.get(pixelpipe + path)
    assert theirs.status_code == ours.status_code == 200, ours.text
    a, b = decode(theirs.content), decode(ours.content)
    assert (a.width, a.height) == (b.width, b.height) == (300, 200)
    assert mean_abs_difference(a, b) <= THRESHOLD
    # The mark is there, where thumbor put it: nearer thumbor's than the unmarked picture.
    plain = decode(httpx.get(pixelpipe + thumbor_path(f"300x200/{photo}")).content)
    assert mean_abs_difference(a, b) < mean_abs_difference(plain, b)


def test_max_bytes_both_stay_under_the_budget(both: tuple[str, str], photo: str) -> None:
    thumbor, pixelpipe = both
    path = thumbor_path(f"300x200/filters:max_bytes(6000)/{photo}")
    theirs, ours = httpx.get(thumbor + path), httpx.get(pixelpipe + path)
    assert len(theirs.content) <= 6000 and len(ours.content) <= 6000
    assert (decode(ours.content).width, decode(ours.content).height) == (300, 200)


def test_deliberate_differences(both: tuple[str, str], photo: str) -> None:
    """Where pixelpipe answers otherwise, on purpose."""
    thumbor, pixelpipe = both
    # 1. A proportional size of exactly .5 rounds half up here (as imgproxy), to
    #    even in thumbor (Python 3's round): 150 wide from 640x480 is 112.5 high.
    path = thumbor_path(f"150x0/{photo}")
    assert decode(httpx.get(thumbor + path).content).height == 112
    assert decode(httpx.get(pixelpipe + path).content).height == 113
    # 2. `smart` finds the interesting part with libvips' attention strategy;
    #    thumbor without OpenCV (as here) crops the centre. Same size and format.
    path = thumbor_path(f"100x300/smart/{photo}")
    theirs, ours = (
        decode(httpx.get(thumbor + path).content),
        decode(httpx.get(pixelpipe + path).content),
    )
    assert (theirs.width, theirs.height) == (ours.width, ours.height) == (100, 300)
