from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.errors import InvalidURL, ProxyError, UnknownOption, UnknownPreset
from proxy.options import (
    Crop,
    Gravity,
    GravityType,
    ParserConfig,
    ProcessingOptions,
    ResizingType,
    parse_options,
    split_path,
)
from proxy.options.model import Trim, Watermark, WatermarkPosition
from proxy.options.parse import OPTIONS

CONFIG = ParserConfig()


def parse(path: str, config: ParserConfig = CONFIG) -> ProcessingOptions:
    split = split_path("/sig" + path)
    return parse_options(split.option_segments, split.source_url, split.extension, config)


SRC = "/plain/http://a.example/b.jpg"


def test_defaults() -> None:
    o = parse(SRC)
    assert o.resizing_type is ResizingType.FIT
    assert (o.width, o.height, o.enlarge, o.extend) == (0, 0, False, False)
    assert o.gravity == Gravity(GravityType.CENTER)
    assert o.format is None
    assert o.quality_for("jpeg") == 80 and o.quality_for("avif") == 65


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ("rs:fill:300:200", {"resizing_type": ResizingType.FILL, "width": 300, "height": 200}),
        ("resize:fill-down:300:200:1:1", {"width": 300, "enlarge": True, "extend": True}),
        ("rs:force:10:20:0:1:so:5:6", {"extend_gravity": Gravity(GravityType.SOUTH, 5, 6)}),
        ("rs::300", {"resizing_type": ResizingType.FIT, "width": 300}),
        ("s:100:50", {"width": 100, "height": 50}),
        ("size:100::t", {"width": 100, "height": 0, "enlarge": True}),
        ("rt:auto", {"resizing_type": ResizingType.AUTO}),
        ("resizing_type:force", {"resizing_type": ResizingType.FORCE}),
        ("w:10/h:20", {"width": 10, "height": 20}),
        ("width:10/height:20", {"width": 10, "height": 20}),
        ("mw:10/mh:20", {"min_width": 10, "min_height": 20}),
        ("min-width:10/min-height:20", {"min_width": 10, "min_height": 20}),
        ("z:2", {"zoom_x": 2.0, "zoom_y": 2.0}),
        ("zoom:1.5:0.5", {"zoom_x": 1.5, "zoom_y": 0.5}),
        ("dpr:2", {"dpr": 2.0}),
        ("el:1", {"enlarge": True}),
        ("enlarge:true", {"enlarge": True}),
        ("ex:1", {"extend": True}),
        ("extend:t:nowe", {"extend": True, "extend_gravity": Gravity(GravityType.NORTH_WEST)}),
        ("g:sm", {"gravity": Gravity(GravityType.SMART)}),
        ("gravity:soea:10:0.5", {"gravity": Gravity(GravityType.SOUTH_EAST, 10, 0.5)}),
        ("g:fp:0.25:0.75", {"gravity": Gravity(GravityType.FOCUS_POINT, 0.25, 0.75)}),
        ("c:100:50", {"crop": Crop(100, 50)}),
        ("crop:0.5:0.5:we", {"crop": Crop(0.5, 0.5, Gravity(GravityType.WEST))}),
        ("ar:0", {"auto_rotate": False}),
        ("auto_rotate:false", {"auto_rotate": False}),
        ("q:55", {"quality": 55}),
        ("quality:0", {"quality": 0}),
        ("q:auto", {"quality": 0, "auto_quality": True}),
        ("f:png", {"format": "png"}),
        ("format:jpg", {"format": "jpeg"}),
        ("ext:avif", {"format": "avif"}),
        ("sm:0", {"strip_metadata": False}),
        ("strip_metadata:1", {"strip_metadata": True}),
        ("kcr:0", {"keep_copyright": False}),
        ("keep_copyright:f", {"keep_copyright": False}),
        ("scp:0", {"strip_color_profile": False}),
        ("strip_color_profile:0", {"strip_color_profile": False}),
        ("cb:v2", {"cachebuster": "v2"}),
        ("cachebuster:abc", {"cachebuster": "abc"}),
        ("exp:4102444800", {"expires": 4102444800}),
        ("expires:0", {"expires": 0}),
        ("fn:my%20cup", {"filename": "my cup"}),
        ("filename:bXkgY3Vw:1", {"filename": "my cup"}),
        ("att:1", {"return_attachment": True}),
        ("return_attachment:true", {"return_attachment": True}),
        ("t:10", {"trim": Trim(10.0)}),
        ("trim:5.5:ff0000:1:t", {"trim": Trim(5.5, (255, 0, 0), True, True)}),
        ("t:", {"trim": None}),
        ("pd:10", {"padding": (10, 10, 10, 10)}),
        ("pd:1:2", {"padding": (1, 2, 1, 2)}),
        ("pd:1:2:3", {"padding": (1, 2, 3, 2)}),
        ("padding:1:2:3:4", {"padding": (1, 2, 3, 4)}),
        ("exar:1:so", {"extend_aspect_ratio": True}),
        ("extend_ar:1", {"extend_aspect_ratio": True}),
        ("rot:-90", {"rotate": 270}),
        ("rotate:450", {"rotate": 90}),
        ("fl:1", {"flip_horizontal": True, "flip_vertical": False}),
        ("flip:0:1", {"flip_horizontal": False, "flip_vertical": True}),
        ("bg:f80", {"background": (255, 136, 0)}),
        ("background:10:20:30", {"background": (10, 20, 30)}),
        ("bg:FFFFFF/bg:", {"background": None}),
        ("eth:1", {"enforce_thumbnail": True}),
        ("bl:2.5", {"blur": 2.5}),
        ("sharpen:0.7", {"sharpen": 0.7}),
        # libvips' sharpen takes sigmas from 0.000001 to 10.
        ("sh:10", {"sharpen": 10.0}),
        ("sh:400", {"sharpen": 10.0}),
        ("sh:0.0000001", {"sharpen": 0.000001}),
        ("sh:0", {"sharpen": 0.0}),
        ("pix:8", {"pixelate": 8}),
        (
            "wm:0.5:re:10:10:0.2",
            {"watermark": Watermark(0.5, WatermarkPosition.REPLICATE, 10, 10, 0.2)},
        ),
        ("watermark:1", {"watermark": Watermark(1.0)}),
        ("wm:0", {"watermark": None}),
        ("skp:jpg:svg", {"skip_processing": ("jpeg", "svg")}),
        ("raw:1", {"raw": True}),
        ("mb:1000", {"max_bytes": 1000}),
        ("f:svg", {"format": "svg"}),
    ],
)
def test_options(options: str, expected: dict[str, object]) -> None:
    o = parse(f"/{options}{SRC}")
    for name, value in expected.items():
        assert getattr(o, name) == value, name


