"""Checks on a text watermark's Pango markup before anything renders it.

`watermark_text` comes from the URL, and Pango draws whatever size the
markup asks for: `<span size="9999999">` would be a gigabyte of pixels. So
the markup must be well-formed, use only Pango's styling tags and a known
set of span attributes, ask for at most MAX_POINTS points, nest at most
MAX_DEPTH deep (each `big` or `larger` grows the text by a fifth), and hold
at most MAX_CHARACTERS characters of text. What passes renders to at most a
few megapixels (see proxy.pipeline.watermark.TEXT_MARK_BYTES).
"""

from __future__ import annotations

import re
from xml.etree import ElementTree

from proxy.errors import InvalidOptionArgument

MAX_CHARACTERS = 256
MAX_POINTS = 100
MAX_DEPTH = 8

TAGS = frozenset({"span", "b", "big", "i", "s", "sub", "sup", "small", "tt", "u"})
SPAN_ATTRIBUTES = frozenset(
    {
        "face", "font_family", "foreground", "fgcolor", "color", "background", "bgcolor",
        "alpha", "fgalpha", "bgalpha", "size", "font_size", "font", "font_desc", "style",
        "font_style", "weight", "font_weight", "variant", "stretch", "underline",
        "strikethrough",
    }
)  # fmt: skip
_SIZES = frozenset(
    {"xx-small", "x-small", "small", "medium", "large", "x-large", "xx-large", "smaller", "larger"}
)
_POINTS = re.compile(r"(\d+(?:\.\d+)?)pt")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def check_markup(text: str, option: str = "watermark_text") -> str:
    """The markup, if it is safe to render; else InvalidOptionArgument with one line."""
    try:
        root = ElementTree.fromstring(f"<markup>{text}</markup>")
    except ElementTree.ParseError:
        raise _refused(option, "not well-formed Pango markup") from None
    characters = sum(len(part) for part in root.itertext())
    if characters == 0:
        raise _refused(option, "no text")
    if characters > MAX_CHARACTERS:
        raise _refused(option, f"more than {MAX_CHARACTERS} characters")
    _check(root, 0, option)
    return text


def _check(element: ElementTree.Element, depth: int, option: str) -> None:
    for child in element:
        if child.tag not in TAGS:
            raise _refused(option, f"unknown markup tag <{child.tag[:20]}>")
        if depth + 1 > MAX_DEPTH:
            raise _refused(option, f"markup nested deeper than {MAX_DEPTH}")
        for name, value in child.attrib.items():
            if child.tag != "span" or name not in SPAN_ATTRIBUTES:
                raise _refused(option, f"unknown markup attribute {name[:20]!r}")
            _check_size(name, value, option)
        _check(child, depth + 1, option)


def _check_size(name: str, value: str, option: str) -> None:
    """Sizes in points, Pango units (1024 a point) or words; fonts' sizes in points."""
    if name in ("size", "font_size"):
        points = _POINTS.fullmatch(value)
        if value in _SIZES:
            return
        if points is not None:
            size = float(points.group(1))
        elif value.isdigit():
            size = int(value) / 1024
        else:
            raise _refused(option, f"unreadable markup size {value[:20]!r}")
        if size > MAX_POINTS:
            raise _refused(option, f"markup size above {MAX_POINTS} points")
    elif name in ("font", "font_desc") and any(
        float(number) > MAX_POINTS for number in _NUMBER.findall(value)
    ):
        raise _refused(option, f"markup font size above {MAX_POINTS} points")


def _refused(option: str, why: str) -> InvalidOptionArgument:
    return InvalidOptionArgument(f"invalid {option} argument: {why}")
