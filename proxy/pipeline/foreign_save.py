"""Encoders for what the wheel's libvips cannot write: JPEG XL and HEIC.

JPEG XL through pylibjxl (libjxl) and HEIC through pillow-heif (libheif and
x265), the libraries that also decode them (proxy.pipeline.foreign). The
quality scale is libvips' and imgproxy's: for JPEG XL it becomes a
Butteraugli distance by libjxl's own mapping, for HEIC it is x265's quality.
Metadata is not written: results are sRGB, and stripped by default.
"""

from __future__ import annotations

import io

import numpy as np
import pyvips

# imgproxy's IMGPROXY_JXL_EFFORT default: libjxl's effort 4 is ~10x faster than
# its default 7 for a few per cent more bytes.
JXL_EFFORT = 4


def jxl_distance(quality: int) -> float:
    """libjxl's JxlEncoderDistanceFromQuality: the distance libvips' Q means."""
    if quality >= 100:
        return 0.0
    if quality >= 30:
        return 0.1 + (100 - quality) * 0.09
    return 6.24 + pow(2.5, (30 - quality) / 5.0) / 6.25


def _pixels(image: pyvips.Image) -> np.ndarray:
    if image.bands < 3:
        image = image.colourspace("srgb")
    if image.format != "uchar":
        image = image.cast("uchar")
    return np.ascontiguousarray(image.numpy().reshape(image.height, image.width, image.bands))


def jxl_bytes(image: pyvips.Image, quality: int, effort: int = JXL_EFFORT) -> bytes:
    import pylibjxl

    distance = jxl_distance(quality)
    return bytes(
        pylibjxl.encode(_pixels(image), effort=effort, distance=distance, lossless=distance == 0)
    )


def heic_bytes(image: pyvips.Image, quality: int) -> bytes:
    import pillow_heif

    pixels = _pixels(image)
    mode = "RGBA" if pixels.shape[2] == 4 else "RGB"
    heif = pillow_heif.from_bytes(mode, (image.width, image.height), pixels.tobytes())
    out = io.BytesIO()
    heif.save(out, quality=quality)
    return out.getvalue()
