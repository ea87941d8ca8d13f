"""imgproxy Pro's text watermarks: `watermark_text` (`wmt`, Pango markup in URL-safe
base64), `watermark_rotate` (`wmr`) and `watermark_shadow` (`wmsh`), placed by
`watermark` (`wm`).

The drawn text is compared with the same markup drawn directly by pyvips
(libvips' Pango text) and composited where the position says; the markup
checks that keep a URL from asking for a gigabyte of text are unit-tested.
"""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest
import pyvips

from proxy.errors import InvalidOptionArgument
from proxy.options import ParserConfig, parse_options
from proxy.options.markup import MAX_CHARACTERS, check_markup
from signing import UrlBuilder
from tests.conftest import signed
from tests.footprints import assert_under_estimates
from tests.images import decode, encode, solid
from tests.servers import Origin

MARKUP = '<span foreground="#ff0000" size="30pt">Sample</span>'


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def grey(origin: Origin) -> str:
    return origin.add("/wmt/grey.png", encode(solid(400, 300, (128, 128, 128)), "png"))


def fetch(pixelpipe: str, options: str, url: str) -> pyvips.Image:
    answer = httpx.get(pixelpipe + signed(f"/{options}/plain/{url}@png"), timeout=30)
    assert answer.status_code == 200, answer.text
    return decode(answer.content)


def red_box(image: pyvips.Image) -> tuple[int, int, int, int]:
    """left, top, width, height of the clearly red pixels."""
    red = (image[0] > 180) & (image[1] < 90) & (image[2] < 90)
    columns, rows = red.project()
    xs = [x for x in range(image.width) if columns(x, 0)[0] > 0]
    ys = [y for y in range(image.height) if rows(0, y)[0] > 0]
    assert xs and ys, "no red text found"
    return xs[0], ys[0], xs[-1] - xs[0] + 1, ys[-1] - ys[0] + 1


def test_text_is_drawn_as_pango_draws_it_centred(pixelpipe: str, grey: str) -> None:
    ours = fetch(pixelpipe, f"wmt:{b64(MARKUP)}", grey)
    text = pyvips.Image.text(MARKUP, font="sans 16", rgba=True, dpi=72)
    left, top = (400 - text.width + 1) // 2, (300 - text.height + 1) // 2  # halves round up
    layer = text.embed(left, top, 400, 300, background=[0, 0, 0, 0]).copy(interpretation="srgb")
    expected = solid(400, 300, (128, 128, 128)).composite2(layer, "over")[:3].cast("uchar")
    difference = (ours.cast("int") - expected.cast("int")).abs()
    assert difference.max() <= 2, difference.max()
    box = red_box(ours)
    assert abs(box[0] + box[2] / 2 - 200) <= 3 and abs(box[1] + box[3] / 2 - 150) <= 8


def test_position_rotation_and_shadow(pixelpipe: str, grey: str) -> None:
    corner = red_box(fetch(pixelpipe, f"wmt:{b64(MARKUP)}/wm:1:soea", grey))
    assert corner[0] + corner[2] >= 390 and corner[1] + corner[3] >= 285  # bottom-right
    flat = red_box(fetch(pixelpipe, f"wmt:{b64(MARKUP)}", grey))
    turned = red_box(fetch(pixelpipe, f"wmt:{b64(MARKUP)}/wmr:90", grey))
    assert flat[2] > flat[3] and turned[3] > turned[2]  # wide text, then tall
    assert abs(turned[3] - flat[2]) <= 3
    plain = fetch(pixelpipe, f"wmt:{b64(MARKUP)}", grey)
    shadowed = fetch(pixelpipe, f"wmt:{b64(MARKUP)}/wmsh:3", grey)
    # The shadow darkens the grey around the letters; the plain text leaves it grey.
    assert plain.min() >= 0 and shadowed.crop(150, 120, 100, 60).min() < 100
    assert (plain.crop(0, 0, 100, 100).cast("int") - 128).abs().max() == 0
    assert fetch(pixelpipe, f"wmt:{b64(MARKUP)}/wm:0.5", grey).avg() != plain.avg()


