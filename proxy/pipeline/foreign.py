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
- JPEG XL: libjxl, through pylibjxl for stills and its C API (proxy.pipeline.jxl)
  for the header, the colour profile and animations' frames and delays; the
  decoder applies the codestream's orientation.
- BMP (1/4/8-bit palette, RLE, 16/24/32-bit, top-down) and ICO (the largest
  entry, PNG entries included): Pillow.
- What only imgproxy Pro reads, each behind its switch: PDF pages through
  pypdfium2 (PDFium), rendered at the scale the result needs; camera RAW
  (DNG, CR2, NEF, ARW, ...) developed by rawpy (LibRaw); PSD through
  psd-tools (the composite the file stores, no layer drawn); a video's frame
  through PyAV (FFmpeg).
"""

from __future__ import annotations

import io
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyvips

from proxy.errors import NotAnImage, ProcessingFailed, UnsupportedFormat
from proxy.pipeline import jxl

# Pillow's own bomb check is off: our limit (MAX_SRC_RESOLUTION) is applied
# from the header before decoding, with our error.
_PIL_LIMIT = None


@dataclass(frozen=True, slots=True)
class Selection:
    """Which picture of a source that holds several: a PDF's page (from 0), a
    video's second."""

    page: int = 0
    second: float = 1.0
    # An animation's every frame, stacked (when the result is animated too).
    every_frame: bool = False
    # The source limit, for decoders that can refuse before their costly probe.
    max_pixels: int = 0


FIRST = Selection()


@dataclass(frozen=True, slots=True)
class ForeignHeader:
    format: str
    width: int
    height: int
    has_alpha: bool
    frames: int = 1


@dataclass(frozen=True, slots=True)
class ForeignDecoder:
    format: str
    loader: str  # the name SourceHeader.loader carries, like libvips' "jpegload_buffer"
    sniff: Callable[[bytes], bool]
    header: Callable[[bytes, Selection], ForeignHeader]
    # (data, selection, scale): scale is used by `scalable` decoders only.
    decode: Callable[[bytes, Selection, float], pyvips.Image]
    # Full-size copies of the pixels held at the peak of a decode (the decoder's
    # buffer, the array handed over, ...), for the footprint estimate; measured
    # with bench/formats.py.
    copies: int = 3
    # Read only when switched on (the setting named in the refusal).
    switch: str = ""
    # Drawn at any scale (PDF), like SVG: rendered at the size the result needs.
    scalable: bool = False


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
        # libvips parses the EXIF it is given, orientation included; the
        # decoders hand out upright pixels, so the tag must not turn them again.
        image.set_type(pyvips.GValue.gint_type, "orientation", 1)
    return image


# --- HEIC ----------------------------------------------------------------------


def _heic_header(data: bytes, _selection: Selection) -> ForeignHeader:
    import pillow_heif

    try:
        found = pillow_heif.open_heif(data, convert_hdr_to_8bit=True)
    except (ValueError, RuntimeError):
        raise NotAnImage("source image header is invalid") from None
    width, height = found.size
    return ForeignHeader("heic", width, height, found.has_alpha)


def _heic_decode(data: bytes, _selection: Selection, _scale: float) -> pyvips.Image:
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


def _jxl_header(data: bytes, selection: Selection) -> ForeignHeader:
    try:
        found = jxl.read_info(data, selection.max_pixels)
    except jxl.JxlError:
        raise NotAnImage("source image header is invalid") from None
    return ForeignHeader("jxl", found.width, found.height, found.has_alpha, found.frames)


def _jxl_decode(data: bytes, selection: Selection, _scale: float) -> pyvips.Image:
    import pylibjxl

    try:
        # The profile libjxl gives for its decoded pixels: pylibjxl leaves a
        # lossy (XYB) file's out, and its colours would be read as sRGB.
        info = jxl.read_info(data)
        if info.animated:
            # pylibjxl reads an animation's first frame without metadata but
            # its last with it: the frames come from libjxl's API instead.
            found = jxl.decode_frames(data, None if selection.every_frame else 1)
            if selection.every_frame:
                return _animation(found)
            return _from_array(found.pixels[0], found.icc or None)
        pixels, metadata = pylibjxl.decode(data, metadata=True)
    except Exception:
        raise ProcessingFailed("source image could not be decoded") from None
    return _from_array(pixels, info.icc or None, metadata.get("exif"))


