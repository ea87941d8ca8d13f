"""thumbor's URL dialect, read into the same options as imgproxy's.

A thumbor path is translated into imgproxy option segments (`rs:fit:300:200`,
`g:nowe`, `q:50`, ...) and parsed by `parse_options`, so both dialects share
one validation, one option model, one cache key: the same picture asked in
either dialect is made once.

    [meta/][trim[:top-left|:bottom-right][:tolerance]/][AxB:CxD/]
    [fit-in/|adaptive-fit-in/|full-fit-in/|adaptive-full-fit-in/][-]Ex[-]F/
    [left|center|right/][top|middle|bottom/][smart/][filters:name(args):.../]image

Where thumbor's meaning needs the source's size (`orig`, adaptive-fit-in,
full-fit-in, focal regions), the options carry a `ThumborBox` that the
pipeline resolves once the size is known (proxy.pipeline.thumbor_box);
thumbor's trim and colour filters have options of their own. What the
pipeline cannot do is refused with a line that says which part; nothing is
silently approximated.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from itertools import pairwise
from urllib.parse import unquote

from proxy.errors import ForbiddenOption, InvalidOptionArgument, InvalidURL, UnknownOption
from proxy.options.model import (
    ANCHORS,
    THUMBOR_SMART,
    Gravity,
    GravityType,
    ProcessingOptions,
    ThumborBox,
    ThumborWatermark,
    Trim,
)
from proxy.options.parse import ParserConfig, parse_options

_PATH = re.compile(
    r"(?:(?P<meta>meta)/)?"
    r"(?:(?P<trim>trim(?::(?:top-left|bottom-right))?(?::\d+)?)/)?"
    r"(?:(?P<crop>\d+)x(?P<crop_top>\d+):(?P<crop_right>\d+)x(?P<crop_bottom>\d+)/)?"
    r"(?:(?P<adaptive>adaptive-)?(?P<full>full-)?(?P<fit_in>fit-in)/)?"
    r"(?:(?P<hflip>-)?(?P<width>\d+|orig)?x(?P<vflip>-)?(?P<height>\d+|orig)?/)?"
    r"(?:(?P<halign>left|right|center)/)?"
    r"(?:(?P<valign>top|bottom|middle)/)?"
    r"(?:(?P<smart>smart)/)?"
    r"(?:filters:(?P<filters>.+?\))/)?"
    r"(?P<image>.+)",
    re.DOTALL,
)
_FILTER_NAME = re.compile(r"(?P<name>[a-z_]+)\(")
_SCHEME = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://")

# thumbor's alignments -> imgproxy's gravity (the crop keeps that edge or corner).
_GRAVITY = {
    ("left", "top"): "nowe",
    ("center", "top"): "no",
    ("right", "top"): "noea",
    ("left", "middle"): "we",
    ("center", "middle"): "ce",
    ("right", "middle"): "ea",
    ("left", "bottom"): "sowe",
    ("center", "bottom"): "so",
    ("right", "bottom"): "soea",
}

# CSS's basic colour names, which thumbor's fill() and background_color() take too.
_NAMED_COLOURS = {
    "black": "000000", "silver": "c0c0c0", "gray": "808080", "grey": "808080",
    "white": "ffffff", "maroon": "800000", "red": "ff0000", "purple": "800080",
    "fuchsia": "ff00ff", "green": "008000", "lime": "00ff00", "olive": "808000",
    "yellow": "ffff00", "navy": "000080", "blue": "0000ff", "teal": "008080",
    "aqua": "00ffff", "orange": "ffa500",
}  # fmt: skip

_MIRRORED = {"left": "right", "right": "left", "top": "bottom", "bottom": "top"}

_FORMATS = {"jpeg": "jpeg", "jpg": "jpeg", "png": "png", "webp": "webp", "gif": "gif",
            "avif": "avif"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ThumborRequest:
    options: ProcessingOptions
    meta: bool  # `meta/`: thumbor's JSON of the operations instead of the image
    image: str = ""  # the image as the path names it (meta/ reports it, quoted)


# Filters with options of their own that thumbor runs in URL order with its
# pixel filters (a grayscale() before fill(red) leaves the fill red): each is
# also listed among the adjustments where it stands (rotate() with its turn,
# the others with no arguments). The pipeline turns the source first; the
# filters before a rotate() are run on the result turned back.
ORDERED = frozenset({"fill", "round_corner", "watermark", "rotate", "upscale"})
# Filters whose options the model holds once (a second would repeat the last).
_ONCE = frozenset({"fill", "round_corner"})
# thumbor draws every watermark() of a URL; each is a fetch of its own, so a
# URL may not ask for many (a logo and a credit line are two).
MAX_WATERMARKS = 4

_THUMBOR_SIGNATURE = re.compile(r"/?(?:unsafe|[A-Za-z0-9_-]{27}=)/")


def looks_like_thumbor(raw_path: str) -> bool:
    """`/unsafe/...` or a thumbor signature (28 characters of base64 of SHA-1) first."""
    return _THUMBOR_SIGNATURE.match(raw_path) is not None


def asks_thumbor_options(path: str) -> bool:
    """A path after its signature that uses thumbor's own syntax (a size,
    fit-in, a crop, an alignment, smart, trim, meta or filters) before its
    image: thumbor's reading, since an imgproxy path matches only as an image."""
    found = _PATH.fullmatch(path.lstrip("/"))
    return found is not None and any(
        value for name, value in found.groupdict().items() if name != "image"
    )


