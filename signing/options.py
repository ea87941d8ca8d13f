"""The processing options a URL can carry, as the client side spells them.

One entry per option: the name a program uses (imgproxy's full name, with
underscores), the short name written into URLs (the server's canonical
spelling), and every name the server reads. This is the one declaration of
the names: the server's parser table (`proxy/options/parse.py`) takes them
from here and adds a parser to each, so client apps need none of its code.
The order is the order options are written in a built URL, so the same
options always make the same URL (and hit the same CDN cache entry).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class OptionName:
    name: str  # keyword in Python: resizing_type, min_width, ...
    short: str  # written in URLs: rt, mw, ...
    aliases: tuple[str, ...]  # every spelling the server reads, short one included


def _option(name: str, short: str = "", *others: str) -> OptionName:
    url_name = name.replace("_", "-") if name in ("min_width", "min_height") else name
    spellings = tuple(dict.fromkeys((url_name, short or url_name, *others)))
    return OptionName(name, short or url_name, spellings)


OPTION_NAMES: tuple[OptionName, ...] = (
    _option("resize", "rs"),
    _option("size", "s"),
    _option("resizing_type", "rt"),
    _option("width", "w"),
    _option("height", "h"),
    _option("min_width", "mw"),
    _option("min_height", "mh"),
    _option("zoom", "z"),
    _option("dpr"),
    _option("enlarge", "el"),
    _option("extend", "ex"),
    _option("gravity", "g"),
    _option("crop", "c"),
    _option("auto_rotate", "ar"),
    _option("quality", "q"),
    _option("format_quality", "fq"),
    _option("format", "f", "ext"),
    _option("strip_metadata", "sm"),
    _option("keep_copyright", "kcr"),
    _option("strip_color_profile", "scp"),
    _option("preset", "pr"),
    _option("cachebuster", "cb"),
    _option("expires", "exp"),
    _option("filename", "fn"),
    _option("trim", "t"),
    _option("padding", "pd"),
    _option("extend_aspect_ratio", "exar", "extend_ar"),
    _option("rotate", "rot"),
    _option("flip", "fl"),
    _option("background", "bg"),
    _option("enforce_thumbnail", "eth"),
    _option("blur", "bl"),
    _option("sharpen", "sh"),
    _option("pixelate", "pix"),
    _option("brightness", "br"),
    _option("contrast", "co"),
    _option("saturation", "sa"),
    _option("adjust", "a"),
    _option("monochrome", "mc"),
    _option("duotone", "dt"),
    _option("colorize", "col"),
    _option("gradient", "gr"),
    _option("unsharp_masking", "ush"),
    _option("watermark", "wm"),
    _option("watermark_text", "wmt"),
    _option("watermark_rotate", "wmr", "wm_rot"),
    _option("watermark_shadow", "wmsh"),
    _option("skip_processing", "skp"),
    _option("raw"),
    _option("page", "pg"),
    _option("video_thumbnail_second", "vts"),
    _option("max_bytes", "mb"),
    _option("return_attachment", "att"),
)

# Every spelling (full, short, alias; dashes or underscores) -> its entry.
BY_SPELLING: dict[str, OptionName] = {
    spelling: option
    for option in OPTION_NAMES
    for spelling in {option.name, option.name.replace("_", "-"), *option.aliases}
}

OPTION_NAMES_BY_NAME: dict[str, OptionName] = {option.name: option for option in OPTION_NAMES}

ORDER: dict[str, int] = {option.name: index for index, option in enumerate(OPTION_NAMES)}
