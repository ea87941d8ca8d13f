"""Encoders for what the wheel's libvips cannot write: JPEG XL and HEIC.

JPEG XL through pillow-jxl-plugin (libjxl) and HEIC through pillow-heif
(libheif and x265). The quality scale is libvips' and imgproxy's: for JPEG XL
libjxl maps it to a Butteraugli distance, for HEIC it is x265's quality.

Metadata follows libvips' `keep` flags as for the formats libvips writes:
EXIF (with the orientation the pixels now have) and XMP in both, the colour
profile in HEIC. pillow-jxl-plugin cannot write a colour profile, so a JPEG XL
result whose profile is kept is converted to sRGB instead: the colours stay
right, the profile is what is lost.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pyvips

# EXIF fields libvips keeps as text (prepare_metadata's copyright-only EXIF),
# and their tags, for when there is no EXIF block to copy.
_EXIF_TAGS = {"exif-ifd0-Copyright": 0x8298}
_ORIENTATION_TAG = 0x0112
_ALL_KEPT = frozenset({"exif", "xmp", "iptc", "icc", "other"})


@dataclass(frozen=True, slots=True)
class ResultMetadata:
    # With the "Exif\0\0" prefix: pillow-heif writes the HEIF item's offset
    # from it (without it ImageMagick found no EXIF).
    exif: bytes | None = None
    xmp: bytes | None = None
    icc: bytes | None = None


def result_metadata(image: pyvips.Image, keep: str) -> ResultMetadata:
    """What libvips would write for these `keep` flags, as bytes."""
    kept = _ALL_KEPT if keep == "all" else frozenset(keep.split("|")) - {"none"}
    fields = set(image.get_fields())
    return ResultMetadata(
        exif=_exif_block(image, fields) if "exif" in kept else None,
        xmp=image.get("xmp-data") if "xmp" in kept and "xmp-data" in fields else None,
        icc=image.get("icc-profile-data")
        if "icc" in kept and "icc-profile-data" in fields
        else None,
    )


def _exif_block(image: pyvips.Image, fields: set[str]) -> bytes | None:
    from PIL import Image

    exif = Image.Exif()
    if "exif-data" in fields:
        exif.load(image.get("exif-data"))
        # The pixels are upright unless auto-rotation was off, as libvips
        # rewrites the tag when it saves.
        exif[_ORIENTATION_TAG] = image.get("orientation") if "orientation" in fields else 1
    else:
        for name, tag in _EXIF_TAGS.items():
            if name in fields:
                exif[tag] = image.get(name)
    return exif.tobytes() if len(exif) else None


# imgproxy's IMGPROXY_JXL_EFFORT default: libjxl's effort 4 is ~10x faster than
# its default 7 for a few per cent more bytes.
JXL_EFFORT = 4


def _pixels(image: pyvips.Image) -> np.ndarray:
    if image.bands < 3:
        image = image.colourspace("srgb")
    if image.format != "uchar":
        image = image.cast("uchar")
    return np.ascontiguousarray(image.numpy().reshape(image.height, image.width, image.bands))


def jxl_bytes(
    image: pyvips.Image, quality: int, effort: int = JXL_EFFORT, keep: str = "none"
) -> bytes:
    # pillow-jxl-plugin (libjxl through jpegxl-rs), not pylibjxl, which decodes
    # JPEG XL here: pylibjxl's encoder wrote 4-5x the bytes of libjxl's own cjxl
    # at the same distance (a 1200 px photo at distance 2: 278 KB against 59 KB;
    # pillow-jxl-plugin 63 KB, imagecodecs 61 KB), so JPEG XL cost more than
    # JPEG at equal SSIM (bench/auto_quality.py).
    import pillow_jxl  # noqa: F401 - registers the JXL format with Pillow
    from PIL import Image

    metadata = result_metadata(image, keep)
    if metadata.icc is not None and image.bands >= 3 and image.format == "uchar":
        image = image.icc_transform("srgb", embedded=True, intent="perceptual")
    pixels = _pixels(image)
    # A JPEG XL `Exif` box starts with the 4-byte offset of the TIFF header
    # (ISO/IEC 18181-2); pillow-jxl-plugin writes the bytes it is given as the
    # box, so the offset (0) is put in front here.
    exif = b"\x00" * 4 + metadata.exif.removeprefix(b"Exif\x00\x00") if metadata.exif else None
    extra = {"exif": exif, "xmp": metadata.xmp}
    out = io.BytesIO()
    Image.fromarray(pixels, "RGBA" if pixels.shape[2] == 4 else "RGB").save(
        out,
        format="JXL",
        quality=quality,
        effort=effort,
        lossless=quality >= 100,
        **{name: value for name, value in extra.items() if value is not None},
    )
    return out.getvalue()


def heic_bytes(
    image: pyvips.Image, quality: int, keep: str = "none", preset: str | None = None
) -> bytes:
    """`preset`: x265's, for bench/avif_speed.py --heic-presets; None is libheif's
    default ("slow"), which the server uses: "medium" takes 0.55x its encode
    time for 1.5% more bytes at equal SSIM (COMPRESSION.md)."""
    import pillow_heif

    metadata = result_metadata(image, keep)
    pixels = _pixels(image)
    mode = "RGBA" if pixels.shape[2] == 4 else "RGB"
    heif = pillow_heif.from_bytes(mode, (image.width, image.height), pixels.tobytes())
    extra = {"exif": metadata.exif, "xmp": metadata.xmp, "icc_profile": metadata.icc}
    out = io.BytesIO()
    heif.save(
        out,
        quality=quality,
        **({"enc_params": {"preset": preset}} if preset else {}),
        **{name: value for name, value in extra.items() if value is not None},
    )
    return out.getvalue()
