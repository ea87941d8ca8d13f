"""Hostile files made by hand: tiny on the wire, enormous when decoded."""

from __future__ import annotations

import struct
import zlib

from tests.images import encode, gradient, png_chunk


def png_bomb(width: int = 50_000, height: int = 50_000) -> bytes:
    """A valid PNG header claiming width x height RGB, with a few rows of data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (1 + width * 3) * 4, 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", rows)
        + png_chunk(b"IEND", b"")
    )


def jpeg_with_size(width: int, height: int) -> bytes:
    """A real small JPEG whose frame header claims another size."""
    data = bytearray(encode(gradient(64, 64), "jpg"))
    at = data.index(b"\xff\xc0")  # baseline SOF0
    data[at + 5 : at + 9] = struct.pack(">HH", height, width)
    return bytes(data)
