"""Responsive image markup: `srcset` strings and `<picture>` elements.

    srcset(images, "https://shop/cup.jpg", widths=[320, 640, 1280], height=0)
    picture(images, "https://shop/cup.jpg", widths=[320, 640, 1280], width=640, height=400,
            sizes="(max-width: 700px) 100vw, 640px", alt="A cup")

Each width in `widths` becomes one candidate URL (`w` set to it, and `h`
scaled to keep the width:height ratio when a height is given, with
`resizing_type:fill-down` unless the options choose a resizing type, so every
candidate really has that ratio), described by its width (`640w`); the
browser picks by `sizes` and the screen's density.
`picture` adds one `<source type=...>` per modern format, best first, and an
`<img>` with the fallback format, width/height attributes (no layout shift)
and lazy loading. Every attribute value is HTML-escaped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

from signing.builder import UrlBuilder, canonical_name, format_number

MIME_TYPES = {
    "avif": "image/avif",
    "webp": "image/webp",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "gif": "image/gif",
}


def _sized(width: int, base_width: int, base_height: int) -> dict[str, int]:
    if base_width and base_height:
        return {"width": width, "height": round(base_height * width / base_width)}
    return {"width": width}


def _ratio_kept(builder: UrlBuilder, height: int, options: dict[str, Any]) -> dict[str, Any]:
    """Options under which every candidate has the width:height the markup promises.

    With a height, the default resize (fit) would keep the *source's* ratio
    and the page would shift when the image arrives; fill-down crops to the
    asked ratio, also from a source smaller than a candidate. A resizing type
    the caller chose (here or on the builder) is theirs to keep.
    """
    chosen = {name for name, _ in builder.options} | {canonical_name(o) for o in options}
    if not height or chosen & {"resize", "resizing_type"}:
        return options
    return {**options, "resizing_type": "fill-down"}


def srcset(
    builder: UrlBuilder,
    source: str,
    widths: Iterable[int],
    width: int = 0,
    height: int = 0,
    **options: Any,
) -> str:
    """`url 320w, url 640w, ...`: one candidate per width, height kept in ratio."""
    candidates = sorted(set(widths))
    if not candidates or any(w < 1 for w in candidates):
        raise ValueError("widths: give one or more positive widths")
    base_width = width or candidates[-1]
    options = _ratio_kept(builder, height, options)
    return ", ".join(
        f"{builder.url(source, **options, **_sized(w, base_width, height))} {w}w"
        for w in candidates
    )


def srcset_density(
    builder: UrlBuilder,
    source: str,
    densities: Iterable[float] = (1, 2),
    **options: Any,
) -> str:
    """`url 1x, url 2x`: the same CSS size at each device pixel ratio (`dpr`)."""
    parts = []
    for density in sorted(set(densities)):
        extra = {} if density == 1 else {"dpr": density}
        parts.append(f"{builder.url(source, **options, **extra)} {format_number(density)}x")
    return ", ".join(parts)


def _attributes(pairs: Sequence[tuple[str, Any]]) -> str:
    return "".join(
        f' {name}="{escape(str(value), quote=True)}"' for name, value in pairs if value is not None
    )


def picture(
    builder: UrlBuilder,
    source: str,
    widths: Iterable[int],
    *,
    width: int,
    height: int,
    alt: str,
    sizes: str = "100vw",
    formats: Sequence[str] = ("avif", "webp"),
    fallback_format: str = "jpg",
    loading: str = "lazy",
    **options: Any,
) -> str:
    """A `<picture>`: a `<source>` per format (best first) and a sized, lazy `<img>`.

    `width`/`height` are the image's size in CSS pixels: they become the
    `<img>` attributes (so the page reserves the space before the image
    arrives) and fix the aspect ratio of every candidate.
    """
    candidates = sorted(set(widths))
    for fmt in (*formats, fallback_format):
        if fmt not in MIME_TYPES:
            raise ValueError(f"formats: no MIME type known for {fmt!r}")
    sources = [
        "<source"
        + _attributes(
            [
                ("type", MIME_TYPES[fmt]),
                (
                    "srcset",
                    srcset(builder, source, candidates, width, height, format=fmt, **options),
                ),
                ("sizes", sizes),
            ]
        )
        + ">"
        for fmt in formats
    ]
    fallback = _ratio_kept(builder, height, {"format": fallback_format, **options})
    default_width = min((w for w in candidates if w >= width), default=candidates[-1])
    img = (
        "<img"
        + _attributes(
            [
                ("src", builder.url(source, **fallback, **_sized(default_width, width, height))),
                ("srcset", srcset(builder, source, candidates, width, height, **fallback)),
                ("sizes", sizes),
                ("width", width),
                ("height", height),
                ("alt", alt),
                ("loading", loading),
                ("decoding", "async"),
            ]
        )
        + ">"
    )
    return "<picture>" + "".join(sources) + img + "</picture>"
