"""Encode the processed image: format, quality, and what metadata survives."""

from __future__ import annotations

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
