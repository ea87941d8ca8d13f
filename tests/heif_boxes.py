"""Hand edits of HEIF files (ISO/IEC 23008-12 boxes) that no tool here writes."""

from __future__ import annotations

import struct
from collections.abc import Iterator


def _children(data: bytes, start: int, end: int) -> dict[bytes, tuple[int, int]]:
    found: dict[bytes, tuple[int, int]] = {}
    while start < end:
        size, kind = struct.unpack(">I4s", data[start : start + 8])
        found.setdefault(kind, (start, size))
        start += size
    return found


def with_irot(heic: bytes, quarter_turns: int) -> bytes:
    """`heic` with an `irot` property (anticlockwise quarter turns) on its
    primary item, added by hand: heif-enc 1.15 has no option for it and
    ImageMagick writes none. Boxes follow ISO/IEC 23008-12 and 14496-12."""
    meta_at, meta_size = _children(heic, 0, len(heic))[b"meta"]
    inside = _children(heic, meta_at + 12, meta_at + meta_size)  # meta is a FullBox
    primary = struct.unpack(">H", heic[inside[b"pitm"][0] + 12 : inside[b"pitm"][0] + 14])[0]
    iprp_at, iprp_size = inside[b"iprp"]
    properties = _children(heic, iprp_at + 8, iprp_at + iprp_size)
    ipco_at, ipco_size = properties[b"ipco"]
    index = len(list(_iterate(heic, ipco_at + 8, ipco_at + ipco_size))) + 1
    irot = struct.pack(">I4sB", 9, b"irot", quarter_turns & 3)
    ipma_at, ipma_size = properties[b"ipma"]
    ipma = _ipma_with(heic[ipma_at : ipma_at + ipma_size], primary, index)
    grow = len(irot) + len(ipma) - ipma_size
    iloc_at, iloc_size = inside[b"iloc"]
    iloc = _iloc_shifted(heic[iloc_at : iloc_at + iloc_size], grow)
    ipco = struct.pack(">I", ipco_size + len(irot)) + heic[ipco_at + 4 : ipco_at + ipco_size] + irot
    rest = b"".join(
        heic[at : at + size]
        for kind, (at, size) in sorted(properties.items(), key=lambda item: item[1][0])
        if kind not in (b"ipco", b"ipma")
    )
    iprp = struct.pack(">I4s", 8 + len(ipco) + len(ipma) + len(rest), b"iprp") + ipco + ipma + rest
    body = b"".join(
        iloc if kind == b"iloc" else iprp if kind == b"iprp" else heic[at : at + size]
        for kind, (at, size) in sorted(inside.items(), key=lambda item: item[1][0])
    )
    meta = struct.pack(">I", 12 + len(body)) + heic[meta_at + 4 : meta_at + 12] + body
    return heic[:meta_at] + meta + heic[meta_at + meta_size :]


def _iterate(data: bytes, start: int, end: int) -> Iterator[int]:
    while start < end:
        size = struct.unpack(">I", data[start : start + 4])[0]
        yield start
        start += size


def _ipma_with(ipma: bytes, item: int, index: int) -> bytes:
    version, flags = ipma[8], int.from_bytes(ipma[9:12], "big")
    count = struct.unpack(">I", ipma[12:16])[0]
    id_size, link_size = (2 if version < 1 else 4), (2 if flags & 1 else 1)
    out, at = bytearray(ipma[8:16]), 16
    for _ in range(count):
        item_id = int.from_bytes(ipma[at : at + id_size], "big")
        links = ipma[at + id_size]
        entries = ipma[at + id_size + 1 : at + id_size + 1 + links * link_size]
        at += id_size + 1 + links * link_size
        if item_id == item:  # transformative properties are essential: top bit set
            entries += (index | (0x8000 if link_size == 2 else 0x80)).to_bytes(link_size, "big")
            links += 1
        out += item_id.to_bytes(id_size, "big") + bytes([links]) + entries
    return struct.pack(">I4s", 8 + len(out), b"ipma") + bytes(out)


def _iloc_shifted(iloc: bytes, grow: int) -> bytes:
    """Every file offset moved by `grow` (data in idat is relative: left)."""
    out = bytearray(iloc)
    version = iloc[8]
    offset_size, length_size = iloc[12] >> 4, iloc[12] & 15
    base_size, index_size = iloc[13] >> 4, (iloc[13] & 15 if version else 0)
    id_size = 2 if version < 2 else 4
    count_size = 2 if version < 2 else 4
    count = int.from_bytes(iloc[14 : 14 + count_size], "big")
    at = 14 + count_size

    def shift(where: int, size: int) -> None:
        value = int.from_bytes(out[where : where + size], "big") + grow
        out[where : where + size] = value.to_bytes(size, "big")

    for _ in range(count):
        at += id_size
        method = 0
        if version in (1, 2):
            method = int.from_bytes(iloc[at : at + 2], "big") & 15
            at += 2
        at += 2  # data_reference_index
        base_at = at
        at += base_size
        extents = int.from_bytes(iloc[at : at + 2], "big")
        at += 2
        if method == 0 and base_size:
            shift(base_at, base_size)
        for _ in range(extents):
            at += index_size
            if method == 0 and not base_size and offset_size:
                shift(at, offset_size)
            at += offset_size + length_size
    return bytes(out)
