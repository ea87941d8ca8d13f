"""BMP and ICO writers: libvips writes both only through ImageMagick, which
the pyvips-binary wheel leaves out, and both formats are a header around
pixels (BMP) or around a PNG (ICO), so they are written here.
"""

from __future__ import annotations

import struct

import pyvips

# imgproxy's rule: an ICO is at most 256 pixels on its longer side.
ICO_MAX_SIDE = 256

_FILE_HEADER = struct.Struct("<2sIHHI")  # "BM", file size, reserved x2, pixel offset
_INFO_HEADER = struct.Struct("<IiiHHIIiiII")  # BITMAPINFOHEADER, 40 bytes
_V4_MASKS = struct.Struct("<IIII")  # red, green, blue, alpha bit masks
_V4_REST = 108 - 40 - 16  # colour space type, endpoints, gamma (all zero: calibrated RGB)
_BI_RGB, _BI_BITFIELDS = 0, 3
_PIXELS_PER_METRE = 2835  # 72 dpi


def _srgb_uchar(image: pyvips.Image) -> pyvips.Image:
    if image.interpretation not in ("srgb", "rgb") or image.bands < 3:
        image = image.colourspace("srgb")
    return image.cast("uchar") if image.format != "uchar" else image


def bmp_bytes(image: pyvips.Image) -> bytes:
    """24-bit BGR, or 32-bit BGRA with a V4 header's alpha mask when there is alpha.

    Rows are stored bottom-up, each padded to 4 bytes, as every BMP reader expects.
    """
    image = _srgb_uchar(image)
    alpha = image.bands == 4
    bgr = image[2].bandjoin([image[1], image[0], *([image[3]] if alpha else [])])
    rows = bgr.flip("vertical").write_to_memory()
    width, height = image.width, image.height
    row_bytes = width * (4 if alpha else 3)
    padding = -row_bytes % 4
    if padding:
        pad = b"\0" * padding
        rows = b"".join(
            rows[start : start + row_bytes] + pad for start in range(0, len(rows), row_bytes)
        )
    if alpha:
        header_size = 108
        info = _INFO_HEADER.pack(
            header_size, width, height, 1, 32, _BI_BITFIELDS, len(rows),
            _PIXELS_PER_METRE, _PIXELS_PER_METRE, 0, 0,
        )  # fmt: skip
        info += _V4_MASKS.pack(0x00FF0000, 0x0000FF00, 0x000000FF, 0xFF000000)
        info += b"sRGB"[::-1] + b"\0" * (_V4_REST - 4)  # LCS_sRGB, stored little-endian
    else:
        header_size = 40
        info = _INFO_HEADER.pack(
            header_size, width, height, 1, 24, _BI_RGB, len(rows),
            _PIXELS_PER_METRE, _PIXELS_PER_METRE, 0, 0,
        )  # fmt: skip
    offset = _FILE_HEADER.size + header_size
    return _FILE_HEADER.pack(b"BM", offset + len(rows), 0, 0, offset) + info + rows


def fit_ico(image: pyvips.Image) -> pyvips.Image:
    """Downscale so the longer side is at most 256 (imgproxy does the same)."""
    longer = max(image.width, image.height)
    if longer <= ICO_MAX_SIDE:
        return image
    return image.resize(ICO_MAX_SIDE / longer, kernel="lanczos3")


def ico_bytes(image: pyvips.Image, keep: str) -> bytes:
    """One PNG-compressed 32-bit entry (readable since Windows Vista and by every browser)."""
    image = fit_ico(image)
    png = image.pngsave_buffer(compression=6, keep=keep)
    directory = struct.pack("<HHH", 0, 1, 1)  # reserved, type 1 = icon, one image
    entry = struct.pack(
        "<BBBBHHII",
        image.width % 256,  # 0 means 256
        image.height % 256,
        0,  # no palette
        0,
        1,  # colour planes
        32,  # bits per pixel
        len(png),
        len(directory) + 16,  # the PNG starts right after this one 16-byte entry
    )
    return directory + entry + png
