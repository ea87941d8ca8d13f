"""Watermark images: the settings' (read once at start-up, kept decoded), a
URL's text drawn with Pango (imgproxy Pro's watermark_text), and the shadow
and rotation a URL may give either."""

from __future__ import annotations

import asyncio
import logging
import math

import pyvips

from proxy.errors import ProxyError
from proxy.pipeline.load import find_loader
from proxy.settings import Settings, SettingsError
from proxy.sources import Sources

log = logging.getLogger("pixelpipe")


async def load_watermark(settings: Settings, sources: Sources) -> pyvips.Image | None:
    """PIXELPIPE_WATERMARK_DATA, _PATH or _URL (first set wins), as sRGB with alpha."""
    data: bytes | None = settings.watermark_data
    if data is None and settings.watermark_path:
        with open(settings.watermark_path, "rb") as handle:
            data = handle.read()
    if data is None and settings.watermark_url:
        try:
            data = (await sources.fetch(settings.watermark_url)).data
        except ProxyError as error:
            raise SettingsError(f"PIXELPIPE_WATERMARK_URL: {error.reason}") from None
    if data is None:
        return None
    return await asyncio.to_thread(decode_watermark, data, settings.watermark_opacity)


def decode_watermark(data: bytes, opacity: float) -> pyvips.Image:
    try:
        find_loader(data)
        image = pyvips.Image.new_from_buffer(data, "")
        image = image.colourspace("srgb").cast("uchar")
        if not image.hasalpha():
            image = image.addalpha()
        if opacity < 1:
            alpha = image[image.bands - 1] * opacity
            image = image[: image.bands - 1].bandjoin(alpha).cast("uchar")
        # Decoded once into memory: every request reuses these pixels.
        return image.copy_memory()
    except (ProxyError, pyvips.Error):
        raise SettingsError(
            "PIXELPIPE_WATERMARK_*: the watermark is not a readable image"
        ) from None


MIB = 1024 * 1024
# Text as imgproxy Pro draws it unless the markup says otherwise: black sans 16.
TEXT_FONT = "sans 16"
TEXT_DPI = 72
# The most a checked markup (proxy.options.markup: 256 characters, 100 points,
# 8 levels of nesting) draws: ~3.3 megapixels of RGBA, and its shadow's copy.
TEXT_MARK_BYTES = 32 * MIB


def text_mark(markup: str) -> pyvips.Image:
    """imgproxy Pro's watermark_text: the markup drawn in sRGB with alpha."""
    return pyvips.Image.text(markup, font=TEXT_FONT, rgba=True, dpi=TEXT_DPI).copy(
        interpretation="srgb"
    )


def shaped_mark(mark: pyvips.Image, rotate: float, shadow: float) -> pyvips.Image:
    """The watermark with its shadow (black, blurred by `shadow`) and turned `rotate`
    degrees clockwise, transparent around."""
    if shadow > 0:
        margin = math.ceil(3 * shadow)
        width, height = mark.width + 2 * margin, mark.height + 2 * margin
        padded = mark.embed(margin, margin, width, height, background=[0, 0, 0, 0])
        cast = padded[3].gaussblur(shadow).cast("uchar")
        dark = pyvips.Image.black(width, height, bands=3).bandjoin(cast)
        mark = dark.copy(interpretation="srgb").composite2(padded, "over").cast("uchar")
    if rotate % 360:
        if rotate % 90 == 0:
            mark = mark.rot(f"d{int(rotate) % 360}")
        else:
            mark = mark.rotate(rotate, background=[0, 0, 0, 0]).cast("uchar")
    return mark
