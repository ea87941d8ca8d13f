"""The immutable result of parsing a URL, and its canonical string form.

`ProcessingOptions.canonical()` spells every field that can change the
response, in one fixed order with one spelling, so two URLs that mean the
same thing (aliases, option order, presets, defaults written out or not)
give the same string. It is the result-cache key and the ETag's input.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field, replace
from enum import StrEnum
from urllib.parse import quote


class ResizingType(StrEnum):
    FIT = "fit"
    FILL = "fill"
    FILL_DOWN = "fill-down"
    FORCE = "force"
    AUTO = "auto"


class GravityType(StrEnum):
    NORTH = "no"
    SOUTH = "so"
    EAST = "ea"
    WEST = "we"
    NORTH_EAST = "noea"
    NORTH_WEST = "nowe"
    SOUTH_EAST = "soea"
    SOUTH_WEST = "sowe"
    CENTER = "ce"
    SMART = "sm"
    FOCUS_POINT = "fp"
    OBJECT = "obj"  # imgproxy Pro's object-oriented gravity


# Object classes g:obj can find (imgproxy Pro's detector knows 80; ours, faces).
OBJECT_CLASSES = frozenset({"face"})
# thumbor's `smart`: faces, else features, centred on their mass (an internal
# detector list, never read from an imgproxy URL). Its x and y hold the
# alignment's anchor: where thumbor centres the crop when nothing is found.
THUMBOR_SMART = ("thumbor",)

# Where each compass gravity anchors, as fractions (thumbor's alignment points).
ANCHORS = {
    GravityType.NORTH_WEST: (0.0, 0.0),
    GravityType.NORTH: (0.5, 0.0),
    GravityType.NORTH_EAST: (1.0, 0.0),
    GravityType.WEST: (0.0, 0.5),
    GravityType.CENTER: (0.5, 0.5),
    GravityType.EAST: (1.0, 0.5),
    GravityType.SOUTH_WEST: (0.0, 1.0),
    GravityType.SOUTH: (0.5, 1.0),
    GravityType.SOUTH_EAST: (1.0, 1.0),
}


def format_number(value: float) -> str:
    """Shortest faithful spelling: 2.0 -> "2", 0.25 -> "0.25"."""
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


@dataclass(frozen=True, slots=True)
class Gravity:
    type: GravityType = GravityType.CENTER
    x: float = 0.0
    y: float = 0.0
    # obj: the classes to keep; sm: () for imgproxy's, THUMBOR_SMART for thumbor's.
    objects: tuple[str, ...] = ()

    @property
    def detects(self) -> bool:
        """Whether this gravity needs to know where the faces are."""
        return self.type in (GravityType.SMART, GravityType.OBJECT)

    def canonical_args(self) -> str:
        if self.objects == THUMBOR_SMART:
            return f"sm:thumbor:{format_number(self.x)}:{format_number(self.y)}"
        if self.type in (GravityType.SMART, GravityType.OBJECT):
            return ":".join([self.type.value, *self.objects])
        return f"{self.type.value}:{format_number(self.x)}:{format_number(self.y)}"


@dataclass(frozen=True, slots=True)
class Crop:
    width: float = 0.0  # >= 1: pixels; < 1: fraction of the source; 0: the whole source
    height: float = 0.0
    gravity: Gravity | None = None  # None: use the main gravity

    @property
    def enabled(self) -> bool:
        return self.width > 0 or self.height > 0


Colour = tuple[int, int, int]


def format_colour(colour: Colour) -> str:
    return "{:02x}{:02x}{:02x}".format(*colour)


@dataclass(frozen=True, slots=True)
class Trim:
    threshold: float
    colour: Colour | None = None  # None: the top-left pixel's colour
    equal_horizontal: bool = False
    equal_vertical: bool = False
    # thumbor's trim: "top-left" or "bottom-right" pixel as the colour, and the
    # threshold as a Euclidean RGB distance; "": imgproxy's trim.
    thumbor_corner: str = ""

    def canonical_args(self) -> str:
        colour = format_colour(self.colour) if self.colour else ""
        args = (
            f"{format_number(self.threshold)}:{colour}:"
            f"{int(self.equal_horizontal)}:{int(self.equal_vertical)}"
        )
        return f"{args}:{self.thumbor_corner}" if self.thumbor_corner else args


@dataclass(frozen=True, slots=True)
class ThumborBox:
    """thumbor's sizes that need the source's size; the pipeline resolves them."""

    adaptive: bool = False  # adaptive-fit-in: turn the box to the image's orientation
    full: bool = False  # full-fit-in: the smaller side fits, the image covers the box
    orig_width: bool = False  # `orig`: the source's own width
    orig_height: bool = False
    # focal(AxB:CxD) regions in source pixels: left, top, right, bottom.
    focal: tuple[tuple[int, int, int, int], ...] = ()
    # The crop (`c:`) is thumbor's AxB:CxD: each edge is clamped to the source,
    # and it is cut from the picture before the flips and turns.
    crop: bool = False
    # no_upscale(): the asked sides clamped to the source's, as thumbor does
    # (a manual crop smaller than that is still enlarged).
    no_upscale: bool = False
    # fit-in with one side: thumbor gives the other in proportion, rounded, and
    # then fits the picture in both (a pixel short of the asked side at times).
    fit_one_side: bool = False
    # A size on one side, not fit-in: thumbor gives the other in proportion,
    # rounded, and crops a sliver to that box unless the ratios round alike.
    fill_one_side: bool = False

    def canonical_args(self) -> str:
        flags = f"{int(self.adaptive)}{int(self.full)}{int(self.orig_width)}{int(self.orig_height)}"
        flags += "1" if self.crop else ""
        flags += "n" if self.no_upscale else ""
        flags += "f" if self.fit_one_side else ""
        flags += "p" if self.fill_one_side else ""
        regions = ":".join("{}x{}-{}x{}".format(*region) for region in self.focal)
        return f"{flags}:{regions}"


@dataclass(frozen=True, slots=True)
class ThumborWatermark:
    """thumbor's watermark(url, x, y, alpha[, w_ratio, h_ratio]) filter."""

    url: str  # fetched as a source, with every source rule
    x: str  # pixels ("-10": from the right), "20p" (percent), "center" or "repeat"
    y: str
    alpha: int  # 0 opaque .. 100 invisible
    width_ratio: float = 0.0  # fraction of the image's width; 0: not limited
    height_ratio: float = 0.0

    def canonical_args(self) -> str:
        url = quote(self.url, safe="/:")
        return f"{self.x}:{self.y}:{self.alpha}:{self.width_ratio:g}:{self.height_ratio:g}:{url}"