def parse_thumbor(path: str, config: ParserConfig) -> ThumborRequest:
    """A thumbor path after its signature ("fit-in/300x200/example.com/a.jpg")."""
    found = _PATH.fullmatch(path.lstrip("/"))
    if found is None or not found["image"]:
        raise InvalidURL("invalid thumbor URL: no image")
    part = found.groupdict()
    segments: list[str] = []
    enlarge, box = _geometry(part, segments)
    trim = _trim(part["trim"]) if part["trim"] else None
    filters = _filters(part["filters"] or "")
    resize_index = next((i for i, s in enumerate(segments) if s.startswith("rs:")), None)
    adjustments: list[tuple[str, AdjustmentArgs]] = []
    thumbor_fill, fill_transparent = "", False
    round_corner: tuple[int, int, int, int, int, int] | None = None
    watermarks: list[ThumborWatermark] = []
    max_age: int | None = None
    png_to_jpeg = False
    for name, args in filters:
        if name == "redeye":
            name = "red_eye"  # thumbor's filter is red_eye(); the other spelling is common
        if name in _ADJUSTMENTS:
            adjustments.append((name, _ADJUSTMENTS[name](args)))
            continue
        if name == "focal":
            box = replace(box, focal=(*box.focal, _focal(args)))
            continue
        if name == "extract_focal":
            _arity("extract_focal", args, 0, 0)
            extracted = _extract_focal(part["image"])
            if extracted is not None:
                part["image"], region = extracted
                box = replace(box, focal=(*box.focal, region))
            continue
        if name == "no_upscale":
            _arity("no_upscale", args, 0, 0)
            box = replace(box, no_upscale=True)
            continue
        if name == "max_age":
            _arity("max_age", args, 1, 1)
            if not args[0].isdigit():
                raise InvalidOptionArgument(f"invalid thumbor max_age() seconds: {args[0][:20]}")
            max_age = int(_number("max_age", args[0], 0, MAX_AGE_LIMIT))
            continue
        if name == "frame":
            _arity("frame", args, 1, 1)
            if not args[0] or any(n == "frame" for n, _ in adjustments):
                raise InvalidOptionArgument("thumbor frame() takes one image URL, once")
            adjustments.append(("frame", (_image_url(args[0].strip("'")),)))
            continue
        if name == "autojpg":
            _arity("autojpg", args, 0, 1)
            png_to_jpeg = _boolean("autojpg", args[0]) if args else True
            continue
        if name in _ONCE and any(n == name for n, _ in adjustments):
            # Each reads one set of options; drawing the last one twice would be wrong.
            raise InvalidOptionArgument(f"thumbor {name}() once per URL")
        if name == "fill":
            thumbor_fill, fill_transparent = _fill(args, segments)
            adjustments.append(("fill", ()))  # its place among the filters (see ORDERED)
            continue
        if name == "round_corner":
            round_corner = _round_corner(args)
            adjustments.append(("round_corner", ()))
            continue
        if name == "watermark":
            if len(watermarks) == MAX_WATERMARKS:
                raise InvalidOptionArgument(
                    f"thumbor watermark() at most {MAX_WATERMARKS} times in one URL"
                )
            watermarks.append(_watermark(args))
            adjustments.append(("watermark", ()))  # the n-th draws the n-th (ORDERED)
            continue
        handler = _FILTERS.get(name)
        if handler is None:
            raise UnknownOption(f"unknown or unsupported thumbor filter: {name[:40]}")
        enlarge = handler(args, segments, enlarge, resize_index)
        if name == "rotate":
            # Where it stands, and by how much: each rotate() turns what is there.
            adjustments.append(("rotate", (_clockwise(args),)))
        elif name == "upscale" and resize_index is not None:
            # thumbor grows its result to the URL's box where upscale() stands
            # (after a rotate() it fits the turned picture in the unturned box);
            # a box with a 0 side that fit-in did not fill in does nothing.
            adjustments.append(("upscale", ()))
    if enlarge and resize_index is not None:
        segments.append("el:1")
    # thumbor's segments are ours, written with imgproxy's separator and never presets.
    config = replace(config, separator=":", only_presets=False)
    options = parse_options(tuple(segments), _image_url(part["image"]), None, config)
    if config.allowed_options:
        _check_allowed(
            trim, adjustments, box, thumbor_fill, round_corner, watermarks, png_to_jpeg, config
        )
    # thumbor writes its source's format when no format() is asked (a WebP
    # stays WebP; imgproxy's preferred formats would make it JPEG).
    extra: dict[str, object] = {"source_formats_kept": THUMBOR_WRITES}
    if part["smart"]:
        # thumbor's smart: its detectors (faces, then features), not imgproxy's
        # crop; the alignment (flipped and turned as parsed) when they find
        # nothing. With fit-in nothing is cut; meta/ still reports the faces.
        anchor = ANCHORS.get(options.gravity.type, (0.5, 0.5))
        extra["gravity"] = Gravity(GravityType.SMART, *anchor, objects=THUMBOR_SMART)
    if adjustments:
        extra["adjustments"] = tuple(adjustments)
    if box != ThumborBox():
        extra["thumbor_box"] = box
    if trim is not None:
        extra["trim"] = trim
    if thumbor_fill:
        extra["thumbor_fill"] = thumbor_fill
        extra["thumbor_fill_transparent"] = fill_transparent
    if round_corner is not None:
        extra["round_corner"] = round_corner
    if watermarks:
        extra["thumbor_watermarks"] = tuple(watermarks)
    if max_age is not None:
        extra["max_age"] = max_age
    if png_to_jpeg:
        extra["png_to_jpeg"] = True
    options = replace(options, **extra)  # type: ignore[arg-type]
    return ThumborRequest(options, meta=bool(part["meta"]), image=part["image"])