def test_the_cache_key_and_the_url_builder() -> None:
    def parse(*segments: str):  # type: ignore[no-untyped-def]
        return parse_options(segments, "http://example.com/a.png", None, ParserConfig())

    plain = parse("w:100").canonical()
    assert "wmt:" not in plain
    one, other = parse("w:100", f"wmt:{b64('a')}"), parse("w:100", f"wmt:{b64('b')}")
    assert one.watermark_text == "a" and one.canonical() != other.canonical() != plain
    assert parse("wmr:-90").watermark_rotate == 270 and parse("wm_rot:45").watermark_rotate == 45
    path = UrlBuilder().path(
        "http://example.com/a.png", watermark_text=MARKUP, watermark_rotate=30, watermark_shadow=2
    )
    assert f"/wmt:{b64(MARKUP)}/" in path and "/wmr:30/" in path and "/wmsh:2/" in path


@pytest.mark.parametrize(
    ("markup", "why"),
    [
        ("<script>x</script>", "unknown markup tag <script>"),
        ('<span size="9999pt">x</span>', "markup size above 100 points"),
        ('<span size="99999999">x</span>', "markup size above 100 points"),
        ('<span font="Sans 900">x</span>', "markup font size above 100 points"),
        ('<span onclick="x">x</span>', "unknown markup attribute 'onclick'"),
        ("<b>x", "not well-formed Pango markup"),
        ("<big>" * 9 + "x" + "</big>" * 9, "markup nested deeper than 8"),
        ("x" * (MAX_CHARACTERS + 1), f"more than {MAX_CHARACTERS} characters"),
        ("<b></b>", "no text"),
    ],
)
def test_markup_that_could_draw_too_much_is_refused(markup: str, why: str) -> None:
    with pytest.raises(InvalidOptionArgument) as caught:
        check_markup(markup)
    assert caught.value.reason == f"invalid watermark_text argument: {why}"
    assert check_markup('<span size="larger"><b>fine</b></span>')


def test_bad_text_answers_404_and_the_next_is_served(pixelpipe: str, grey: str) -> None:
    for bad, reason in [
        (
            f"wmt:{b64('<script>x</script>')}",
            "invalid watermark_text argument: unknown markup tag <script>",
        ),
        ("wmt:%%%", "invalid watermark_text arguments '%%%': expected URL-safe base64 of the text"),
        ("wmr:x", "invalid watermark_rotate arguments 'x': expected a number"),
    ]:
        answer = httpx.get(pixelpipe + signed(f"/{bad}/plain/{grey}@png"))
        assert answer.status_code == 404 and answer.text.strip() == reason
        assert (
            httpx.get(pixelpipe + signed(f"/wmt:{b64('ok')}/plain/{grey}@png")).status_code == 200
        )


def test_the_largest_text_allowed_stays_within_the_estimate(tmp_path: Path) -> None:
    largest = '<span size="100pt">' + "W" * MAX_CHARACTERS + "</span>"
    assert_under_estimates(tmp_path, [f"rs:fit:1200:0/wmt:{b64(largest)}/wmsh:5/wmr:30"])


def test_info_names_the_text_watermark(pixelpipe: str, grey: str) -> None:
    report = httpx.get(pixelpipe + "/info" + signed(f"/wmt:{b64(MARKUP)}/wmr:30/plain/{grey}@png"))
    assert report.json()["effects"] == ["watermark_text", "watermark_rotate"]


def test_the_markup_chooses_font_size_and_colour(pixelpipe: str, grey: str) -> None:
    """Pango's own attributes: twice the points draw twice as wide, a serif face
    draws other pixels, the foreground colour is the letters' colour."""
    small = red_box(fetch(pixelpipe, f"wmt:{b64(MARKUP.replace('30pt', '20pt'))}", grey))
    large = red_box(fetch(pixelpipe, f"wmt:{b64(MARKUP.replace('30pt', '40pt'))}", grey))
    assert 1.7 < large[2] / small[2] < 2.3
    with_serif = MARKUP.replace("<span ", '<span face="serif" ')
    serif = fetch(pixelpipe, f"wmt:{b64(with_serif)}", grey)
    sans = fetch(pixelpipe, f"wmt:{b64(MARKUP)}", grey)
    assert (serif.cast("int") - sans.cast("int")).abs().max() > 100
    blue = fetch(pixelpipe, f"wmt:{b64(MARKUP.replace('#ff0000', '#0000ff'))}", grey)
    bluest = (blue[2].cast("int") - blue[0].cast("int")).max()
    assert bluest > 200  # letters of (0, 0, 255) on the grey
