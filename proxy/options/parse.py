"""Option segments -> ProcessingOptions, through one table of option parsers.

Each option is declared once in `OPTIONS`: its full name, its aliases and a
parser. A parser reads the option's arguments and writes fields into the
draft (a plain dict) that becomes the frozen `ProcessingOptions` at the end.
Argument rules follow imgproxy's documentation; every rejection raises an
`InvalidURL` subclass (404, as imgproxy) with a one-line reason.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from proxy.errors import ForbiddenOption, InvalidOptionArgument, UnknownOption, UnknownPreset
from proxy.options.formats import (
    INPUT_FORMATS,
    OUTPUT_FORMATS,
    REQUESTABLE_FORMATS,
    normalise_format_name,
)
from proxy.options.markup import check_markup
from proxy.options.model import (
    OBJECT_CLASSES,
    Colour,
    Crop,
    Effects,
    Gravity,
    GravityType,
    ProcessingOptions,
    ResizingType,
    Trim,
    UnsharpMasking,
    UnsharpMode,
    Watermark,
    WatermarkPosition,
)
from proxy.options.url import ARGUMENT_SEPARATOR
from signing.options import OPTION_NAMES_BY_NAME

if TYPE_CHECKING:
    from proxy.settings import Settings

# Larger than any encoder we use can write (JPEG: 65535); rejecting here keeps
# absurd numbers from reaching the arithmetic at all.
MAX_DIMENSION = 65535

Draft = dict[str, Any]
OptionParser = Callable[[list[str], Draft, "ParserConfig"], None]


@dataclass(frozen=True, slots=True)
class ParserConfig:
    """What parsing needs from the settings: presets and the defaults."""

    presets: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    auto_rotate: bool = True
    strip_metadata: bool = True
    keep_copyright: bool = True
    strip_color_profile: bool = True
    return_attachment: bool = False
    quality: int = 80
    format_quality: Mapping[str, int] = field(default_factory=lambda: {"avif": 65})
    enforce_thumbnail: bool = False
    skip_processing: tuple[str, ...] = ()
    auto_quality: bool = False  # PIXELPIPE_AUTO_QUALITY: `quality:auto` unless a URL says
    separator: str = ARGUMENT_SEPARATOR  # ARGUMENTS_SEPARATOR
    allowed_options: frozenset[str] = frozenset()  # ALLOWED_PROCESSING_OPTIONS; empty: all
    only_presets: bool = False  # ONLY_PRESETS: every option segment names presets
    unsharp: UnsharpMasking = field(default_factory=UnsharpMasking)  # UNSHARP_MASKING_*

    @classmethod
    def from_settings(cls, settings: Settings) -> ParserConfig:
        return cls(
            presets=settings.presets,
            auto_rotate=settings.auto_rotate,
            strip_metadata=settings.strip_metadata,
            keep_copyright=settings.keep_copyright,
            strip_color_profile=settings.strip_color_profile,
            return_attachment=settings.return_attachment,
            quality=settings.quality,
            format_quality=settings.format_quality,
            enforce_thumbnail=settings.enforce_thumbnail,
            skip_processing=settings.skip_processing_formats,
            auto_quality=settings.auto_quality,
            separator=settings.arguments_separator,
            allowed_options=allowed_option_names(settings.allowed_processing_options),
            only_presets=settings.only_presets,
            unsharp=UnsharpMasking(
                UnsharpMode(settings.unsharp_masking_mode),
                settings.unsharp_masking_weight,
                settings.unsharp_masking_divider,
            ),
        )


@dataclass(frozen=True, slots=True)
class OptionSpec:
    name: str
    aliases: tuple[str, ...]
    parser: OptionParser
    args: str  # argument synopsis, for the README
    default: str  # what applies when the option is absent, for the README


# --- argument readers -------------------------------------------------------


def _bad(option: str, args: list[str], expected: str) -> InvalidOptionArgument:
    given = ARGUMENT_SEPARATOR.join(args)
    return InvalidOptionArgument(f"invalid {option} arguments {given!r}: expected {expected}")


def _arity(option: str, args: list[str], low: int, high: int, synopsis: str) -> None:
    if not low <= len(args) <= high:
        raise _bad(option, args, synopsis)


def read_bool(option: str, text: str) -> bool:
    # Go's strconv.ParseBool spellings, which imgproxy's URL builders emit.
    if text in {"1", "t", "T", "true", "TRUE", "True"}:
        return True
    if text in {"0", "f", "F", "false", "FALSE", "False"}:
        return False
    raise _bad(option, [text], "1, t, true, 0, f or false")


def read_dimension(option: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise _bad(option, [text], "a whole number >= 0") from None
    if not 0 <= value <= MAX_DIMENSION:
        raise _bad(option, [text], f"a whole number from 0 to {MAX_DIMENSION}")
    return value


def read_float(option: str, text: str, *, low: float, low_inclusive: bool, high: float) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _bad(option, [text], "a number") from None
    ok = math.isfinite(value) and (value >= low if low_inclusive else value > low)
    if not ok or value > high:
        bound = ">=" if low_inclusive else ">"
        raise _bad(option, [text], f"a number {bound} {format(low, 'g')} and <= {high:g}")
    return value


def read_positive_float(option: str, text: str) -> float:
    return read_float(option, text, low=0.0, low_inclusive=False, high=float(MAX_DIMENSION))


def read_gravity(option: str, args: list[str], *, allow_smart: bool) -> Gravity:
    if not args or not args[0]:
        raise _bad(option, args, "a gravity type")
    if args[0] == "objw":
        if not allow_smart:
            raise _bad(option, args, "a gravity other than objw")
        return Gravity(GravityType.OBJECT, objects=read_weighted_classes(option, args[1:]))
    try:
        kind = GravityType(args[0])
    except ValueError:
        raise _bad(
            option, args, "no, so, ea, we, noea, nowe, soea, sowe, ce, sm, fp, obj or objw"
        ) from None
    if kind is GravityType.SMART:
        if not allow_smart:
            raise _bad(option, args, "a gravity other than sm")
        _arity(option, args, 1, 1, "sm with no offsets")
        return Gravity(kind)
    if kind is GravityType.OBJECT:
        if not allow_smart:
            raise _bad(option, args, "a gravity other than obj")
        return Gravity(kind, objects=read_object_classes(option, args[1:]))
    if kind is GravityType.FOCUS_POINT:
        _arity(option, args, 3, 3, "fp:x:y with x and y from 0 to 1")
        x = read_float(option, args[1], low=0.0, low_inclusive=True, high=1.0)
        y = read_float(option, args[2], low=0.0, low_inclusive=True, high=1.0)
        return Gravity(kind, x, y)
    _arity(option, args, 1, 3, "type[:x_offset[:y_offset]]")
    offsets = [read_offset(option, text) for text in args[1:]] + [0.0, 0.0]
    return Gravity(kind, offsets[0], offsets[1])


def read_object_classes(option: str, names: list[str]) -> tuple[str, ...]:
    """g:obj's classes: none named, or imgproxy Pro's `all`, is every class
    we detect; a class we cannot detect is refused, not cropped by the centre."""
    if not names or "all" in names:
        return tuple(sorted(OBJECT_CLASSES))
    classes = tuple(dict.fromkeys(names))
    unknown = [name for name in classes if name not in OBJECT_CLASSES]
    if unknown:
        raise InvalidOptionArgument(
            f"invalid {option} arguments: unknown object class {unknown[0]!r} "
            f"(detected here: {', '.join(sorted(OBJECT_CLASSES))})"
        )
    return classes


def read_weighted_classes(option: str, args: list[str]) -> tuple[str, ...]:
    """imgproxy Pro's g:objw:CLASS:WEIGHT[:CLASS:WEIGHT...]: g:obj with a
    weight per class (`all` sets every class's). A weight ranks one class's
    objects against another's; with faces the only class we detect, no weight
    can change which faces a crop keeps, so the weights are checked and the
    gravity is g:obj's over the same classes (one cache entry for both)."""
    if not args or len(args) % 2:
        raise _bad(option, ["objw", *args], "objw:class:weight[:class:weight...]")
    for weight in args[1::2]:
        read_float(option, weight, low=0.0, low_inclusive=False, high=1e6)
    return read_object_classes(option, args[0::2])


def read_offset(option: str, text: str) -> float:
    # Official URL builders write an unset offset as an empty argument ("ce::5").
    if not text:
        return 0.0
    limit = float(MAX_DIMENSION)
    return read_float(option, text, low=-limit, low_inclusive=True, high=limit)


def read_quality(option: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise _bad(option, [text], "a quality from 0 to 100") from None
    if not 0 <= value <= 100:
        raise _bad(option, [text], "a quality from 0 to 100")
    return value


def read_output_format(option: str, text: str, allowed: frozenset[str] = OUTPUT_FORMATS) -> str:
    fmt = normalise_format_name(text)
    if fmt not in allowed:
        raise _bad(option, [text], "one of " + ", ".join(sorted(allowed | {"jpg"})))
    return fmt


def read_colour(option: str, args: list[str]) -> Colour:
    """`ff8800`, `f80` or `255:136:0`."""
    if len(args) == 3:
        try:
            channels = [int(arg) for arg in args]
        except ValueError:
            raise _bad(option, args, "r:g:b from 0 to 255") from None
        if not all(0 <= c <= 255 for c in channels):
            raise _bad(option, args, "r:g:b from 0 to 255")
        return channels[0], channels[1], channels[2]
    text = args[0] if len(args) == 1 else ""
    digits = text
    if len(digits) == 3:
        digits = "".join(ch * 2 for ch in digits)
    if len(digits) != 6 or any(ch not in "0123456789abcdefABCDEF" for ch in digits):
        raise _bad(option, args, "a hex colour (rrggbb or rgb) or r:g:b")
    value = int(digits, 16)
    return (value >> 16) & 255, (value >> 8) & 255, value & 255


def read_positive_int(option: str, text: str, high: int = MAX_DIMENSION) -> int:
    try:
        value = int(text)
    except ValueError:
        raise _bad(option, [text], "a whole number >= 0") from None
    if not 0 <= value <= high:
        raise _bad(option, [text], f"a whole number from 0 to {high}")
    return value


# --- option parsers ---------------------------------------------------------


def parse_resizing_type(args: list[str], draft: Draft, config: ParserConfig) -> None:
    _arity("resizing_type", args, 1, 1, "fit, fill, fill-down, force or auto")
    try:
        # "fill_down" appears in some URL builders; imgproxy itself spells it "fill-down".
        draft["resizing_type"] = ResizingType(args[0].replace("_", "-"))
    except ValueError:
        raise _bad("resizing_type", args, "fit, fill, fill-down, force or auto") from None


def _dimension_field(option: str, key: str) -> OptionParser:
    def parse(args: list[str], draft: Draft, config: ParserConfig) -> None:
        _arity(option, args, 1, 1, "a whole number")
        draft[key] = read_dimension(option, args[0])

    return parse


def _bool_field(option: str, key: str) -> OptionParser:
    def parse(args: list[str], draft: Draft, config: ParserConfig) -> None:
        _arity(option, args, 1, 1, "a boolean")
        draft[key] = read_bool(option, args[0])

    return parse


parse_width = _dimension_field("width", "width")
parse_height = _dimension_field("height", "height")
parse_min_width = _dimension_field("min-width", "min_width")
parse_min_height = _dimension_field("min-height", "min_height")
parse_enlarge = _bool_field("enlarge", "enlarge")


def parse_extend(args: list[str], draft: Draft, config: ParserConfig) -> None:
    _arity("extend", args, 1, 4, "extend[:gravity[:x[:y]]]")
    draft["extend"] = read_bool("extend", args[0])
    if len(args) > 1:
        draft["extend_gravity"] = read_gravity("extend", args[1:], allow_smart=False)


def parse_size(args: list[str], draft: Draft, config: ParserConfig) -> None:
    _arity("size", args, 1, 7, "width:height:enlarge:extend")
    readers: tuple[OptionParser, ...] = (parse_width, parse_height, parse_enlarge)
    for reader, arg in zip(readers, args, strict=False):
        if arg:
            reader([arg], draft, config)
    if len(args) > 3 and args[3]:
        parse_extend(args[3:], draft, config)


def parse_resize(args: list[str], draft: Draft, config: ParserConfig) -> None:
    _arity("resize", args, 1, 8, "type:width:height:enlarge:extend")
    if args[0]:
        parse_resizing_type(args[:1], draft, config)
    if len(args) > 1:
        parse_size(args[1:], draft, config)


def parse_zoom(args: list[str], draft: Draft, config: ParserConfig) -> None:
    _arity("zoom", args, 1, 2, "zoom or zoom_x:zoom_y")
    draft["zoom_x"] = read_positive_float("zoom", args[0])
    draft["zoom_y"] = read_positive_float("zoom", args[1]) if len(args) > 1 else draft["zoom_x"]


def parse_dpr(args: list[str], draft: Draft, config: ParserConfig) -> None:
    _arity("dpr", args, 1, 1, "a number > 0")
    draft["dpr"] = read_positive_float("dpr", args[0])


def parse_gravity(args: list[str], draft: Draft, config: ParserConfig) -> None:
    draft["gravity"] = read_gravity("gravity", args, allow_smart=True)


def parse_crop(args: list[str], draft: Draft, config: ParserConfig) -> None:
    _arity("crop", args, 1, 5, "width:height[:gravity]")
    sizes = [read_crop_size(text) for text in args[:2]] + [0.0]
    width, height = sizes[0], sizes[1]
    gravity = read_gravity("crop", args[2:], allow_smart=True) if len(args) > 2 else None
    draft["crop"] = Crop(float(width), float(height), gravity)


def read_crop_size(text: str) -> float:
    if not text:  # an empty size is the whole source, as 0
        return 0.0
    return read_float("crop", text, low=0.0, low_inclusive=True, high=float(MAX_DIMENSION))


def parse_quality(args: list[str], draft: Draft, config: ParserConfig) -> None:
    _arity("quality", args, 1, 1, "a quality from 0 to 100, or auto")
    # `auto`: the lowest quality that stays perceptually close (pipeline/quality.py).
    draft["auto_quality"] = args[0] == "auto"
    draft["quality"] = 0 if draft["auto_quality"] else read_quality("quality", args[0])


def parse_format_quality(args: list[str], draft: Draft, config: ParserConfig) -> None:
    if not args or len(args) % 2:
        raise _bad("format_quality", args, "format:quality pairs")
    table = dict(draft["format_quality"])
    for name, quality in zip(args[::2], args[1::2], strict=True):
        table[read_output_format("format_quality", name)] = read_quality("format_quality", quality)
    draft["format_quality"] = table


def parse_format(args: list[str], draft: Draft, config: ParserConfig) -> None:
    _arity("format", args, 1, 1, "an output format")
    draft["format"] = read_output_format("format", args[0], REQUESTABLE_FORMATS)


def parse_cachebuster(args: list[str], draft: Draft, config: ParserConfig) -> None:
    _arity("cachebuster", args, 1, 1, "one string")
    draft["cachebuster"] = args[0]


def parse_expires(args: list[str], draft: Draft, config: ParserConfig) -> None:
    _arity("expires", args, 1, 1, "a unix timestamp")
    try:
        draft["expires"] = int(args[0])
    except ValueError:
        raise _bad("expires", args, "a unix timestamp") from None


def parse_filename(args: list[str], draft: Draft, config: ParserConfig) -> None:
    _arity("filename", args, 1, 2, "filename[:encoded]")
    name = args[0]
    if len(args) > 1 and args[1] and read_bool("filename", args[1]):
        try:
            padded = name + "=" * (-len(name) % 4)
            name = base64.b64decode(padded, altchars=b"-_", validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise _bad("filename", args, "URL-safe base64 when encoded is set") from None
    else:
        name = unquote(name)
    draft["filename"] = name


def parse_preset(args: list[str], draft: Draft, config: ParserConfig) -> None:
    if not args or not all(args):
        raise _bad("preset", args, "preset names")
    for name in args:
        if name not in config.presets:
            raise UnknownPreset(f"unknown preset: {name}")
        stack: list[str] = draft["_presets"]
        if name in stack:  # a preset naming itself, directly or not: skip, as imgproxy
            continue
        stack.append(name)
        apply_segments(config.presets[name], draft, config)
        stack.pop()


def parse_trim(args: list[str], draft: Draft, config: ParserConfig) -> None:
    _arity("trim", args, 1, 4, "threshold[:colour[:equal_hor[:equal_ver]]]")
    if not args[0]:
        draft["trim"] = None  # an empty threshold turns trimming off, as imgproxy
        return
    threshold = read_float("trim", args[0], low=0.0, low_inclusive=True, high=255.0)
    colour = read_colour("trim", args[1:2]) if len(args) > 1 and args[1] else None
    equal_hor = read_bool("trim", args[2]) if len(args) > 2 and args[2] else False
    equal_ver = read_bool("trim", args[3]) if len(args) > 3 and args[3] else False
    draft["trim"] = Trim(threshold, colour, equal_hor, equal_ver)


def parse_padding(args: list[str], draft: Draft, config: ParserConfig) -> None:
    """CSS order: top[:right[:bottom[:left]]]; missing sides copy their opposite."""
    _arity("padding", args, 1, 4, "top[:right[:bottom[:left]]]")
    given = [read_positive_int("padding", arg) if arg else None for arg in args]
    given += [None] * (4 - len(given))
    top = given[0] or 0
    right = given[1] if given[1] is not None else top
    bottom = given[2] if given[2] is not None else top
    left = given[3] if given[3] is not None else right
    draft["padding"] = (top, right, bottom, left)


def parse_extend_aspect_ratio(args: list[str], draft: Draft, config: ParserConfig) -> None:
    _arity("extend_aspect_ratio", args, 1, 4, "extend[:gravity[:x[:y]]]")
    draft["extend_aspect_ratio"] = read_bool("extend_aspect_ratio", args[0])
    if len(args) > 1:
        gravity = read_gravity("extend_aspect_ratio", args[1:], allow_smart=False)
        draft["extend_aspect_ratio_gravity"] = gravity


def parse_page(args: list[str], draft: Draft, config: ParserConfig) -> None:
    _arity("page", args, 1, 1, "a page number from 0")
    draft["page"] = read_positive_int("page", args[0], high=9999)


def parse_video_thumbnail_second(args: list[str], draft: Draft, config: ParserConfig) -> None:
    _arity("video_thumbnail_second", args, 1, 1, "a second from 0")
    draft["video_second"] = read_float(
        "video_thumbnail_second", args[0], low=0, low_inclusive=True, high=86400
    )


def parse_rotate(args: list[str], draft: Draft, config: ParserConfig) -> None:
    _arity("rotate", args, 1, 1, "an angle in steps of 90")
    try:
        angle = int(args[0])
    except ValueError:
        raise _bad("rotate", args, "an angle in steps of 90") from None
    if angle % 90 or abs(angle) > 3600:
        raise _bad("rotate", args, "an angle in steps of 90")
    draft["rotate"] = angle % 360


def parse_flip(args: list[str], draft: Draft, config: ParserConfig) -> None:
    _arity("flip", args, 1, 2, "horizontal[:vertical]")
    draft["flip_horizontal"] = read_bool("flip", args[0]) if args[0] else False
    draft["flip_vertical"] = read_bool("flip", args[1]) if len(args) > 1 and args[1] else False


def parse_background(args: list[str], draft: Draft, config: ParserConfig) -> None:
    _arity("background", args, 1, 3, "a hex colour or r:g:b")
    if args == [""]:
        draft["background"] = None  # no argument: back to no background, as imgproxy
        return
    draft["background"] = read_colour("background", args)


# libvips' sharpen takes a sigma from 0.000001 to 10. Outside that range it
# writes a GLib-CRITICAL line to stderr and sharpens at its default, 0.5, so
# sh:20 sharpened less than sh:10. imgproxy accepts any sigma: the URL is
# accepted up to 1000, as blur's is, and the sigma brought into that range.
SHARPEN_SIGMA_RANGE = (0.000001, 10.0)


def _sigma_field(option: str, key: str, usable: tuple[float, float] | None = None) -> OptionParser:
    def parse(args: list[str], draft: Draft, config: ParserConfig) -> None:
        _arity(option, args, 1, 1, "a sigma > 0")
        sigma = read_float(option, args[0], low=0.0, low_inclusive=True, high=1000.0)
        if usable is not None and sigma > 0:
            sigma = min(max(sigma, usable[0]), usable[1])
        draft[key] = sigma

    return parse


def parse_pixelate(args: list[str], draft: Draft, config: ParserConfig) -> None:
    _arity("pixelate", args, 1, 1, "a pixel size")
    draft["pixelate"] = read_positive_int("pixelate", args[0], high=10000)


# --- imgproxy Pro's colour effects and unsharp masking --------------------------


def _set_effects(draft: Draft, **changes: object) -> None:
    draft["effects"] = replace(draft.get("effects", Effects()), **changes)


def parse_brightness(args: list[str], draft: Draft, config: ParserConfig) -> None:
    _arity("brightness", args, 1, 1, "a whole number from -255 to 255")
    _set_effects(draft, brightness=_read_brightness(args[0]))


def _read_brightness(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise _bad("brightness", [text], "a whole number from -255 to 255") from None
    if not -255 <= value <= 255:
        raise _bad("brightness", [text], "a whole number from -255 to 255")
    return value


def _read_factor(option: str, text: str) -> float:
    return read_float(option, text, low=0.0, low_inclusive=True, high=100.0)


def parse_contrast(args: list[str], draft: Draft, config: ParserConfig) -> None:
    _arity("contrast", args, 1, 1, "a number > 0 (1: unchanged)")
    _set_effects(
        draft, contrast=read_float("contrast", args[0], low=0.0, low_inclusive=False, high=100.0)
    )


def parse_saturation(args: list[str], draft: Draft, config: ParserConfig) -> None:
    _arity("saturation", args, 1, 1, "a number >= 0 (1: unchanged)")
    _set_effects(draft, saturation=_read_factor("saturation", args[0]))


def parse_adjust(args: list[str], draft: Draft, config: ParserConfig) -> None:
    """adjust:%brightness:%contrast:%saturation, each optional."""
    _arity("adjust", args, 1, 3, "brightness:contrast:saturation")
    values = [*args, "", ""][:3]
    if values[0]:
        _set_effects(draft, brightness=_read_brightness(values[0]))
    if values[1]:
        contrast = read_float("adjust", values[1], low=0.0, low_inclusive=False, high=100.0)
        _set_effects(draft, contrast=contrast)
    if values[2]:
        _set_effects(draft, saturation=_read_factor("adjust", values[2]))


def _read_intensity(option: str, text: str) -> float:
    return read_float(option, text, low=0.0, low_inclusive=True, high=1.0)


def _hex_colour(option: str, text: str) -> Colour:
    return read_colour(option, [text])


def _intensity_effect(
    option: str, synopsis: str, *extras: tuple[str, Callable[[str, str], object]]
) -> OptionParser:
    """monochrome, duotone, colorize: an intensity from 0 to 1 (the Effects field of
    the option's own name), then optional arguments, each read into its field."""

    def parse(args: list[str], draft: Draft, config: ParserConfig) -> None:
        _arity(option, args, 1, 1 + len(extras), synopsis)
        changes: dict[str, object] = {option: _read_intensity(option, args[0])}
        for (name, read), text in zip(extras, args[1:], strict=False):
            if text:
                changes[name] = read(option, text)
        _set_effects(draft, **changes)

    return parse


parse_monochrome = _intensity_effect(
    "monochrome", "intensity[:hex colour]", ("monochrome_colour", _hex_colour)
)
parse_duotone = _intensity_effect(
    "duotone",
    "intensity[:dark hex colour[:light hex colour]]",
    ("duotone_dark", _hex_colour),
    ("duotone_light", _hex_colour),
)
parse_colorize = _intensity_effect(
    "colorize",
    "opacity[:hex colour[:keep_alpha]]",
    ("colorize_colour", _hex_colour),
    ("colorize_keep_alpha", read_bool),
)


_GRADIENT_DIRECTIONS = {"down": 0.0, "left": 90.0, "up": 180.0, "right": 270.0}


def parse_gradient(args: list[str], draft: Draft, config: ParserConfig) -> None:
    """gradient:%opacity:%color:%direction:%start:%stop; the colour may carry alpha (rrggbbaa)."""
    _arity("gradient", args, 1, 5, "opacity[:hex colour[:direction[:start[:stop]]]]")
    values = [*args, "", "", "", ""][:5]
    opacity = _read_intensity("gradient", values[0])
    changes: dict[str, object] = {}
    if values[1]:
        text = values[1]
        if len(text) == 8 and all(ch in "0123456789abcdefABCDEF" for ch in text):
            opacity *= int(text[6:], 16) / 255
            text = text[:6]
        changes["gradient_colour"] = read_colour("gradient", [text])
    if values[2]:
        direction = _GRADIENT_DIRECTIONS.get(values[2])
        if direction is None:
            direction = read_float(
                "gradient", values[2], low=-3600.0, low_inclusive=True, high=3600.0
            )
        changes["gradient_angle"] = direction % 360
    start = _read_intensity("gradient", values[3]) if values[3] else 0.0
    stop = _read_intensity("gradient", values[4]) if values[4] else 1.0
    if stop <= start:
        raise _bad("gradient", args, "start below stop, both from 0 to 1")
    _set_effects(draft, gradient=opacity, gradient_start=start, gradient_stop=stop, **changes)


def parse_unsharp_masking(args: list[str], draft: Draft, config: ParserConfig) -> None:
    """unsharp_masking:%mode:%weight:%divider, each optional (the settings fill in)."""
    _arity("unsharp_masking", args, 1, 3, "mode[:weight[:divider]]")
    values = [*args, "", ""][:3]
    current = draft.get("unsharp", config.unsharp)
    changes: dict[str, object] = {}
    if values[0]:
        try:
            changes["mode"] = UnsharpMode(values[0])
        except ValueError:
            raise _bad("unsharp_masking", args, "a mode of auto, none or always") from None
    if values[1]:
        changes["weight"] = read_float(
            "unsharp_masking", values[1], low=0.0, low_inclusive=False, high=100.0
        )
    if values[2]:
        changes["divider"] = read_float(
            "unsharp_masking", values[2], low=0.0, low_inclusive=False, high=10000.0
        )
    draft["unsharp"] = replace(current, **changes)


def parse_watermark(args: list[str], draft: Draft, config: ParserConfig) -> None:
    _arity("watermark", args, 1, 5, "opacity[:position[:x[:y[:scale]]]]")
    opacity = read_float("watermark", args[0], low=0.0, low_inclusive=True, high=1.0)
    position = WatermarkPosition.CENTER
    if len(args) > 1 and args[1]:
        try:
            position = WatermarkPosition(args[1])
        except ValueError:
            raise _bad("watermark", args, "a position: ce, no, so, ea, we, noea, ...") from None
    x = read_offset("watermark", args[2]) if len(args) > 2 else 0.0
    y = read_offset("watermark", args[3]) if len(args) > 3 else 0.0
    scale = 0.0
    if len(args) > 4 and args[4]:
        scale = read_float("watermark", args[4], low=0.0, low_inclusive=True, high=1.0)
    draft["watermark"] = Watermark(opacity, position, x, y, scale) if opacity > 0 else None


def parse_watermark_text(args: list[str], draft: Draft, config: ParserConfig) -> None:
    """watermark_text:%text, the text (Pango markup) in URL-safe base64."""
    _arity("watermark_text", args, 1, 1, "URL-safe base64 of the text")
    try:
        padded = args[0] + "=" * (-len(args[0]) % 4)
        text = base64.b64decode(padded, altchars=b"-_", validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise _bad("watermark_text", args, "URL-safe base64 of the text") from None
    draft["watermark_text"] = check_markup(text) if text else ""


def parse_watermark_rotate(args: list[str], draft: Draft, config: ParserConfig) -> None:
    _arity("watermark_rotate", args, 1, 1, "an angle in degrees")
    angle = read_float("watermark_rotate", args[0], low=-3600.0, low_inclusive=True, high=3600.0)
    draft["watermark_rotate"] = angle % 360


def parse_watermark_shadow(args: list[str], draft: Draft, config: ParserConfig) -> None:
    _arity("watermark_shadow", args, 1, 1, "a sigma >= 0")
    draft["watermark_shadow"] = read_float(
        "watermark_shadow", args[0], low=0.0, low_inclusive=True, high=100.0
    )


def parse_skip_processing(args: list[str], draft: Draft, config: ParserConfig) -> None:
    formats = {read_output_format("skip_processing", arg, INPUT_FORMATS) for arg in args if arg}
    draft["skip_processing"] = tuple(sorted(set(draft.get("skip_processing", ())) | formats))


def parse_max_bytes(args: list[str], draft: Draft, config: ParserConfig) -> None:
    _arity("max_bytes", args, 1, 1, "a number of bytes")
    draft["max_bytes"] = read_positive_int("max_bytes", args[0], high=2**31 - 1)


def _spec(name: str, parser: OptionParser, args: str, default: str) -> OptionSpec:
    """An option's parser, under the names declared once in `signing.options`.

    The client package owns the names (so the URL builder needs none of the
    server's code); the server adds what it does with each option.
    """
    spellings = OPTION_NAMES_BY_NAME[name].aliases
    return OptionSpec(spellings[0], spellings[1:], parser, args, default)


OPTIONS: tuple[OptionSpec, ...] = (
    _spec("resize", parse_resize, "type:width:height:enlarge:extend", "fit:0:0:false:false"),
    _spec("size", parse_size, "width:height:enlarge:extend", "0:0:false:false"),
    _spec("resizing_type", parse_resizing_type, "fit, fill, fill-down, force or auto", "fit"),
    _spec("width", parse_width, "width", "0 (from height and aspect ratio)"),
    _spec("height", parse_height, "height", "0 (from width and aspect ratio)"),
    _spec("min_width", parse_min_width, "width", "0"),
    _spec("min_height", parse_min_height, "height", "0"),
    _spec("zoom", parse_zoom, "zoom or zoom_x:zoom_y", "1"),
    _spec("dpr", parse_dpr, "dpr", "1"),
    _spec("enlarge", parse_enlarge, "enlarge", "false"),
    _spec("extend", parse_extend, "extend:gravity:x:y", "false:ce:0:0"),
    _spec("gravity", parse_gravity, "type:x:y, sm, fp:x:y, obj[:face] or objw:face:w", "ce:0:0"),
    _spec("crop", parse_crop, "width:height:gravity", "none"),
    _spec(
        "auto_rotate",
        _bool_field("auto_rotate", "auto_rotate"),
        "bool",
        "`PIXELPIPE_AUTO_ROTATE` (true)",
    ),
    _spec(
        "quality",
        parse_quality,
        "quality or auto",
        "0 (per-format default; `auto` with `PIXELPIPE_AUTO_QUALITY`)",
    ),
    _spec(
        "format_quality",
        parse_format_quality,
        "format:quality:...",
        "`PIXELPIPE_FORMAT_QUALITY`",
    ),
    _spec(
        "format",
        parse_format,
        "extension",
        "negotiated from `Accept` if enabled, else the source format if in "
        "`PREFERRED_FORMATS`, else the first there that fits",
    ),
    _spec(
        "strip_metadata",
        _bool_field("strip_metadata", "strip_metadata"),
        "bool",
        "`PIXELPIPE_STRIP_METADATA` (true)",
    ),
    _spec(
        "keep_copyright",
        _bool_field("keep_copyright", "keep_copyright"),
        "bool",
        "`PIXELPIPE_KEEP_COPYRIGHT` (true)",
    ),
    _spec(
        "strip_color_profile",
        _bool_field("strip_color_profile", "strip_color_profile"),
        "bool",
        "`PIXELPIPE_STRIP_COLOR_PROFILE` (true)",
    ),
    _spec("preset", parse_preset, "name:name:...", "`default` preset, if defined"),
    _spec("cachebuster", parse_cachebuster, "string", "empty"),
    _spec("expires", parse_expires, "timestamp", "none"),
    _spec("filename", parse_filename, "filename:encoded", "from the source URL"),
    _spec("trim", parse_trim, "threshold:colour:equal_hor:equal_ver", "off"),
    _spec("padding", parse_padding, "top:right:bottom:left", "0"),
    _spec(
        "extend_aspect_ratio",
        parse_extend_aspect_ratio,
        "extend:gravity:x:y",
        "false:ce:0:0",
    ),
    _spec("rotate", parse_rotate, "angle", "0"),
    _spec("flip", parse_flip, "horizontal:vertical", "false:false"),
    _spec("background", parse_background, "rrggbb or r:g:b", "none (white when flattening)"),
    _spec(
        "enforce_thumbnail",
        _bool_field("enforce_thumbnail", "enforce_thumbnail"),
        "bool",
        "`PIXELPIPE_ENFORCE_THUMBNAIL` (false)",
    ),
    _spec("blur", _sigma_field("blur", "blur"), "sigma", "off"),
    _spec("sharpen", _sigma_field("sharpen", "sharpen", SHARPEN_SIGMA_RANGE), "sigma", "off"),
    _spec("pixelate", parse_pixelate, "size", "off"),
    _spec("brightness", parse_brightness, "brightness", "0"),
    _spec("contrast", parse_contrast, "contrast", "1"),
    _spec("saturation", parse_saturation, "saturation", "1"),
    _spec("adjust", parse_adjust, "brightness:contrast:saturation", "0:1:1"),
    _spec("monochrome", parse_monochrome, "intensity:colour", "0:b3b3b3"),
    _spec("duotone", parse_duotone, "intensity:colour1:colour2", "0:000000:ffffff"),
    _spec("colorize", parse_colorize, "opacity:colour:keep_alpha", "0:000000:false"),
    _spec("gradient", parse_gradient, "opacity:colour:direction:start:stop", "0:000000:down:0:1"),
    _spec(
        "unsharp_masking",
        parse_unsharp_masking,
        "mode:weight:divider",
        "`PIXELPIPE_UNSHARP_MASKING_MODE` (none), `_WEIGHT` (1), `_DIVIDER` (24)",
    ),
    _spec("watermark", parse_watermark, "opacity:position:x:y:scale", "off"),
    _spec(
        "watermark_text",
        parse_watermark_text,
        "base64 text",
        "none (with it and no `watermark`: opacity 1, centred)",
    ),
    _spec("watermark_rotate", parse_watermark_rotate, "angle", "0"),
    _spec("watermark_shadow", parse_watermark_shadow, "sigma", "0 (none)"),
    _spec(
        "skip_processing",
        parse_skip_processing,
        "format:format:...",
        "`PIXELPIPE_SKIP_PROCESSING_FORMATS`",
    ),
    _spec("raw", _bool_field("raw", "raw"), "bool", "false"),
    _spec("page", parse_page, "page", "0 (the first; PDF sources, numbered from zero)"),
    _spec(
        "video_thumbnail_second",
        parse_video_thumbnail_second,
        "second",
        "`PIXELPIPE_VIDEO_THUMBNAIL_SECOND` (1)",
    ),
    _spec("max_bytes", parse_max_bytes, "bytes", "0 (no limit)"),
    _spec(
        "return_attachment",
        _bool_field("return_attachment", "return_attachment"),
        "bool",
        "`PIXELPIPE_RETURN_ATTACHMENT` (false)",
    ),
)

OPTIONS_BY_NAME: dict[str, OptionSpec] = {
    alias: spec for spec in OPTIONS for alias in (spec.name, *spec.aliases)
}


def options_table() -> str:
    """The README's option reference, made from `OPTIONS` so the two cannot drift."""
    rows = ["| option | short | arguments | default |", "|---|---|---|---|"]
    for spec in OPTIONS:
        short = ", ".join(f"`{alias}`" for alias in spec.aliases) or "—"
        rows.append(f"| `{spec.name}` | {short} | `{spec.args}` | {spec.default} |")
    return "\n".join(rows)


def allowed_option_names(names: tuple[str, ...]) -> frozenset[str]:
    """ALLOWED_PROCESSING_OPTIONS, each with its other spellings (`w` allows `width`)."""
    allowed: set[str] = set()
    for name in names:
        spec = OPTIONS_BY_NAME.get(name)
        allowed |= {spec.name, *spec.aliases} if spec else {name}
    return frozenset(allowed)


def apply_segments(
    segments: tuple[str, ...], draft: Draft, config: ParserConfig, from_url: bool = False
) -> None:
    for segment in segments:
        if from_url and config.only_presets:
            parse_preset(segment.split(config.separator), draft, config)
            continue
        name, *args = segment.split(config.separator)
        spec = OPTIONS_BY_NAME.get(name)
        if spec is None:
            raise UnknownOption(f"unknown option: {name[:40]}")
        if from_url and config.allowed_options and name not in config.allowed_options:
            # Only what the URL asks for is checked: presets are the operator's.
            raise ForbiddenOption(f"forbidden processing option: {name[:40]}")
        spec.parser(args, draft, config)


def parse_options(
    option_segments: tuple[str, ...],
    source_url: str,
    extension: str | None,
    config: ParserConfig,
) -> ProcessingOptions:
    """Pure: the same segments and config always give the same options."""
    base_quality = {fmt: config.quality for fmt in sorted(OUTPUT_FORMATS)}
    draft: Draft = {
        "auto_rotate": config.auto_rotate,
        "strip_metadata": config.strip_metadata,
        "keep_copyright": config.keep_copyright,
        "strip_color_profile": config.strip_color_profile,
        "return_attachment": config.return_attachment,
        "enforce_thumbnail": config.enforce_thumbnail,
        "auto_quality": config.auto_quality,
        "skip_processing": tuple(sorted(config.skip_processing)),
        "format_quality": base_quality | dict(config.format_quality),
        "unsharp": config.unsharp,
        "_presets": [],
    }
    if "default" in config.presets:
        parse_preset(["default"], draft, config)
    apply_segments(option_segments, draft, config, from_url=True)
    if extension is not None:
        draft["format"] = read_output_format("extension", extension, REQUESTABLE_FORMATS)
    del draft["_presets"]
    draft["format_quality"] = tuple(sorted(draft["format_quality"].items()))
    return ProcessingOptions(source_url=source_url, **draft)
