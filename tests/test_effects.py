"""imgproxy Pro's colour effects and unsharp masking: `br`, `co`, `sa`, `a`, `mc`,
`dt`, `col`, `gr`, `ush`, and the UNSHARP_MASKING_* settings.

imgproxy Pro is closed: the pixels are checked against what each option is
documented to do, computed here with pyvips from the source's own pixels
(the source is served at its own size, in PNG, so nothing but the effect
changes a pixel), and at places whose answer is known (black, white, the
ends of a gradient).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import pyvips

from proxy.errors import InvalidOptionArgument
from proxy.options import ParserConfig, parse_options
from proxy.options.model import Effects, UnsharpMode
from signing import UrlBuilder
from signing.options import BY_SPELLING
from tests.conftest import signed
from tests.footprints import assert_animation_under_estimates, assert_under_estimates
from tests.images import decode, encode, photo_like, quadrants, solid, with_alpha
from tests.servers import Origin
from tests.test_settings_served import serving


def parse(*segments: str):  # type: ignore[no-untyped-def]
    return parse_options(segments, "http://example.com/a.png", None, ParserConfig())


# --- the option model and the cache key ---------------------------------------------


def test_options_parse_with_their_short_names_and_defaults() -> None:
    options = parse("br:-40", "co:1.5", "sa:0.5", "mc:0.8", "dt:1:0000ff", "col:0.3::1")
    effects = options.effects
    assert (effects.brightness, effects.contrast, effects.saturation) == (-40, 1.5, 0.5)
    assert (effects.monochrome, effects.monochrome_colour) == (0.8, (179, 179, 179))
    assert (effects.duotone_dark, effects.duotone_light) == ((0, 0, 255), (255, 255, 255))
    assert effects.colorize_colour == (0, 0, 0) and effects.colorize_keep_alpha
    long = parse("brightness:-40", "contrast:1.5", "saturation:0.5", "monochrome:0.8",
                 "duotone:1:0000ff", "colorize:0.3::1")  # fmt: skip
    assert long.effects == effects
    assert parse("a:10:2").effects == Effects(brightness=10, contrast=2.0)
    assert parse("adjust::1.2:0").effects == Effects(contrast=1.2, saturation=0.0)
    gradient = parse("gr:0.8:ff000080:left:0.2:0.9").effects
    assert gradient.gradient == pytest.approx(0.8 * 128 / 255)
    assert (gradient.gradient_angle, gradient.gradient_start, gradient.gradient_stop) == (
        90.0,
        0.2,
        0.9,
    )
    assert parse("gr:1::-90").effects.gradient_angle == 270.0
    unsharp = parse("ush:always:2").unsharp
    assert (unsharp.mode, unsharp.weight, unsharp.divider) == (UnsharpMode.ALWAYS, 2.0, 24.0)


def test_the_cache_key_names_only_what_changes_pixels() -> None:
    plain = parse("w:300").canonical()
    assert "fx:" not in plain and "ush:" not in plain
    # Defaults spelled out change nothing, so they share the plain key.
    assert parse("w:300", "br:0", "co:1", "sa:1", "mc:0", "col:0", "ush:none").canonical() == plain
    assert parse("w:300", "br:5").canonical() != plain
    assert parse("w:300", "br:5").canonical() != parse("w:300", "br:6").canonical()
    assert parse("w:300", "col:0.5:ff0000").canonical() != parse("w:300", "col:0.5").canonical()
    assert parse("w:300", "ush:always").canonical() != plain


@pytest.mark.parametrize(
    "segment",
    ["br:256", "br:x", "co:0", "co:-1", "sa:-0.5", "mc:2", "mc:0.5:zz", "dt:0.5:1:2:3",
     "col:1.5", "col:0.5:ff0000:maybe", "gr:0.5::sideways", "gr:0.5:::0.8:0.2",
     "ush:sometimes", "ush:always:0", "a:1:2:3:4"],
)  # fmt: skip
def test_bad_arguments_are_refused_with_a_reason(segment: str) -> None:
    with pytest.raises(InvalidOptionArgument) as caught:
        parse(segment)
    assert caught.value.status == 404 and "\n" not in caught.value.reason
    assert BY_SPELLING[segment.split(":")[0]].name in caught.value.reason  # names the option


def test_the_url_builder_writes_them() -> None:
    path = UrlBuilder().path(
        "http://example.com/a.png",
        brightness=20,
        contrast=1.5,
        saturation=0.5,
        monochrome=(0.5, "ff0000"),
        duotone=(1, "000000", "ffffff"),
        colorize=(0.3, "00ff00", True),
        gradient=(0.8, "000000", "up"),
        unsharp_masking=("always", 2, 10),
    )
    for written in ("br:20", "co:1.5", "sa:0.5", "mc:0.5:ff0000", "dt:1:000000:ffffff",
                    "col:0.3:00ff00:1", "gr:0.8:000000:up", "ush:always:2:10"):  # fmt: skip
        assert f"/{written}/" in path, path
    segments = tuple(path.split("/plain/")[0].split("/")[2:])  # after the signature
    assert parse(*segments).effects.active == (
        "brightness", "contrast", "saturation", "monochrome", "duotone", "colorize", "gradient"
    )  # fmt: skip


# --- pixels ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def picture() -> pyvips.Image:
    return photo_like(160, 120, 4)


@pytest.fixture(scope="module")
def source(origin: Origin, picture: pyvips.Image) -> str:
    return origin.add("/effects/photo.png", encode(picture, "png"))


@pytest.fixture(scope="module")
def tones(origin: Origin) -> str:
    """Black on the left half, white on the right."""
    image = solid(40, 20, (0, 0, 0)).join(solid(40, 20, (255, 255, 255)), "horizontal")
    return origin.add("/effects/tones.png", encode(image, "png"))


def fetch(pixelpipe: str, options: str, url: str) -> pyvips.Image:
    answer = httpx.get(pixelpipe + signed(f"/{options}/plain/{url}@png"), timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/png"
    return decode(answer.content)


def same(a: pyvips.Image, b: pyvips.Image, tolerance: int = 1) -> None:
    assert (a.width, a.height, a.bands) == (b.width, b.height, b.bands)
    worst = (a.cast("int") - b.cast("int")).abs().max()
    assert worst <= tolerance, worst


def clip(image: pyvips.Image) -> pyvips.Image:
    return (image < 0).ifthenelse(0, (image > 255).ifthenelse(255, image)).rint().cast("uchar")


def test_brightness_contrast_and_colorize_are_their_arithmetic(
    pixelpipe: str, source: str, picture: pyvips.Image
) -> None:
    same(fetch(pixelpipe, "br:40", source), clip(picture.cast("float") + 40))
    same(fetch(pixelpipe, "br:-60", source), clip(picture.cast("float") - 60))
    same(fetch(pixelpipe, "co:1.5", source), clip((picture - 127.5) * 1.5 + 127.5))
    red = clip(picture * 0.5 + [127.5, 0, 0])
    same(fetch(pixelpipe, "col:0.5:ff0000", source), red)
    same(fetch(pixelpipe, "a:40:1.5", source), clip((picture + 40 - 127.5) * 1.5 + 127.5))


def test_saturation_scales_chroma(pixelpipe: str, source: str, picture: pyvips.Image) -> None:
    grey = fetch(pixelpipe, "sa:0", source)
    assert (grey[0].cast("int") - grey[1].cast("int")).abs().max() <= 1
    assert (grey[1].cast("int") - grey[2].cast("int")).abs().max() <= 1
    vivid = fetch(pixelpipe, "sa:2", source)
    chroma = lambda image: image.colourspace("lch")[1].avg()  # noqa: E731
    assert chroma(vivid) > 1.5 * chroma(picture)
    same(fetch(pixelpipe, "sa:1", source), picture, tolerance=0)


def test_monochrome_and_duotone_map_the_tones(pixelpipe: str, tones: str) -> None:
    tinted = fetch(pixelpipe, "mc:1:ff0000", tones)
    assert tinted(5, 5)[:3] == [0, 0, 0] and tinted(75, 5)[:3] == [255, 255, 255]
    half = fetch(pixelpipe, "mc:0.5:ff0000", tones)
    assert half(75, 5)[:3] == [255, 255, 255]
    duo = fetch(pixelpipe, "dt:1:0000ff:ffff00", tones)
    assert duo(5, 5)[:3] == [0, 0, 255] and duo(75, 5)[:3] == [255, 255, 0]
    soft = fetch(pixelpipe, "dt:0.5:0000ff:ffff00", tones)
    assert soft(5, 5)[:3] == [0, 0, 128] and soft(75, 5)[:3] == [255, 255, 128]


def test_the_gradient_runs_from_clear_to_its_colour(
    pixelpipe: str, source: str, picture: pyvips.Image
) -> None:
    down = fetch(pixelpipe, "gr:1:00ff00", source)
    same(down.crop(0, 0, 160, 1), picture.crop(0, 0, 160, 1), tolerance=1)
    assert down(80, 119)[:3] == [0, 255, 0]
    left = fetch(pixelpipe, "gr:1:00ff00:left", source)
    assert left(0, 60)[:3] == [0, 255, 0]
    same(left.crop(159, 0, 1, 120), picture.crop(159, 0, 1, 120), tolerance=1)
    # start and stop: clear before 0.5 of the way, full colour from 0.75 on.
    late = fetch(pixelpipe, "gr:1:00ff00:down:0.5:0.75", source)
    same(late.crop(0, 0, 160, 55), picture.crop(0, 0, 160, 55), tolerance=1)
    assert late(80, 100)[:3] == [0, 255, 0]


def test_alpha_is_covered_unless_kept(pixelpipe: str, origin: Origin) -> None:
    url = origin.add("/effects/alpha.png", encode(with_alpha(quadrants(40, 20), 128), "png"))
    covered = fetch(pixelpipe, "col:0.5:ff0000", url)
    # alpha: 255 x (0.5 + 0.5 x 128/255) = 191.5, rounded to 192.
    assert covered.bands == 4 and covered(5, 5) == [255, 0, 0, 192]
    kept = fetch(pixelpipe, "col:0.5:ff0000:1", url)
    assert kept(5, 5) == [255, 0, 0, 128]


def test_unsharp_masking_by_mode(pixelpipe: str, source: str, picture: pyvips.Image) -> None:
    plain = fetch(pixelpipe, "w:80", source)
    same(fetch(pixelpipe, "w:80/ush:none", source), plain, tolerance=0)
    # auto: only when the image is made smaller, and not with sharpen.
    sharper = fetch(pixelpipe, "w:80/ush:auto", source)
    same(sharper, fetch(pixelpipe, "w:80/ush:always", source), tolerance=0)
    assert (sharper.cast("int") - plain.cast("int")).abs().max() > 0
    same(fetch(pixelpipe, "ush:auto", source), picture, tolerance=0)  # same size: untouched
    sharpened = fetch(pixelpipe, "w:80/sh:1", source)
    same(fetch(pixelpipe, "w:80/sh:1/ush:auto", source), sharpened, tolerance=0)
    # always: even at the same size; a smaller divider sharpens more.
    mild = fetch(pixelpipe, "ush:always", source)
    strong = fetch(pixelpipe, "ush:always:1:4", source)
    difference = lambda image: (image.cast("int") - picture.cast("int")).abs().avg()  # noqa: E731
    assert 0 < difference(mild) < difference(strong)


def test_a_sharpen_past_libvips_range_is_its_strongest(
    pixelpipe: str, source: str, picture: pyvips.Image, capfd: pytest.CaptureFixture[str]
) -> None:
    # libvips' sharpen takes sigmas up to 10; past that it used to print a
    # GLib-CRITICAL line and sharpen at its default 0.5, weaker than sh:10.
    strongest = picture.sharpen(sigma=10).colourspace("srgb").cast("uchar")
    for sigma in ("10", "20", "1000"):
        same(fetch(pixelpipe, f"sh:{sigma}", source), strongest, tolerance=0)
    mild = fetch(pixelpipe, "sh:0.5", source)
    assert (mild.cast("int") - strongest.cast("int")).abs().max() > 10
    assert "CRITICAL" not in capfd.readouterr().err


def test_bad_effects_answer_404_and_the_next_is_served(pixelpipe: str, source: str) -> None:
    for bad, reason in [
        ("br:999", "invalid brightness arguments '999': expected a whole number from -255 to 255"),
        ("gr:0.5::sideways", "invalid gradient arguments 'sideways': expected a number"),
    ]:
        answer = httpx.get(pixelpipe + signed(f"/{bad}/plain/{source}@png"))
        assert answer.status_code == 404 and answer.text.strip() == reason
        assert httpx.get(pixelpipe + signed(f"/br:10/plain/{source}@png")).status_code == 200


def test_info_names_the_effects_that_ran(pixelpipe: str, source: str) -> None:
    report = httpx.get(pixelpipe + "/info" + signed(f"/sa:2/br:10/plain/{source}@png")).json()
    assert report["effects"] == ["brightness", "saturation"]
    plain = httpx.get(pixelpipe + "/info" + signed(f"/w:50/plain/{source}@png")).json()
    assert plain["effects"] == []


FOOTPRINT_JOBS = [
    "mc:1:ff0000",
    "gr:1:00ff00:45",
    "a:10:1.2:1.3/mc:0.5/dt:0.5/col:0.3/gr:0.8/ush:always",
]


def test_effects_stay_within_the_footprint_estimate(tmp_path: Path) -> None:
    """Each job's peak memory (RSS) is at most what admission reserves for it,
    at 1200 px and at 300, where the effects' buffers do not shrink with the
    picture: priced per pixel, a 300 px `mc` of a 5120x2880 JPEG took 30 MiB
    against 16 reserved (and a 5000 px one 157 against 966)."""
    jobs = [f"rs:fit:{size}:0/{effects}" for size in (1200, 300) for effects in FOOTPRINT_JOBS]
    assert_under_estimates(tmp_path, jobs)


def test_animations_stay_within_the_footprint_estimate(tmp_path: Path) -> None:
    """Frame by frame: computed all at once by the encoder, these 24 frames of
    `mc` took 802 MB against an estimate of 235 (72 MB then, and an estimate
    counting every frame's work that was 3.3x it)."""
    assert_animation_under_estimates(tmp_path, ["mc:0.5:ff0000/f:webp", "bl:10/f:webp"])


def test_a_small_result_of_an_animated_webp_counts_its_full_size_decode(tmp_path: Path) -> None:
    """libvips decodes an animated WebP at full size whatever the scale asked:
    estimated at the shrunk size, 24 frames of 800x600 to 100 px were put at
    20 MB and took about 78."""
    assert_animation_under_estimates(tmp_path, ["rs:fit:100:100/f:webp"], size=(800, 600))


# --- the settings, as a user sets them ----------------------------------------------


@pytest.fixture(scope="module")
def sharpened_everywhere() -> Iterator[str]:
    with serving(
        PIXELPIPE_ALLOW_LOOPBACK_SOURCE_ADDRESSES="true",
        IMGPROXY_UNSHARP_MASKING_MODE="always",
        PIXELPIPE_UNSHARP_MASKING_DIVIDER="6",
    ) as base:
        yield base


def test_unsharp_masking_settings_through_serve(
    sharpened_everywhere: str, pixelpipe: str, source: str, picture: pyvips.Image
) -> None:
    served = fetch(sharpened_everywhere, "w:160", source)
    asked = fetch(pixelpipe, "w:160/ush:always:1:6", source)
    same(served, asked, tolerance=0)
    assert (served.cast("int") - picture.cast("int")).abs().max() > 10
    # The URL still decides: ush:none turns it off for that image.
    same(fetch(sharpened_everywhere, "w:160/ush:none", source), picture, tolerance=0)


def test_a_server_wide_unsharp_mode_still_passes_svg_through(
    sharpened_everywhere: str, origin: Origin
) -> None:
    svg = (
        b'<svg xmlns="http://www.w3.org/2000/svg" width="20" height="10">'
        b'<rect width="20" height="10" fill="red"/></svg>'
    )
    url = origin.add("/effects/plain.svg", svg, "image/svg+xml")
    answer = httpx.get(sharpened_everywhere + signed(f"/plain/{url}"), timeout=30)
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/svg+xml"