class WatermarkPosition(StrEnum):
    NORTH = "no"
    SOUTH = "so"
    EAST = "ea"
    WEST = "we"
    NORTH_EAST = "noea"
    NORTH_WEST = "nowe"
    SOUTH_EAST = "soea"
    SOUTH_WEST = "sowe"
    CENTER = "ce"
    REPLICATE = "re"


@dataclass(frozen=True, slots=True)
class Watermark:
    opacity: float  # multiplies the configured base opacity
    position: WatermarkPosition = WatermarkPosition.CENTER
    x: float = 0.0  # >= 1 or <= -1: pixels; otherwise a fraction; with `re`, spacing
    y: float = 0.0
    scale: float = 0.0  # watermark size relative to the result; 0: as is

    def canonical_args(self) -> str:
        return ":".join(
            [
                format_number(self.opacity),
                self.position.value,
                format_number(self.x),
                format_number(self.y),
                format_number(self.scale),
            ]
        )


@dataclass(frozen=True, slots=True)
class Effects:
    """imgproxy Pro's colour effects (`br`, `co`, `sa`, `mc`, `dt`, `col`, `gr`).

    Applied after blur, sharpen and pixelate, in this order whatever the
    URL's: brightness, contrast, saturation, monochrome, duotone, colorize,
    gradient. The defaults change nothing.
    """

    brightness: int = 0  # -255..255, added to each channel
    contrast: float = 1.0  # around mid-grey; 1: unchanged
    saturation: float = 1.0  # chroma multiplier; 1: unchanged
    monochrome: float = 0.0  # intensity 0..1
    monochrome_colour: Colour = (179, 179, 179)
    duotone: float = 0.0  # intensity 0..1
    duotone_dark: Colour = (0, 0, 0)
    duotone_light: Colour = (255, 255, 255)
    colorize: float = 0.0  # opacity 0..1
    colorize_colour: Colour = (0, 0, 0)
    colorize_keep_alpha: bool = False
    gradient: float = 0.0  # opacity 0..1
    gradient_colour: Colour = (0, 0, 0)
    gradient_angle: float = (
        0.0  # clockwise degrees; 0: transparent at the top, colour at the bottom
    )
    gradient_start: float = 0.0
    gradient_stop: float = 1.0

    @property
    def active(self) -> tuple[str, ...]:
        """The effects that change pixels, in the order they apply."""
        changes = {
            "brightness": self.brightness != 0,
            "contrast": self.contrast != 1.0,
            "saturation": self.saturation != 1.0,
            "monochrome": self.monochrome > 0,
            "duotone": self.duotone > 0,
            "colorize": self.colorize > 0,
            "gradient": self.gradient > 0,
        }
        return tuple(name for name, on in changes.items() if on)

    def canonical_args(self) -> str:
        """Only the effects that change pixels, each with all its arguments."""
        parts = {
            "brightness": f"br{self.brightness}",
            "contrast": f"co{format_number(self.contrast)}",
            "saturation": f"sa{format_number(self.saturation)}",
            "monochrome": f"mc{format_number(self.monochrome)}"
            f",{format_colour(self.monochrome_colour)}",
            "duotone": f"dt{format_number(self.duotone)},{format_colour(self.duotone_dark)}"
            f",{format_colour(self.duotone_light)}",
            "colorize": f"col{format_number(self.colorize)},{format_colour(self.colorize_colour)}"
            f",{int(self.colorize_keep_alpha)}",
            "gradient": f"gr{format_number(self.gradient)},{format_colour(self.gradient_colour)}"
            f",{format_number(self.gradient_angle)},{format_number(self.gradient_start)}"
            f",{format_number(self.gradient_stop)}",
        }
        return ":".join(parts[name] for name in self.active)