def test_format_quality_merges_over_settings() -> None:
    o = parse(f"/fq:webp:50:jpg:60{SRC}")
    assert o.quality_for("webp") == 50 and o.quality_for("jpeg") == 60
    assert o.quality_for("avif") == 65
    assert parse(f"/fq:webp:50/q:90{SRC}").quality_for("webp") == 90


def test_extension_sets_the_format_and_wins_over_the_option() -> None:
    assert parse(f"/f:png{SRC}@webp").format == "webp"


def test_later_options_override_earlier_ones() -> None:
    assert parse(f"/w:10/rs:fit:20{SRC}").width == 20


def test_presets_apply_and_default_applies_first() -> None:
    config = ParserConfig(
        presets={
            "default": ("q:70", "rt:fill"),
            "thumb": ("s:100:100", "g:sm"),
            "loop": ("pr:loop",),
        }
    )
    o = parse(f"/pr:thumb{SRC}", config)
    assert (o.quality, o.resizing_type, o.width, o.gravity.type) == (
        70,
        ResizingType.FILL,
        100,
        GravityType.SMART,
    )
    assert parse(f"/q:90{SRC}", config).quality == 90
    assert parse(f"/preset:loop{SRC}", config).quality == 70  # recursion is skipped
    with pytest.raises(UnknownPreset):
        parse(f"/pr:nope{SRC}", config)


def test_settings_defaults_reach_the_options() -> None:
    config = ParserConfig(auto_rotate=False, strip_metadata=False, return_attachment=True)
    o = parse(SRC, config)
    assert (o.auto_rotate, o.strip_metadata, o.return_attachment) == (False, False, True)


def test_aliases_option_order_and_spelling_share_one_canonical_form() -> None:
    a = parse("/rs:fill:300:200/g:sm/q:80/plain/http://a.example/b.jpg@webp")
    b = parse("/quality:80/gravity:sm/resizing_type:fill/width:300/height:200/format:webp" + SRC)
    assert a == b
    assert a.canonical() == b.canonical()
    assert parse(f"/w:301{SRC}").canonical() != parse(f"/w:300{SRC}").canonical()


def test_canonical_form_parses_back_to_the_same_options() -> None:
    o = parse(
        "/rs:fill-down:300:200:1:1:so:3:4/c:0.5:10:fp:0.1:0.2/z:1.5/dpr:2/fq:webp:33"
        "/cb:x/exp:4102444800/fn:a%20b/att:1/t:5:ff0000:1:0/pd:1:2:3:4/exar:1:no"
        "/rot:90/fl:1:0/bg:10:20:30/eth:1/bl:1.5/sh:0.5/pix:4/wm:0.5:re:1:2:0.3"
        "/skp:gif/raw:0/mb:5000/plain/http://a.example/p%40th?.jpg@png"
    )
    assert parse(o.canonical()) == o