# What a thumbor operation outside the option segments counts as under
# ALLOWED_PROCESSING_OPTIONS (the segments are checked as they are parsed);
# None: no imgproxy option is that operation, so an allow-list refuses it.
_ALLOWED_AS: dict[str, str | None] = {
    "trim": "trim",
    "brightness": "brightness",
    "contrast": "contrast",
    "grayscale": "monochrome",
    "rgb": None,
    "orig, adaptive or full fit-in": "resize",
    "focal": "gravity",
    "fill": "background",
    "round_corner": None,
    "watermark": "watermark_url",
    "saturation": "saturation",
    "colorize": "colorize",
    "equalize": None,
    "curve": None,
    "convolution": None,
    "noise": None,
    "red_eye": None,
    "autojpg": "format",
    "frame": None,
    "background_color": "background",
    "proportion": "zoom",
    "sharpen": "sharpen",
    "blur": "blur",
    "upscale": "enlarge",
}


def _check_allowed(
    trim: Trim | None,
    adjustments: list[tuple[str, AdjustmentArgs]],
    box: ThumborBox,
    fill: str,
    round_corner: object,
    watermarks: list[ThumborWatermark],
    png_to_jpeg: bool,
    config: ParserConfig,
) -> None:
    used = [name for name, _ in adjustments if name not in ORDERED]
    used += ["trim"] if trim is not None else []
    used += ["focal"] if box.focal else []
    fitted = box.orig_width or box.orig_height or box.adaptive or box.full
    used += ["orig, adaptive or full fit-in"] if fitted else []
    used += ["fill"] if fill else []
    used += ["round_corner"] if round_corner is not None else []
    used += ["watermark"] if watermarks else []
    used += ["autojpg"] if png_to_jpeg else []
    used += ["upscale"] if any(name == "upscale" for name, _ in adjustments) else []
    for name in used:
        if _ALLOWED_AS[name] not in config.allowed_options:
            raise ForbiddenOption(f"forbidden processing option: thumbor {name}")


