"""Decoders for the formats the wheel's libvips cannot decode: HEIC, JPEG XL, BMP, ICO.

Each reads a header without decoding a pixel (so the source limits apply
before any work), then decodes in memory and hands libvips an image with
the ICC profile and EXIF attached, as libvips' own loaders would; nothing
downstream learns where the pixels came from. The decoders were chosen by
measurement (BENCHMARKS.md, "Formats"):

- HEIC (HEVC): pillow-heif (libheif + libde265). The wheel's libheif has AV1
  only; libvips still reads the container, so HEIC is recognised there and
  decoded here. The primary image of a sequence; libheif applies the
  container's rotation and mirroring (HEIF ignores EXIF orientation).
- JPEG XL: pylibjxl (libjxl). Header from `probe` in microseconds; the
  decoder applies the codestream's orientation. An animation is read as its
  first frame.
- BMP (1/4/8-bit palette, RLE, 16/24/32-bit, top-down) and ICO (the largest
  entry, PNG entries included): Pillow.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyvips

from proxy.errors import NotAnImage, ProcessingFailed

# Pillow's own bomb check is off: our limit (MAX_SRC_RESOLUTION) is applied
# from the header before decoding, with our error.
_PIL_LIMIT = None


@dataclass(frozen=True, slots=True)
class ForeignHeader:
    format: str
    width: int
    height: int
    has_alpha: bool


@dataclass(frozen=True, slots=True)
class ForeignDecoder:
    format: str
    loader: str  # the name SourceHeader.loader carries, like libvips' "jpegload_buffer"
    sniff: Callable[[bytes], bool]
    header: Callable[[bytes], ForeignHeader]
    decode: Callable[[bytes], pyvips.Image]
    # Full-size copies of the pixels held at the peak of a decode (the decoder's
    # buffer, the array handed over, ...), for the footprint estimate; measured
    # with bench/formats.py.
    copies: int = 3


def _from_array(
    pixels: np.ndarray, icc: bytes | None = None, exif: bytes | None = None
) -> pyvips.Image:
    if pixels.ndim == 2:
        pixels = pixels[:, :, np.newaxis]
    if pixels.dtype != np.uint8:
        pixels = (
            (pixels >> 8).astype(np.uint8) if pixels.dtype == np.uint16 else pixels.astype(np.uint8)
        )
    pixels = np.ascontiguousarray(pixels)
    height, width, bands = pixels.shape
    image = pyvips.Image.new_from_memory(pixels.data, width, height, bands, "uchar")
    image = image.copy(interpretation="srgb" if bands >= 3 else "b-w")
    if icc:
        image.set_type(pyvips.GValue.blob_type, "icc-profile-data", icc)
    if exif:
        image.set_type(pyvips.GValue.blob_type, "exif-data", exif)
    return image


# --- HEIC ----------------------------------------------------------------------


def _heic_header(data: bytes) -> ForeignHeader:
    import pillow_heif

    try:
        found = pillow_heif.open_heif(data, convert_hdr_to_8bit=True)
    except (ValueError, RuntimeError):
        raise NotAnImage("source image header is invalid") from None
    width, height = found.size
    return ForeignHeader("heic", width, height, found.has_alpha)


def _heic_decode(data: bytes) -> pyvips.Image:
    import pillow_heif

    try:
        found = pillow_heif.open_heif(data, convert_hdr_to_8bit=True)
        pixels = np.asarray(found)
    except (ValueError, RuntimeError):
        raise ProcessingFailed("source image could not be decoded") from None
    return _from_array(pixels, found.info.get("icc_profile"), found.info.get("exif"))


# --- JPEG XL -------------------------------------------------------------------

_JXL_CODESTREAM = b"\xff\x0a"
_JXL_CONTAINER = b"\x00\x00\x00\x0cJXL \r\n\x87\n"


def _is_jxl(data: bytes) -> bool:
    return data.startswith(_JXL_CODESTREAM) or data.startswith(_JXL_CONTAINER)


def _jxl_header(data: bytes) -> ForeignHeader:
    import pylibjxl

    try:
        found = pylibjxl.probe(data)
    except Exception:  # the binding raises plain RuntimeError/ValueError kinds
        raise NotAnImage("source image header is invalid") from None
    return ForeignHeader("jxl", int(found["width"]), int(found["height"]), bool(found["has_alpha"]))


def _jxl_decode(data: bytes) -> pyvips.Image:
    import pylibjxl

    try:
        pixels, metadata = pylibjxl.decode(data, metadata=True)
    except Exception:
        raise ProcessingFailed("source image could not be decoded") from None
    return _from_array(
        pixels, metadata.get("icc_profile") or metadata.get("icc"), metadata.get("exif")
    )


# --- BMP and ICO (Pillow) ------------------------------------------------------


def _is_bmp(data: bytes) -> bool:
    return data.startswith(b"BM") and len(data) >= 26


def _is_ico(data: bytes) -> bool:
    return data.startswith(b"\x00\x00\x01\x00") and len(data) >= 22


def _pillow_open(data: bytes, fmt: str):  # type: ignore[no-untyped-def]
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = _PIL_LIMIT
    try:
        return Image.open(io.BytesIO(data), formats=[fmt.upper()])
    except Exception:  # Pillow raises many kinds for a bad header
        raise NotAnImage("source image header is invalid") from None


def _pillow_header(fmt: str) -> Callable[[bytes], ForeignHeader]:
    def header(data: bytes) -> ForeignHeader:
        opened = _pillow_open(data, fmt)
        alpha = opened.mode in ("RGBA", "LA", "PA") or "transparency" in opened.info
        return ForeignHeader(fmt, opened.width, opened.height, alpha)

    return header


def _pillow_decode(fmt: str) -> Callable[[bytes], pyvips.Image]:
    def decode(data: bytes) -> pyvips.Image:
        opened = _pillow_open(data, fmt)
        try:
            opened.load()
            alpha = opened.mode in ("RGBA", "LA", "PA") or "transparency" in opened.info
            wanted = "RGBA" if alpha else "RGB"
            converted = opened if opened.mode == wanted else opened.convert(wanted)
        except Exception:
            raise ProcessingFailed("source image could not be decoded") from None
        return _from_array(np.asarray(converted), opened.info.get("icc_profile"))

    return decode


# Sniffed in this order before libvips is asked (HEIC is recognised by libvips' HEIF
# loader, which reads its container, and is routed here by its compression).
DECODERS: tuple[ForeignDecoder, ...] = (
    ForeignDecoder("jxl", "jxlload_foreign", _is_jxl, _jxl_header, _jxl_decode),
    # Pillow reads the file into its own buffer besides the decoded pixels.
    ForeignDecoder(
        "bmp", "bmpload_foreign", _is_bmp, _pillow_header("bmp"), _pillow_decode("bmp"), 4
    ),
    ForeignDecoder(
        "ico", "icoload_foreign", _is_ico, _pillow_header("ico"), _pillow_decode("ico"), 4
    ),
)
HEIC = ForeignDecoder("heic", "heicload_foreign", lambda data: False, _heic_header, _heic_decode)
BY_LOADER = {decoder.loader: decoder for decoder in (*DECODERS, HEIC)}


def sniff(data: bytes) -> ForeignDecoder | None:
    return next((decoder for decoder in DECODERS if decoder.sniff(data)), None)