def _animation(found: jxl.JxlFrames) -> pyvips.Image:
    """Frames stacked top to bottom with their delays, as libvips loads a GIF."""
    image = _from_array(np.concatenate(found.pixels), found.icc or None)
    image.set_type(pyvips.GValue.gint_type, "page-height", found.pixels[0].shape[0])
    image.set_type(pyvips.GValue.gint_type, "n-pages", len(found.pixels))
    image.set_type(pyvips.GValue.array_int_type, "delay", found.delays)
    image.set_type(pyvips.GValue.gint_type, "loop", found.loops)
    return image


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


def _pillow_header(fmt: str) -> Callable[[bytes, Selection], ForeignHeader]:
    def header(data: bytes, _selection: Selection) -> ForeignHeader:
        opened = _pillow_open(data, fmt)
        alpha = opened.mode in ("RGBA", "LA", "PA") or "transparency" in opened.info
        return ForeignHeader(fmt, opened.width, opened.height, alpha)

    return header


def _pillow_decode(fmt: str) -> Callable[[bytes, Selection, float], pyvips.Image]:
    def decode(data: bytes, _selection: Selection, _scale: float) -> pyvips.Image:
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


# --- PDF (pypdfium2; only with ENABLE_PDF) ---------------------------------------

# PDFium is not thread-safe: one call at a time in the process.
_PDFIUM = threading.Lock()


def _pdf_page(data: bytes, selection: Selection):  # type: ignore[no-untyped-def]
    import pypdfium2

    try:
        document = pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError:
        raise NotAnImage("source PDF could not be read") from None
    if selection.page >= len(document):
        raise UnsupportedFormat(f"source PDF has {len(document)} pages (page counts from 0)")
    return document, document[selection.page]


def _pdf_header(data: bytes, selection: Selection) -> ForeignHeader:
    with _PDFIUM:
        _document, page = _pdf_page(data, selection)
        width, height = page.get_size()  # points: 1 pixel each at scale 1
    return ForeignHeader("pdf", max(1, round(width)), max(1, round(height)), False)


def _pdf_decode(data: bytes, selection: Selection, scale: float) -> pyvips.Image:
    with _PDFIUM:
        _document, page = _pdf_page(data, selection)
        try:
            bitmap = page.render(scale=scale, rev_byteorder=True, fill_color=(255, 255, 255, 255))
            pixels = bitmap.to_numpy().copy()
        except Exception:
            raise ProcessingFailed("source PDF page could not be rendered") from None
    return _from_array(pixels[:, :, :3])


# --- PSD (psd-tools; only with ENABLE_PSD) --------------------------------------


def _psd_header(data: bytes, _selection: Selection) -> ForeignHeader:
    # The fixed 26-byte header: signature, version, 6 reserved, channels,
    # height, width, depth, colour mode. Read by hand: no layer is parsed.
    if len(data) < 26:
        raise NotAnImage("source image header is invalid")
    version, channels, height, width = struct.unpack(">H6xHII", data[4:22])
    if version not in (1, 2) or not (width > 0 and height > 0):
        raise NotAnImage("source image header is invalid")
    return ForeignHeader("psd", width, height, channels in (2, 4, 5))


def _psd_decode(data: bytes, _selection: Selection, _scale: float) -> pyvips.Image:
    from psd_tools import PSDImage

    try:
        # The composite the file stores ("maximise compatibility"): no layer is drawn.
        flat = PSDImage.open(io.BytesIO(data)).topil()
        if flat is None:
            raise ValueError("no composite")
        wanted = "RGBA" if "A" in flat.mode else "RGB"
        pixels = np.asarray(flat if flat.mode == wanted else flat.convert(wanted))
    except Exception:
        raise ProcessingFailed("source PSD has no readable composite image") from None
    return _from_array(pixels)


# --- video (PyAV; only with ENABLE_VIDEO_THUMBNAILS) ----------------------------

_VIDEO_BRANDS = {
    b"isom", b"iso2", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"qt  ",
    b"M4V ", b"3gp4", b"3gp5", b"3g2a", b"mmp4", b"MSNV", b"dash",
}  # fmt: skip