def _geometry(part: dict[str, str | None], segments: list[str]) -> tuple[bool, ThumborBox]:
    """Crop, size, fit and alignment as imgproxy segments, and what needs the source's size.

    Returns whether to enlarge, and thumbor's size rules the pipeline resolves.
    """
    box = ThumborBox(
        adaptive=bool(part["adaptive"]),
        full=bool(part["full"]),
        orig_width=part["width"] == "orig",
        orig_height=part["height"] == "orig",
    )
    if part["crop"] is not None:
        left, top = int(part["crop"]), int(part["crop_top"] or 0)
        right, bottom = int(part["crop_right"] or 0), int(part["crop_bottom"] or 0)
        if right > left and bottom > top:  # thumbor ignores an empty crop too
            segments.append(f"c:{right - left}:{bottom - top}:nowe:{left}:{top}")
            box = replace(box, crop=True)
    width = 0 if box.orig_width else int(part["width"] or 0)
    height = 0 if box.orig_height else int(part["height"] or 0)
    sized = bool(width or height or box.orig_width or box.orig_height)
    if part["hflip"] or part["vflip"]:
        segments.append(f"fl:{int(bool(part['hflip']))}:{int(bool(part['vflip']))}")
    # thumbor flips the result; the pipeline flips the source before cutting
    # it, so the kept side is the mirrored one (left kept, then flipped, is
    # the flipped picture's right).
    halign, valign = part["halign"] or "center", part["valign"] or "middle"
    if part["hflip"]:
        halign = _MIRRORED.get(halign, halign)
    if part["vflip"]:
        valign = _MIRRORED.get(valign, valign)
    gravity = _GRAVITY[(halign, valign)]  # smart's too: where it centres when nothing is found
    if gravity != "ce":
        # Also with nothing to place (fit-in, no size): meta/ reports its point.
        segments.append(f"g:{gravity}")
    if part["fit_in"]:
        if not sized and not box.full:
            # thumbor's box is then the picture's own size: nothing to fit.
            return False, replace(box, adaptive=False)
        if not sized:
            # full-fit-in resizes to the picture's own size, and the box (which
            # fill() and upscale() read) becomes that size: `orig` both ways.
            box = replace(box, adaptive=False, orig_width=True, orig_height=True)
        segments.append(f"rs:fit:{width}:{height}")
        if not (width or box.orig_width) or not (height or box.orig_height):
            box = replace(box, fit_one_side=True)
        return False, box  # fit-in never enlarges (upscale() grows the result among the filters)
    if sized:
        # Both sizes: cropped to fill them, as thumbor does (enlarging too);
        # one size: the other in proportion.
        both = (width or box.orig_width) and (height or box.orig_height)
        segments.append(f"rs:{'fill' if both else 'fit'}:{width}:{height}")
        return True, box if both else replace(box, fill_one_side=True)
    return False, box


def _trim(text: str) -> Trim:
    """trim[:top-left|:bottom-right][:tolerance]"""
    corner, tolerance = "top-left", 0
    for part in text.split(":")[1:]:
        if part in ("top-left", "bottom-right"):
            corner = part
        else:
            tolerance = int(part)
    if tolerance > 442:  # the largest RGB distance
        raise InvalidOptionArgument("thumbor trim tolerance out of range")
    return Trim(threshold=tolerance, thumbor_corner=corner)


def _filters(text: str) -> list[tuple[str, list[str]]]:
    """name(args):name(args):... with brackets nested in the arguments (curve's points)."""
    if not text:
        return []
    found: list[tuple[str, list[str]]] = []
    position = 0
    while position < len(text):
        match = _FILTER_NAME.match(text, position)
        end = _closing(text, match.end()) if match else -1
        if match is None or end < 0:
            raise InvalidURL(f"invalid thumbor filters: {text[position : position + 40]}")
        inside = text[match.end() : end]
        args = [a.strip() for a in _top_level_split(inside)] if inside.strip() else []
        found.append((match["name"], args))
        position = end + 1
        if position < len(text):
            if text[position] != ":":
                raise InvalidURL("invalid thumbor filters: expected ':' between filters")
            position += 1
    return found


def _closing(text: str, start: int) -> int:
    """Where the parenthesis opened just before `start` closes (-1: never)."""
    depth = 1
    for index in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[index], 0)
        if depth == 0:
            return index
    return -1