@pytest.mark.parametrize(
    "options",
    [
        "rs:stretch:10:10",
        "rs:fit:-1:10",
        "rs:fit:abc",
        "rs:fit:10:10:maybe",
        "rs:fit:1:2:3:4:5:6:7:8:9",
        "w:-5",
        "w:1.5",
        "w:99999999",
        "w",
        "h:1:2",
        "mw:x",
        "z:0",
        "z:-1",
        "z:1:2:3",
        "z:inf",
        "dpr:0",
        "dpr:nan",
        "el:yes",
        "ex:1:sm",
        "ex:1:up",
        "g:middle",
        "g:sm:1",
        "g:fp:0.5",
        "g:fp:2:0.5",
        "g:ce:1:2:3",
        "g:ce:x",
        "c:-1:10",
        "c:x:1",
        "q:101",
        "q:Auto",
        "q:auto:1",
        "q:-1",
        "q:high",
        "fq:webp",
        "fq:pdf:50",
        "fq:webp:500",
        "f:pdf",
        "format:jxll",
        "exp:tomorrow",
        "fn:Zm9v!:1",
        "att:2",
        "ar:on",
        "pr:",
        "cb:a:b",
        "t:abc",
        "t:10:zzzzzz",
        "t:300",
        "t:10:fff:maybe",
        "pd:-1",
        "pd:1:2:3:4:5",
        "pd:x",
        "exar:maybe",
        "exar:1:sm",
        "rot:45",
        "rot:abc",
        "rot:99999999",
        "fl:yes",
        "fl:1:2",
        "bg:12345",
        "bg:1:2",
        "bg:256:0:0",
        "bg:gg0000",
        "bl:-1",
        "bl:abc",
        "bl:1e9",
        "sh:-2",
        "pix:-3",
        "pix:1.5",
        "wm:2",
        "wm:-0.5",
        "wm:1:middle",
        "wm:1:ce:x",
        "wm:1:ce:0:0:5",
        "wm:1:ce:0:0:0:1",
        "skp:pdf",
        "raw:maybe",
        "mb:-1",
        "mb:abc",
        "eth:2",
    ],
)
def test_bad_arguments_are_404(options: str) -> None:
    with pytest.raises(InvalidURL) as caught:
        parse(f"/{options}{SRC}")
    assert caught.value.status == 404
    assert "\n" not in caught.value.reason


def test_unknown_option_is_404_and_named() -> None:
    with pytest.raises(UnknownOption) as caught:
        parse(f"/nope:1{SRC}")
    assert "nope" in caught.value.reason


def test_bad_extension_is_404() -> None:
    with pytest.raises(InvalidURL):
        parse(f"{SRC}@psd")


def test_every_option_has_a_unique_name_and_aliases() -> None:
    names = [n for spec in OPTIONS for n in (spec.name, *spec.aliases)]
    assert len(names) == len(set(names))


segment = st.text(
    alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyz:0123456789.-_%@/"), max_size=30
)


@settings(max_examples=400, deadline=None)
@given(st.lists(segment, max_size=6), st.text(max_size=40))
def test_any_path_gives_options_or_a_clean_client_error(parts: list[str], tail: str) -> None:
    path = "/sig/" + "/".join(parts) + "/" + tail
    try:
        split = split_path(path)
        parse_options(split.option_segments, split.source_url, split.extension, CONFIG)
    except ProxyError as error:
        assert 400 <= error.status < 500
        assert "\n" not in error.reason


@pytest.mark.parametrize(
    ("options", "field", "value"),
    [
        # shapes that imgproxy's official URL builders emit
        ("g:ce::5", "gravity", Gravity(GravityType.CENTER, 0, 5)),
        ("g:nowe:3", "gravity", Gravity(GravityType.NORTH_WEST, 3, 0)),
        ("rs:fill_down:10:10", "resizing_type", ResizingType.FILL_DOWN),
        ("rs:fill:300::0", "height", 0),
        ("rs:fit:300:200:1:1:ce::", "extend", True),
        ("c:100::sm", "crop", Crop(100, 0, Gravity(GravityType.SMART))),
    ],
)
def test_builder_spellings(options: str, field: str, value: object) -> None:
    assert getattr(parse(f"/{options}{SRC}"), field) == value


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60), st.text(max_size=200))
def test_signature_check_never_raises(signature: str, path: str) -> None:
    from signing import KeyRing

    ring = KeyRing.from_pairs([b"k1", b"k2"], [b"s1", b"s2"])
    assert ring.verify(signature, path) in (True, False)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_the_whole_url_front_end_never_raises_anything_but_client_errors(raw: str) -> None:
    from proxy.options.url import split_signature
    from signing import KeyRing

    ring = KeyRing.from_pairs([b"k"], [b"s"])
    try:
        signature, signed_path = split_signature(raw)
        ring.verify(signature, signed_path)
        split = split_path(raw)
        parse_options(split.option_segments, split.source_url, split.extension, CONFIG)
    except ProxyError as error:
        assert 400 <= error.status < 500