def _is_video(data: bytes) -> bool:
    if data[4:8] == b"ftyp" and data[8:12] in _VIDEO_BRANDS:
        return True
    return data.startswith(b"\x1aE\xdf\xa3") or (data[:4] == b"RIFF" and data[8:12] == b"AVI ")


def _video_stream(data: bytes):  # type: ignore[no-untyped-def]
    import av

    try:
        container = av.open(io.BytesIO(data), mode="r", metadata_errors="ignore")
        stream = container.streams.video[0]
        if stream.codec_context is None:
            raise IndexError("no decoder for the stream")
    except (av.FFmpegError, IndexError):
        raise NotAnImage("source video could not be read") from None
    return container, stream


_CONTAINER_BOXES = {b"moov", b"trak"}


def _mp4_track_size(data: bytes) -> tuple[int, int, bool] | None:
    """The largest track size an MP4/MOV declares in its `tkhd` boxes, read by
    hand, and whether its display matrix turns it a quarter (a phone held
    upright records landscape frames and a matrix saying so).

    FFmpeg's probe decodes a frame to learn the size (an 8K frame: 80 MB and
    60 ms); the declared size lets a video over the limit be refused first.
    """
    largest: tuple[int, int, bool] | None = None
    stack = [(0, len(data))]
    while stack:
        at, end = stack.pop()
        while at + 8 <= end:
            size, kind = struct.unpack(">I4s", data[at : at + 8])
            header = 8
            if size == 1 and at + 16 <= end:
                (size,) = struct.unpack(">Q", data[at + 8 : at + 16])
                header = 16
            size = end - at if size == 0 else size
            if size < header:
                return largest
            if kind in _CONTAINER_BOXES:
                stack.append((at + header, min(at + size, end)))
            elif kind == b"tkhd" and at + size <= end and size >= 92:
                width, height = struct.unpack(">II", data[at + size - 8 : at + size])
                # The matrix (a, b, u, c, d, v, x, y, w) sits before the size:
                # a = d = 0 is a quarter turn.
                a, _b, _u, _c, d = struct.unpack(">5i", data[at + size - 44 : at + size - 24])
                found = (width >> 16, height >> 16, a == 0 and d == 0)  # 16.16 fixed point
                if largest is None or found[0] * found[1] > largest[0] * largest[1]:
                    largest = found
            at += size
    return largest


def _video_header(data: bytes, selection: Selection) -> ForeignHeader:
    declared = _mp4_track_size(data) if data[4:8] == b"ftyp" else None
    if declared is not None and declared[0] * declared[1] > selection.max_pixels > 0:
        # Over the limit as declared: refused by the caller without a probe.
        return ForeignHeader("video", declared[0], declared[1], False)
    container, stream = _video_stream(data)
    with container:
        width, height = stream.codec_context.width, stream.codec_context.height
    if not (width and height):
        raise NotAnImage("source video has no picture size")
    if declared is not None and declared[2]:
        width, height = height, width  # the decoder turns the frame upright
    return ForeignHeader("video", width, height, False)


def _video_decode(data: bytes, selection: Selection, _scale: float) -> pyvips.Image:
    import av

    container, stream = _video_stream(data)
    chosen = None
    with container:
        try:
            if selection.second > 0 and stream.time_base:
                target = int(selection.second / stream.time_base)
                container.seek(target, stream=stream, backward=True, any_frame=False)
            for frame in container.decode(stream):
                chosen = frame  # the last one decoded when the video is shorter
                if frame.time is not None and frame.time >= selection.second:
                    break
        except av.FFmpegError:
            pass  # what was decoded before the damage is still a frame
        if chosen is None:
            raise ProcessingFailed("source video has no decodable frame")
        image = _from_array(chosen.to_ndarray(format="rgb24"))
        # The display matrix's turn, counterclockwise in degrees (PyAV), undone
        # as FFmpeg's own player and command line do.
        turn = {90: "d270", 180: "d180", 270: "d90"}.get(round(chosen.rotation) % 360)
        return image.rot(turn) if turn else image


# --- camera RAW (rawpy, LibRaw; only with ENABLE_RAW) ----------------------------