class UnsharpMode(StrEnum):
    AUTO = "auto"  # when the image was made smaller and `sharpen` is not set
    NONE = "none"
    ALWAYS = "always"


@dataclass(frozen=True, slots=True)
class UnsharpMasking:
    """imgproxy Pro's unsharp masking: a 3x3 sharpening whose neighbours weigh
    -weight and whose result is divided by `divider` (smaller: sharper)."""

    mode: UnsharpMode = UnsharpMode.NONE
    weight: float = 1.0
    divider: float = 24.0

    def canonical_args(self) -> str:
        return f"{self.mode.value}:{format_number(self.weight)}:{format_number(self.divider)}"


@dataclass(frozen=True, slots=True)
class ProcessingOptions:
    source_url: str
    resizing_type: ResizingType = ResizingType.FIT
    width: int = 0
    height: int = 0
    min_width: int = 0
    min_height: int = 0
    zoom_x: float = 1.0
    zoom_y: float = 1.0
    dpr: float = 1.0
    enlarge: bool = False
    extend: bool = False
    extend_gravity: Gravity = field(default_factory=Gravity)
    gravity: Gravity = field(default_factory=Gravity)
    crop: Crop = field(default_factory=Crop)
    auto_rotate: bool = True
    quality: int = 0  # 0: the per-format default from format_quality
    auto_quality: bool = False  # choose per image by a perceptual threshold
    # Effective default quality per output format, settings and URL merged.
    format_quality: tuple[tuple[str, int], ...] = ()
    format: str | None = None  # None: negotiated, else by PREFERRED_FORMATS
    # Set from the request's Accept header (never from the URL): formats to use
    # before `format`, best first, when the image allows them (AVIF: not animated).
    accepted_formats: tuple[str, ...] = ()
    strip_metadata: bool = True
    keep_copyright: bool = True
    strip_color_profile: bool = True
    cachebuster: str = ""
    expires: int | None = None  # unix time
    filename: str | None = None
    return_attachment: bool = False
    trim: Trim | None = None
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, right, bottom, left
    extend_aspect_ratio: bool = False
    extend_aspect_ratio_gravity: Gravity = field(default_factory=Gravity)
    rotate: int = 0  # 0, 90, 180 or 270, clockwise
    flip_horizontal: bool = False
    flip_vertical: bool = False
    background: Colour | None = None  # None: transparent where possible, else white
    enforce_thumbnail: bool = False
    blur: float = 0.0
    sharpen: float = 0.0
    pixelate: int = 0
    watermark: Watermark | None = None
    watermark_text: str = ""  # imgproxy Pro's wmt: Pango markup drawn as the watermark
    watermark_rotate: float = 0.0  # clockwise degrees
    watermark_shadow: float = 0.0  # sigma of the shadow's blur; 0: none
    effects: Effects = field(default_factory=Effects)
    # The server's UNSHARP_MASKING_* settings unless the URL's `ush` says otherwise.
    unsharp: UnsharpMasking = field(default_factory=UnsharpMasking)
    skip_processing: tuple[str, ...] = ()
    raw: bool = False
    max_bytes: int = 0
    page: int = 0  # imgproxy Pro's page: a PDF's page, from zero
    video_second: float | None = None  # imgproxy Pro's vts; None: VIDEO_THUMBNAIL_SECOND
    # thumbor's colour filters, in URL order: ("brightness", (20,)), ("grayscale", ()), ...
    # Only thumbor URLs set them (imgproxy OSS has no such options).
    adjustments: tuple[tuple[str, tuple[int | float | str, ...]], ...] = ()
    thumbor_box: ThumborBox | None = None
    # thumbor's fill(colour|auto|blur[, fill_transparent]): the extended area
    # painted with a colour ("rrggbb"), the image's mean colour, or the image
    # blurred and stretched; the picture's own transparency is kept unless
    # fill_transparent paints it too. "": none, or fill(colour, true), which is
    # `background` with `extend`.
    thumbor_fill: str = ""
    thumbor_fill_transparent: bool = False
    # thumbor's round_corner: (a, b, r, g, b, transparent) radii in pixels, the colour.
    round_corner: tuple[int, int, int, int, int, int] | None = None
    # Set when a thumbor size asked on one side is made concrete ("width" or
    # "height", the side the URL left open): fill() and upscale() read thumbor's
    # request, where that side stays 0.
    thumbor_open_side: str = ""
    thumbor_watermarks: tuple[ThumborWatermark, ...] = ()  # in URL order
    # thumbor's max_age(): this URL's lifetime in caches, in place of TTL.
    max_age: int | None = None
    # thumbor's autojpg(): a PNG source without transparency is written as JPEG.
    png_to_jpeg: bool = False
    # Without a format asked, the source's own is written when it is one of
    # these, before PREFERRED_FORMATS are consulted: thumbor's engines write
    # their source's format (a WebP stays WebP), imgproxy's rule would not.
    source_formats_kept: tuple[str, ...] = ()

    @property
    def frame_url(self) -> str | None:
        """thumbor's frame(url): the nine-patch to fetch, if the filters name one."""
        return next((str(args[0]) for name, args in self.adjustments if name == "frame"), None)

    def quality_for(self, fmt: str) -> int:
        if self.quality:
            return self.quality
        return dict(self.format_quality).get(fmt, 80)

    def analysis_key(self) -> str:
        """Every option but the result's size and delivery: the same picture at
        another width (a srcset) has the same key (quality:auto remembers its
        analysis under it)."""
        return replace(
            self,
            source_url="",
            width=0,
            height=0,
            min_width=0,
            min_height=0,
            zoom_x=1.0,
            zoom_y=1.0,
            dpr=1.0,
            cachebuster="",
            expires=None,
            filename=None,
            return_attachment=False,
            max_bytes=0,
        ).canonical()

    def canonical(self) -> str:
        parts = [
            f"rt:{self.resizing_type.value}",
            f"w:{self.width}",
            f"h:{self.height}",
            f"mw:{self.min_width}",
            f"mh:{self.min_height}",
            f"z:{format_number(self.zoom_x)}:{format_number(self.zoom_y)}",
            f"dpr:{format_number(self.dpr)}",
            f"el:{int(self.enlarge)}",
            f"ex:{int(self.extend)}:{self.extend_gravity.canonical_args()}",
            f"g:{self.gravity.canonical_args()}",
            f"exar:{int(self.extend_aspect_ratio)}:"
            f"{self.extend_aspect_ratio_gravity.canonical_args()}",
            "pd:" + ":".join(str(side) for side in self.padding),
            f"rot:{self.rotate}",
            f"fl:{int(self.flip_horizontal)}:{int(self.flip_vertical)}",
            f"eth:{int(self.enforce_thumbnail)}",
            f"bl:{format_number(self.blur)}",
            f"sh:{format_number(self.sharpen)}",
            f"pix:{self.pixelate}",
            f"mb:{self.max_bytes}",
            f"raw:{int(self.raw)}",
        ]
        # Only when set, so the keys of every URL that names neither stay as they were.
        if self.page:
            parts.append(f"pg:{self.page}")
        if self.video_second is not None:
            parts.append(f"vts:{format_number(self.video_second)}")
        if self.trim is not None:
            parts.append(f"t:{self.trim.canonical_args()}")
        if self.background is not None:
            parts.append(f"bg:{format_colour(self.background)}")
        if self.watermark is not None:
            parts.append(f"wm:{self.watermark.canonical_args()}")
        if self.watermark_text:
            encoded = base64.urlsafe_b64encode(self.watermark_text.encode()).rstrip(b"=").decode()
            parts.append(f"wmt:{encoded}")
        if self.watermark_rotate:
            parts.append(f"wmr:{format_number(self.watermark_rotate)}")
        if self.watermark_shadow:
            parts.append(f"wmsh:{format_number(self.watermark_shadow)}")
        if self.effects.active:
            parts.append(f"fx:{self.effects.canonical_args()}")
        if self.unsharp.mode is not UnsharpMode.NONE:
            parts.append(f"ush:{self.unsharp.canonical_args()}")
        if self.skip_processing:
            parts.append("skp:" + ":".join(self.skip_processing))
        for mark in self.thumbor_watermarks:
            parts.append(f"twm:{mark.canonical_args()}")
        if self.thumbor_fill:
            merged = ":1" if self.thumbor_fill_transparent else ""
            parts.append(f"tfill:{self.thumbor_fill}{merged}")
        if self.round_corner is not None:
            parts.append("rc:" + ":".join(map(str, self.round_corner)))
        if self.max_age is not None:
            parts.append(f"tma:{self.max_age}")
        if self.png_to_jpeg:
            parts.append("autojpg:1")
        if self.source_formats_kept:
            parts.append("keep:" + ":".join(self.source_formats_kept))
        if self.thumbor_box is not None:
            parts.append(f"tbox:{self.thumbor_box.canonical_args()}")
        if self.adjustments:
            parts.append(
                "adj:"
                + ":".join(f"{name}({','.join(map(str, args))})" for name, args in self.adjustments)
            )
        if self.crop.enabled:
            crop = f"c:{format_number(self.crop.width)}:{format_number(self.crop.height)}"
            if self.crop.gravity is not None:
                crop += f":{self.crop.gravity.canonical_args()}"
            parts.append(crop)
        parts += [
            f"ar:{int(self.auto_rotate)}",
            "q:auto" if self.auto_quality else f"q:{self.quality}",
            "fq:" + ":".join(f"{fmt}:{q}" for fmt, q in self.format_quality),
            f"sm:{int(self.strip_metadata)}",
            f"kcr:{int(self.keep_copyright)}",
            f"scp:{int(self.strip_color_profile)}",
            f"att:{int(self.return_attachment)}",
        ]
        if self.cachebuster:
            parts.append(f"cb:{self.cachebuster}")
        if self.expires is not None:
            parts.append(f"exp:{self.expires}")
        if self.filename is not None:
            encoded = base64.urlsafe_b64encode(self.filename.encode()).rstrip(b"=").decode()
            parts.append(f"fn:{encoded}:1")
        source = "plain/" + quote(self.source_url, safe="/:")
        if self.format is not None:
            source += f"@{self.format}"
        if self.accepted_formats:
            parts.append("accept:" + ":".join(self.accepted_formats))
        return "/" + "/".join([*parts, source])
