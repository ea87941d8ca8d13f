"""Encode the processed image: format, quality, and what metadata survives."""

from __future__ import annotations

from dataclasses import dataclass

import pyvips

from proxy.options.model import ProcessingOptions

COPYRIGHT_FIELDS = ("exif-ifd0-Copyright",)
_METADATA_BLOBS = ("exif-data", "xmp-data", "iptc-data")


def prepare_metadata(image: pyvips.Image, options: ProcessingOptions) -> tuple[pyvips.Image, str]:
    """Return the image to save and libvips' `keep` flags for it."""
    fields = image.get_fields()
    keep_icc = not options.strip_color_profile and "icc-profile-data" in fields
    if not options.strip_metadata:
        return image, "all" if keep_icc else "exif|xmp|iptc|other"
    kept = ["icc"] if keep_icc else []
    copyright_values = {
        name: _exif_text(image.get(name))
        for name in COPYRIGHT_FIELDS
        if options.keep_copyright and name in fields
    }
    if not copyright_values:
        return image, "|".join(kept) or "none"
    # Rebuild EXIF from the copyright fields alone: libvips writes a fresh,
    # minimal EXIF block from `exif-*` fields when there is no `exif-data`.
    image = image.copy()
    for name in fields:
        if name.startswith("exif-") or name in _METADATA_BLOBS:
            image.remove(name)
    for name, value in copyright_values.items():
        image.set_type(pyvips.GValue.gstr_type, name, value)
    return image, "|".join([*kept, "exif"])


def _exif_text(value: object) -> str:
    # libvips spells EXIF strings as "value (value, ASCII, n components, m bytes)".
    text = str(value)
    return text.split(" (", 1)[0].strip()


# Formats whose size follows the quality setting (imgproxy: jpg, webp, heic/avif).
QUALITY_FORMATS = frozenset({"jpeg", "webp", "avif"})


@dataclass(frozen=True, slots=True)
class Encoded:
    data: bytes
    quality: int
    encodes: int  # how many times the image was encoded to get here


def encode_within(
    image: pyvips.Image, fmt: str, quality: int, keep: str, max_bytes: int
) -> Encoded:
    """Encode at `quality`; with a byte budget, the highest quality that fits.

    Bisection over 1..quality: about log2(quality) encodes rather than a
    step-by-step walk down. When even quality 1 does not fit, quality 1 is
    returned (the smallest this format can make at this size).
    """
    first = encode(image, fmt, quality, keep)
    if not max_bytes or len(first) <= max_bytes or fmt not in QUALITY_FORMATS:
        return Encoded(first, quality, 1)
    encodes = 1
    best: Encoded | None = None
    smallest = Encoded(first, quality, 1)
    low, high = 1, quality - 1
    while low <= high:
        middle = (low + high) // 2
        data = encode(image, fmt, middle, keep)
        encodes += 1
        if len(data) <= max_bytes:
            best = Encoded(data, middle, encodes)
            low = middle + 1
        else:
            high = middle - 1
            smallest = Encoded(data, middle, encodes)
    chosen = best or smallest
    return Encoded(chosen.data, chosen.quality, encodes)


def encode(image: pyvips.Image, fmt: str, quality: int, keep: str) -> bytes:
    if fmt == "jpeg":
        return image.jpegsave_buffer(Q=quality, optimize_coding=True, keep=keep)
    if fmt == "png":
        return image.pngsave_buffer(compression=6, keep=keep)
    if fmt == "webp":
        return image.webpsave_buffer(Q=quality, keep=keep)
    if fmt == "avif":
        # effort 2 of 0..9: libaom's slow presets cost seconds per image for
        # a few percent of bytes; the compression work revisits this.
        return image.heifsave_buffer(Q=quality, compression="av1", effort=2, keep=keep)
    if fmt == "gif":
        return image.gifsave_buffer(keep=keep)
    raise ValueError(f"no encoder for {fmt}")