_TIFF_MAGICS = (b"II*\x00", b"MM\x00*")
_DNG_VERSION = 0xC612
_MAKE = 0x010F
_CAMERA_MAKERS = (b"NIKON", b"SONY", b"PENTAX", b"RICOH", b"SAMSUNG", b"LEICA", b"Hasselblad")


def _tiff_ifd0_tags(data: bytes) -> dict[int, bytes]:
    """IFD0 of a TIFF: tag -> its raw value field (or the bytes it points at, for Make)."""
    order = "<" if data[:2] == b"II" else ">"
    try:
        (offset,) = struct.unpack(order + "I", data[4:8])
        (count,) = struct.unpack(order + "H", data[offset : offset + 2])
        tags = {}
        for i in range(min(count, 512)):
            entry = data[offset + 2 + 12 * i : offset + 14 + 12 * i]
            tag, _kind, length, value = struct.unpack(order + "HHI4s", entry)
            if tag == _MAKE and length > 4:
                (pointer,) = struct.unpack(order + "I", value)
                value = data[pointer : pointer + min(length, 32)]
            tags[tag] = value
        return tags
    except struct.error:
        return {}


def _is_raw(data: bytes) -> bool:
    """DNG, Canon CR2, Olympus ORF, Panasonic RW2, Fuji RAF, and the TIFF-shaped
    raws whose IFD0 names a camera maker (NEF, ARW, PEF, ...). A TIFF that is a
    plain picture stays libvips'."""
    if data.startswith((b"IIRO", b"IIRS", b"IIU\x00", b"FUJIFILMCCD-RAW")):
        return True
    if not data.startswith(_TIFF_MAGICS) or len(data) < 16:
        return False
    if data[8:11] == b"CR\x02":
        return True
    tags = _tiff_ifd0_tags(data)
    return _DNG_VERSION in tags or tags.get(_MAKE, b"").startswith(_CAMERA_MAKERS)


def _raw_open(data: bytes):  # type: ignore[no-untyped-def]
    import rawpy

    try:
        return rawpy.imread(io.BytesIO(data))
    except (rawpy.LibRawError, ValueError):
        raise NotAnImage("source RAW could not be read") from None


def _raw_header(data: bytes, _selection: Selection) -> ForeignHeader:
    with _raw_open(data) as raw:
        sizes = raw.sizes
        turned = sizes.flip in (5, 6)  # LibRaw's flip: the developed image is turned
        width, height = (sizes.height, sizes.width) if turned else (sizes.width, sizes.height)
    return ForeignHeader("raw", width, height, False)


def _raw_decode(data: bytes, _selection: Selection, _scale: float) -> pyvips.Image:
    import rawpy

    with _raw_open(data) as raw:
        try:
            # The camera's white balance, 8 bits, sRGB: what a camera's own JPEG shows.
            pixels = raw.postprocess(use_camera_wb=True, output_bps=8)
        except (rawpy.LibRawError, ValueError):
            raise ProcessingFailed("source RAW could not be developed") from None
    return _from_array(pixels)


# Sniffed in this order before libvips is asked (HEIC is recognised by libvips' HEIF
# loader, which reads its container, and is routed here by its compression).
DECODERS: tuple[ForeignDecoder, ...] = (
    ForeignDecoder("jxl", "jxlload_foreign", _is_jxl, _jxl_header, _jxl_decode),
    ForeignDecoder(
        "pdf",
        "pdfload_foreign",
        lambda data: data.startswith(b"%PDF-"),
        _pdf_header,
        _pdf_decode,
        switch="ENABLE_PDF",
        scalable=True,
    ),
    ForeignDecoder(
        "psd",
        "psdload_foreign",
        lambda data: data.startswith(b"8BPS"),
        _psd_header,
        _psd_decode,
        copies=4,
        switch="ENABLE_PSD",
    ),
    # LibRaw holds the raw data and a 4x16-bit working image beside the output.
    ForeignDecoder(
        "raw", "rawload_foreign", _is_raw, _raw_header, _raw_decode, copies=5, switch="ENABLE_RAW"
    ),
    ForeignDecoder(
        "video",
        "videoload_foreign",
        _is_video,
        _video_header,
        _video_decode,
        switch="ENABLE_VIDEO_THUMBNAILS",
    ),
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
