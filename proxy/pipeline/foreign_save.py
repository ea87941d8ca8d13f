"""Encoders for what the wheel's libvips cannot write: JPEG XL and HEIC.

JPEG XL through pillow-jxl-plugin (libjxl) and HEIC through pillow-heif
(libheif and x265). The quality scale is libvips' and imgproxy's: for JPEG XL
libjxl maps it to a Butteraugli distance, for HEIC it is x265's quality.
Metadata is not written: results are sRGB, and stripped by default.
"""

from __future__ import annotations

import io

import numpy as np
import pyvips

# imgproxy's IMGPROXY_JXL_EFFORT default: libjxl's effort 4 is ~10x faster than
# its default 7 for a few per cent more bytes.
JXL_EFFORT = 4


def _pixels(image: pyvips.Image) -> np.ndarray:
    if image.bands < 3:
        image = image.colourspace("srgb")
    if image.format != "uchar":
        image = image.cast("uchar")
    return np.ascontiguousarray(image.numpy().reshape(image.height, image.width, image.bands))


def jxl_bytes(image: pyvips.Image, quality: int, effort: int = JXL_EFFORT) -> bytes:
    # pillow-jxl-plugin (libjxl through jpegxl-rs), not pylibjxl, which decodes
    # JPEG XL here: pylibjxl's encoder wrote 4-5x the bytes of libjxl's own cjxl
    # at the same distance (a 1200 px photo at distance 2: 278 KB against 59 KB;
    # pillow-jxl-plugin 63 KB, imagecodecs 61 KB), so JPEG XL cost more than
    # JPEG at equal SSIM (bench/auto_quality.py).
    import pillow_jxl  # noqa: F401 - registers the JXL format with Pillow
    from PIL import Image

    pixels = _pixels(image)
    out = io.BytesIO()
    Image.fromarray(pixels, "RGBA" if pixels.shape[2] == 4 else "RGB").save(
        out, format="JXL", quality=quality, effort=effort, lossless=quality >= 100
    )
    return out.getvalue()


def heic_bytes(image: pyvips.Image, quality: int) -> bytes:
    import pillow_heif

    pixels = _pixels(image)
    mode = "RGBA" if pixels.shape[2] == 4 else "RGB"
    heif = pillow_heif.from_bytes(mode, (image.width, image.height), pixels.tobytes())
    out = io.BytesIO()
    heif.save(out, quality=quality)
    return out.getvalue()