def _top_level_split(text: str) -> list[str]:
    """Split at commas outside () and []: curve([(0,0),(255,255)],...) has four arguments."""
    parts, depth, start = [], 0, 0
    for index, char in enumerate(text):
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return parts


def _image_url(image: str) -> str:
    # thumbor takes the image URL plain or URL-encoded, and without a scheme as http.
    url = unquote(image) if "%" in image else image
    return url if _SCHEME.match(url) else "http://" + url


def _number(name: str, text: str, low: float, high: float) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InvalidOptionArgument(f"invalid thumbor {name}() argument: {text[:20]}") from None
    if not low <= value <= high:
        raise InvalidOptionArgument(f"thumbor {name}() argument out of range: {text[:20]}")
    return value


def _arity(name: str, args: list[str], low: int, high: int) -> None:
    if not low <= len(args) <= high:
        raise InvalidOptionArgument(f"thumbor {name}() takes {low} to {high} arguments")


def _colour(name: str, text: str) -> str:
    value = _NAMED_COLOURS.get(text.lower(), text.lower().lstrip("#"))
    if re.fullmatch(r"[0-9a-f]{3}", value):
        value = "".join(ch * 2 for ch in value)
    if not re.fullmatch(r"[0-9a-f]{6}", value):
        raise InvalidOptionArgument(f"invalid thumbor {name}() colour: {text[:20]}")
    return value


# The source formats thumbor's PIL engine writes back as they came.
THUMBOR_WRITES = ("jpeg", "png", "gif", "webp")

FilterHandler = Callable[[list[str], list[str], bool, int | None], bool]


def _quality(args: list[str], segments: list[str], enlarge: bool, _r: int | None) -> bool:
    _arity("quality", args, 1, 1)
    segments.append(f"q:{int(_number('quality', args[0], 1, 100))}")
    return enlarge


def _format(args: list[str], segments: list[str], enlarge: bool, _r: int | None) -> bool:
    _arity("format", args, 1, 1)
    fmt = _FORMATS.get(args[0].lower())
    if fmt is None:
        raise InvalidOptionArgument(f"invalid thumbor format(): {args[0][:20]}")
    segments.append(f"f:{fmt}")
    return enlarge


def _blur(args: list[str]) -> AdjustmentArgs:
    """blur(radius[, sigma]): thumbor's Gaussian of sigma (the radius unless
    given), cut at the radius (whole pixels, as thumbor's number reads it)."""
    _arity("blur", args, 1, 2)
    radius = int(_number("blur", args[0], 1, 150))
    sigma = _number("blur", args[1], 0, 150) if len(args) == 2 else 0
    return radius, sigma


def _background(args: list[str]) -> AdjustmentArgs:
    """background_color(colour): the transparent parts painted where the filter
    stands, so the filters after it see the paint (thumbor pastes the picture
    on a canvas of the colour there)."""
    _arity("background_color", args, 1, 1)
    return (_colour("background_color", args[0]),)


def _fill(args: list[str], segments: list[str]) -> tuple[str, bool]:
    """fill(colour|transparent|auto|blur[, fill_transparent]): a fit-in result
    extended to the asked size, the new area painted (a colour, nothing, the
    image's mean colour, the image blurred). thumbor pastes the picture as it
    is, its transparency kept, unless fill_transparent blends it onto the
    paint: that case with a colour is imgproxy's `background` with `extend`.
    Returns the thumbor_fill mode ("" when the segments say it all) and the flag.
    """
    _arity("fill", args, 1, 2)
    fill_transparent = _boolean("fill", args[1]) if len(args) > 1 else False
    mode = args[0].lower()
    segments.append("ex:1")
    if mode == "transparent":
        return "", False
    if mode in ("auto", "blur"):
        return mode, fill_transparent
    colour = _colour("fill", args[0])
    if fill_transparent:
        segments.append(f"bg:{colour}")
        return "", False
    return colour, False


# Where each gravity points after the source turns a quarter clockwise.
_QUARTER_TURN = {
    "no": "ea", "ea": "so", "so": "we", "we": "no",
    "noea": "soea", "soea": "sowe", "sowe": "nowe", "nowe": "noea",
    "ce": "ce", "sm": "sm",
}  # fmt: skip


