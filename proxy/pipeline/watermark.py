"""The watermark image from the settings: read once at start-up, kept decoded."""

from __future__ import annotations

import asyncio
import logging

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