def _rotate(args: list[str], segments: list[str], enlarge: bool, resize: int | None) -> bool:
    """thumbor turns the result counter-clockwise; imgproxy turns the source clockwise.

    So the turn is imgproxy's -angle, and for a quarter turn the asked size
    and the gravity turn with it: cropping the turned source to the turned
    box is the same picture as turning the cropped result.
    """
    clockwise = _clockwise(args)
    if clockwise in (90, 270):
        # A manual crop, focal regions and `orig` stay in the upright source's
        # pixels: the pipeline turns them (thumbor_box.resolve_thumbor_box).
        for index, segment in enumerate(segments):
            name, *values = segment.split(":")
            if name == "rs":
                values[1], values[2] = values[2], values[1]
            elif name == "fl":
                values = values[::-1]
            segments[index] = ":".join([name, *values])
    if clockwise:
        # The gravity turns with the source, a half turn too (top kept, then
        # turned, is the turned picture's bottom).
        for index, segment in enumerate(segments):
            name, *values = segment.split(":")
            if name == "g":
                for _turn in range(clockwise // 90):
                    values[0] = _QUARTER_TURN[values[0]]
                segments[index] = ":".join([name, *values])
        # Several rotate()s turn the source once, by their sum.
        before = next((int(s[4:]) for s in segments if s.startswith("rot:")), 0)
        segments[:] = [s for s in segments if not s.startswith("rot:")]
        if (before + clockwise) % 360:
            segments.append(f"rot:{(before + clockwise) % 360}")
    return enlarge


def _clockwise(args: list[str]) -> int:
    """rotate(angle)'s turn as imgproxy's (clockwise, of the source): thumbor
    turns its result counter-clockwise, and ignores angles off the quarters."""
    _arity("rotate", args, 1, 1)
    angle = int(_number("rotate", args[0], -3600, 3600))
    return 0 if angle % 90 else -angle % 360


def _strip_exif(args: list[str], segments: list[str], enlarge: bool, _r: int | None) -> bool:
    _arity("strip_exif", args, 0, 0)
    segments += ["sm:1", "kcr:0"]
    return enlarge


def _strip_icc(args: list[str], segments: list[str], enlarge: bool, _r: int | None) -> bool:
    _arity("strip_icc", args, 0, 0)
    segments.append("scp:1")
    return enlarge


def _upscale(args: list[str], segments: list[str], enlarge: bool, resize: int | None) -> bool:
    """upscale(): drawn where it stands among the filters (see the loop)."""
    _arity("upscale", args, 0, 0)
    return enlarge


def _max_bytes(args: list[str], segments: list[str], enlarge: bool, _r: int | None) -> bool:
    _arity("max_bytes", args, 1, 1)
    segments.append(f"mb:{int(_number('max_bytes', args[0], 1, 1e12))}")
    return enlarge


def _proportion(args: list[str]) -> AdjustmentArgs:
    """proportion(value): the result scaled where the filter stands (a
    watermark before it shrinks with the picture), sides truncated to whole
    pixels, as thumbor's engine resizes; 0 (ignored by thumbor) scales by 1."""
    _arity("proportion", args, 1, 1)
    return (_number("proportion", args[0], 0, 1),)


def _stretch(args: list[str], segments: list[str], enlarge: bool, resize: int | None) -> bool:
    _arity("stretch", args, 0, 0)
    # Not fit-in (which enlarges): resized to the box without a crop. thumbor's
    # fit-in ignores stretch().
    if resize is not None and enlarge and segments[resize].startswith(("rs:fill:", "rs:fit:")):
        segments[resize] = "rs:force:" + segments[resize].split(":", 2)[2]
    return enlarge


def _sharpen(args: list[str]) -> AdjustmentArgs:
    """sharpen(amount, radius, luminance_only): thumbor's wavelet sharpen."""
    _arity("sharpen", args, 3, 3)
    amount = _number("sharpen", args[0], 0, 10)
    radius = _number("sharpen", args[1], 0, 10)
    return amount, radius, int(_boolean("sharpen", args[2]))


# thumbor's pixel filters: each reads its arguments into the values the
# pipeline's step of the same name takes (proxy.pipeline.thumbor_filters).
AdjustmentArgs = tuple[int | float | str, ...]


def _percentages(name: str, count: int) -> Callable[[list[str]], AdjustmentArgs]:
    """brightness, contrast, rgb, grayscale: integers within -100..100 (thumbor's ranges)."""

    def read(args: list[str]) -> AdjustmentArgs:
        _arity(name, args, count, count)
        return tuple(int(_number(name, arg, -100, 100)) for arg in args)

    return read


def _saturation(args: list[str]) -> AdjustmentArgs:
    _arity("saturation", args, 1, 1)
    return (_number("saturation", args[0], -100, 100),)


def _colorize(args: list[str]) -> AdjustmentArgs:
    """colorize(red%, green%, blue%, fill): each channel blended that far towards fill's."""
    _arity("colorize", args, 4, 4)
    percents = (int(_number("colorize", arg, 0, 100)) for arg in args[:3])
    if not all(arg.isdigit() for arg in args[:3]):
        raise InvalidOptionArgument("thumbor colorize() percentages are whole numbers 0-100")
    return (*percents, _colour("colorize", args[3]))


def _no_arguments(name: str) -> Callable[[list[str]], AdjustmentArgs]:
    def read(args: list[str]) -> AdjustmentArgs:
        _arity(name, args, 0, 0)
        return ()

    return read


_CURVE = re.compile(r"\[(?:\(\d+,\d+\),?)*\]")
_POINT = re.compile(r"\((\d+),(\d+)\)")


def _curve(args: list[str]) -> AdjustmentArgs:
    """curve(all, red, green, blue): each [(x,y),...] with x rising, 0-255.

    Kept as text `x-y_x-y...`: the cache key reads it, the step rebuilds the points.
    """
    _arity("curve", args, 4, 4)
    curves = []
    for text in args:
        points = [(int(x), int(y)) for x, y in _POINT.findall(text)]
        if not _CURVE.fullmatch(text) or not points:
            raise InvalidOptionArgument(f"invalid thumbor curve() points: {text[:30]}")
        if any(value > 255 for point in points for value in point):
            raise InvalidOptionArgument("thumbor curve() points are 0-255")
        if any(b[0] <= a[0] for a, b in pairwise(points)):
            raise InvalidOptionArgument("thumbor curve() points need rising x")
        curves.append("_".join(f"{x}-{y}" for x, y in points))
    return tuple(curves)


_MATRIX = re.compile(r"-?\d+(?:\.\d*)?(?:;-?\d+(?:\.\d*)?)*")
MAX_KERNEL_SIDE = 15  # a 15x15 kernel already costs 225 multiplies per pixel and channel


def _convolution(args: list[str]) -> AdjustmentArgs:
    """convolution(m1;m2;...;mN, columns[, normalize]): an odd-sided kernel, row by row."""
    _arity("convolution", args, 2, 3)
    if not _MATRIX.fullmatch(args[0]):
        raise InvalidOptionArgument(f"invalid thumbor convolution() matrix: {args[0][:30]}")
    values = args[0].split(";")
    columns = int(_number("convolution", args[1], 1, MAX_KERNEL_SIDE))
    rows = len(values) // columns
    if not args[1].isdigit() or len(values) % columns or rows % 2 == 0 or columns % 2 == 0:
        raise InvalidOptionArgument(
            "thumbor convolution() needs an odd number of columns and of rows"
        )
    if rows > MAX_KERNEL_SIDE:
        raise InvalidOptionArgument(
            f"thumbor convolution() kernels are at most {MAX_KERNEL_SIDE}x{MAX_KERNEL_SIDE}"
        )
    normalize = _boolean("convolution", args[2]) if len(args) == 3 else True
    kernel = ";".join(f"{float(value):g}" for value in values)
    return kernel, columns, int(normalize)


def _noise(args: list[str]) -> AdjustmentArgs:
    """noise(amount[, seed]): one random step per pixel, the same in each channel."""
    _arity("noise", args, 1, 2)
    if not all(arg.isdigit() for arg in args):
        raise InvalidOptionArgument("thumbor noise() takes whole numbers")
    amount = int(_number("noise", args[0], 0, 100))
    seed = int(_number("noise", args[1], 0, 2**31 - 1)) if len(args) == 2 else 0
    return amount, seed


def _boolean(name: str, text: str) -> bool:
    if text not in ("true", "True", "1", "false", "False", "0"):
        raise InvalidOptionArgument(f"invalid thumbor {name}() flag: {text[:20]}")
    return text in ("true", "True", "1")


_ADJUSTMENTS: dict[str, Callable[[list[str]], AdjustmentArgs]] = {
    "brightness": _percentages("brightness", 1),
    "contrast": _percentages("contrast", 1),
    "rgb": _percentages("rgb", 3),
    "grayscale": _no_arguments("grayscale"),
    "saturation": _saturation,
    "colorize": _colorize,
    "equalize": _no_arguments("equalize"),
    "curve": _curve,
    "convolution": _convolution,
    "noise": _noise,
    "red_eye": _no_arguments("red_eye"),
    "background_color": _background,
    "proportion": _proportion,
    "sharpen": _sharpen,
    "blur": _blur,
}


_POSITION = re.compile(r"-?\d+p?|center|repeat")


def _watermark(args: list[str]) -> ThumborWatermark:
    """watermark(url, x, y, alpha[, w_ratio, h_ratio]); the URL as thumbor's image URLs."""
    _arity("watermark", args, 4, 6)
    url, x, y, alpha = args[:4]
    if not url or not _POSITION.fullmatch(x) or not _POSITION.fullmatch(y):
        raise InvalidOptionArgument("invalid thumbor watermark(): expected url, x, y, alpha")
    ratios = []
    for text in args[4:6]:
        ratios.append(0.0 if text == "none" else _number("watermark", text, 0, 100) / 100)
    ratios += [0.0] * (2 - len(ratios))
    return ThumborWatermark(
        _image_url(url), x, y, int(_number("watermark", alpha, 0, 100)), ratios[0], ratios[1]
    )


MAX_AGE_LIMIT = 10 * 365 * 86400  # ten years: past any cache's horizon
_DOMAIN = re.compile(r"^(?:https?://)?.*?/")
_NESTING = 10  # thumbor's MAX_LEVEL


def _extract_focal(image: str) -> tuple[str, tuple[int, int, int, int]] | None:
    """extract_focal(): the image is itself a thumbor URL with a manual crop.

    As thumbor: its host dropped, a signed or `unsafe/` thumbor path with
    `AxB:CxD/` gives the focal region and the image inside it (up to ten
    levels deep); anything else leaves the URL and the focus as they were.
    """
    url = unquote(image) if "%" in image else image
    for _level in range(_NESTING):
        url = _DOMAIN.sub("", url, count=1)
        signature = _THUMBOR_SIGNATURE.match("/" + url)
        inner = _PATH.fullmatch(url[signature.end() - 1 :]) if signature else None
        if inner is None or not inner["image"]:
            return None
        if inner["crop"] is not None:
            left, top = int(inner["crop"]), int(inner["crop_top"])
            right, bottom = int(inner["crop_right"]), int(inner["crop_bottom"])
            if right < left or bottom < top:
                return None
            return inner["image"], (left, top, right, bottom)
        url = inner["image"]
    return None


def _round_corner(args: list[str]) -> tuple[int, int, int, int, int, int]:
    """round_corner(a|b, r, g, b[, transparent])"""
    _arity("round_corner", args, 4, 5)
    radii = args[0].split("|")
    if len(radii) > 2 or not all(radius.isdigit() for radius in radii):
        raise InvalidOptionArgument(f"invalid thumbor round_corner() radius: {args[0][:20]}")
    a = int(radii[0])
    b = int(radii[1]) if len(radii) == 2 else a
    red, green, blue = (int(_number("round_corner", v, 0, 255)) for v in args[1:4])
    transparent = len(args) == 5 and args[4].lower() in ("true", "1")
    return min(a, 10_000), min(b, 10_000), red, green, blue, int(transparent)


def _focal(args: list[str]) -> tuple[int, int, int, int]:
    """focal(AxB:CxD): a region of the source, in pixels."""
    _arity("focal", args, 1, 1)
    found = re.fullmatch(r"(\d+)x(\d+):(\d+)x(\d+)", args[0])
    if found is None:
        raise InvalidOptionArgument(f"invalid thumbor focal() region: {args[0][:30]}")
    left, top, right, bottom = (int(value) for value in found.groups())
    if right < left or bottom < top:
        raise InvalidOptionArgument("invalid thumbor focal() region: right/bottom before left/top")
    return left, top, right, bottom


_FILTERS: dict[str, FilterHandler] = {
    "quality": _quality,
    "format": _format,
    "rotate": _rotate,
    "strip_exif": _strip_exif,
    "strip_icc": _strip_icc,
    "upscale": _upscale,
    "max_bytes": _max_bytes,
    "stretch": _stretch,
}
