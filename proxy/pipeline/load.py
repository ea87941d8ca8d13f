"""Detect the source format, check its header, and decode with shrink-on-load."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import pyvips
from pyvips import ffi, vips_lib

from proxy.errors import (
    ImageTooLarge,
    NotAnImage,
    ProcessingFailed,
    ProxyError,
    UnsupportedFormat,
)
from proxy.pipeline import foreign

# The most pixels one picture is built at: a result's largest canvas
# (process._check_result_size), and a scalable source drawn at the scale its
# result needs (check_drawn_size). Beyond this, enlarge, extend, dpr or a crop
# turn a tiny URL into gigabytes of pixels.
MAX_BUILT_PIXELS = 50_000_000

# Only these loaders are reachable from a URL. libvips has others (some read
# files named inside the image, some parse exotic formats): a whitelist keeps
# them out whatever libvips build is installed.
LOADERS: dict[str, str] = {
    "VipsForeignLoadJpegBuffer": "jpegload_buffer",
    "VipsForeignLoadPngBuffer": "pngload_buffer",
    "VipsForeignLoadWebpBuffer": "webpload_buffer",
    "VipsForeignLoadHeifBuffer": "heifload_buffer",
    "VipsForeignLoadNsgifBuffer": "gifload_buffer",
    "VipsForeignLoadTiffBuffer": "tiffload_buffer",
    "VipsForeignLoadSvgBuffer": "svgload_buffer",
}

_FORMAT_OF_LOADER = {
    "jpegload_buffer": "jpeg",
    "pngload_buffer": "png",
    "webpload_buffer": "webp",
    "gifload_buffer": "gif",
    "tiffload_buffer": "tiff",
    "svgload_buffer": "svg",
}

_ANIMATED_LOADERS = {"gifload_buffer", "webpload_buffer"}

# Untrusted input: a truncated or corrupt file is an error, not a grey image.
FAIL_ON = "error"

# What a failed libvips call raises: pyvips.Error, or UnicodeDecodeError when the
# message libvips wrote quotes bytes of the file that are not UTF-8 (pyvips
# decodes it while building the error; found by bench/fuzz_formats.py).
VIPS_ERRORS = (pyvips.Error, UnicodeDecodeError)


def forget_vips_error() -> None:
    """Empty libvips' error buffer. pyvips empties it after reading it, but not
    when reading it failed: the undecodable message then stayed and broke every
    later libvips error of the process (seen in the tests after a fuzz finding)."""
    vips_lib.vips_error_clear()


@dataclass(frozen=True, slots=True)
class SourceHeader:
    loader: str  # libvips operation name, e.g. "jpegload_buffer"
    format: str  # jpeg, png, webp, avif, heic, gif, tiff, svg
    width: int  # as stored, before EXIF orientation
    height: int  # of one frame
    orientation: int  # EXIF orientation 1..8
    frames: int = 1
    has_alpha: bool = False
    progressive: bool = False  # a progressive JPEG: decoding holds all its coefficients
    # Bits per index of a palette source (GIF, palette PNG), else 0: a GIF
    # result keeps that many (see encode.encode).
    palette_bits: int = 0
    # For sources that hold several pictures (a PDF's pages, a video's frames).
    selection: foreign.Selection = foreign.FIRST

    @property
    def vector(self) -> bool:
        return self.format == "svg"

    @property
    def scalable(self) -> bool:
        """Drawn at any size (SVG, PDF): rendered at the result's, may grow without enlarge."""
        decoder = foreign.BY_LOADER.get(self.loader)
        return self.vector or (decoder is not None and decoder.scalable)


def find_loader(data: bytes) -> str:
    if not data:
        raise NotAnImage("source is empty")
    found = vips_lib.vips_foreign_find_load_buffer(data, len(data))
    if found == ffi.NULL:
        raise NotAnImage()
    loader = LOADERS.get(ffi.string(found).decode())
    if loader is None:
        raise UnsupportedFormat()
    return loader


def read_header(
    data: bytes,
    max_pixels: int,
    selection: foreign.Selection = foreign.FIRST,
    enabled: frozenset[str] = frozenset(),
) -> SourceHeader:
    """Header only: no pixel is decoded, so a bomb costs nothing to refuse.

    The formats libvips cannot decode here are sniffed first and read by their
    own decoders (proxy.pipeline.foreign); HEIC is recognised by libvips'
    HEIF loader, which reads its container, and handed over by compression.
    """
    if not data:
        raise NotAnImage("source is empty")
    decoder = foreign.sniff(data)
    if decoder is not None:
        if decoder.switch and decoder.format not in enabled:
            raise UnsupportedFormat(
                f"{decoder.format} sources are off (PIXELPIPE_{decoder.switch})"
            )
        return _foreign_header(decoder, data, max_pixels, selection)
    loader = find_loader(data)
    try:
        image = pyvips.Operation.call(loader, data, fail_on=FAIL_ON)
        # Field names come from the file too (HEIF metadata): pyvips fails to
        # decode ones that are not UTF-8 (bench/fuzz_formats.py found it).
        fields = image.get_fields()
        fmt = _FORMAT_OF_LOADER.get(loader) or _heif_format(image)
    except VIPS_ERRORS:
        forget_vips_error()
        raise NotAnImage("source image header is invalid") from None
    if fmt == "heic":
        return _foreign_header(foreign.HEIC, data, max_pixels, selection)
    frames = int(image.get("n-pages")) if loader in _ANIMATED_LOADERS and "n-pages" in fields else 1
    # Every frame is decoded, so an animation counts all of them (as imgproxy).
    if fmt != "svg" and max_pixels and image.width * image.height * frames > max_pixels:
        raise ImageTooLarge()
    orientation = int(image.get("orientation")) if "orientation" in fields else 1
    palette = "palette" in fields and "bits-per-sample" in fields
    return SourceHeader(
        loader,
        fmt,
        image.width,
        image.height,
        orientation,
        max(1, frames),
        image.hasalpha(),
        progressive="interlaced" in fields and bool(image.get("interlaced")),
        palette_bits=min(8, max(1, int(image.get("bits-per-sample")))) if palette else 0,
    )


def _foreign_header(
    decoder: foreign.ForeignDecoder, data: bytes, max_pixels: int, selection: foreign.Selection
) -> SourceHeader:
    try:
        found = decoder.header(data, replace(selection, max_pixels=max_pixels))
    except ProxyError:
        raise
    except Exception:
        # Libraries outside libvips raise what they like on hostile bytes (the
        # fuzzer, bench/fuzz_formats.py, met EOFError, UnicodeDecodeError,
        # AttributeError, ...): every one of them is a header that cannot be read.
        raise NotAnImage("source image header is invalid") from None
    # Every frame is decoded, so an animation counts all of them (as above).
    if max_pixels and found.width * found.height * found.frames > max_pixels:
        raise ImageTooLarge()
    # Their decoders apply the format's own orientation: the pixels come upright.
    return SourceHeader(
        decoder.loader,
        found.format,
        found.width,
        found.height,
        1,
        found.frames,
        found.has_alpha,
        selection=selection,
    )


def _heif_format(image: pyvips.Image) -> str:
    fields = image.get_fields()
    compression = image.get("heif-compression") if "heif-compression" in fields else "hevc"
    return "avif" if compression == "av1" else "heic"


def jpeg_shrink_factor(shrink: float) -> int:
    """The DCT scaling libjpeg can do on load for a wanted shrink: 8, 4, 2 or 1."""
    return next((f for f in (8, 4, 2) if shrink >= f), 1)


def check_drawn_size(header: SourceHeader, scale: float) -> None:
    """A PDF page is drawn whole at the scale its result needs (PDFium draws
    the page, not the part a crop keeps): a few points cut from it and
    enlarged to a full result would draw all of it at that scale (a 300x200 pt
    page cut to 10x10 and filled to 1000x1000: 100x, 600 MP, 3.6 GB of memory).
    Such a page is refused as a result that large would be. SVG is drawn by
    libvips region by region, only where the result looks, so it is not."""
    drawn = math.ceil(header.width * scale) * math.ceil(header.height * scale)
    if drawn > MAX_BUILT_PIXELS:
        raise ImageTooLarge("source page would be drawn too large")


def load_image(
    data: bytes,
    header: SourceHeader,
    shrink: float,
    *,
    all_frames: bool = False,
    thumbnail: bool = False,
) -> pyvips.Image:
    """Decode, letting the format's decoder do a cheap first downscale when it can.

    `shrink` is the factor the pipeline reduces by anyway; JPEG can decode at
    1/2, 1/4 and 1/8 size and WebP and SVG at any scale, far faster (or, for
    SVG, sharper) than decoding at full size and resizing afterwards.
    """
    decoder = foreign.BY_LOADER.get(header.loader)
    if decoder is not None:
        # At full size, but for scalable ones (PDF), drawn at the size needed.
        scale = 1.0 / shrink if decoder.scalable else 1.0
        check_drawn_size(header, scale)
        selection = replace(header.selection, every_frame=all_frames and header.frames > 1)
        try:
            return decoder.decode(data, selection, scale)
        except ProxyError:
            raise
        except Exception:
            raise ProcessingFailed("source image could not be decoded") from None  # as above
    options: dict[str, object] = {}
    if header.loader != "svgload_buffer":
        options["fail_on"] = FAIL_ON
    if header.loader == "jpegload_buffer":
        factor = jpeg_shrink_factor(shrink)
        if factor > 1:
            options["shrink"] = factor
    elif header.loader == "webpload_buffer" and shrink > 1:
        options["scale"] = 1.0 / shrink
    elif header.loader == "svgload_buffer":
        options["scale"] = 1.0 / shrink
        options["unlimited"] = False  # librsvg's own size limits stay on
    elif header.loader == "heifload_buffer" and thumbnail:
        options["thumbnail"] = True
    if all_frames and header.loader in _ANIMATED_LOADERS:
        options["n"] = header.frames
    try:
        return pyvips.Operation.call(header.loader, data, **options)
    except VIPS_ERRORS:
        forget_vips_error()
        raise ProcessingFailed("source image could not be decoded") from None


def decode_result(data: bytes, all_frames: bool = False) -> pyvips.Image:
    """An encoded result read back through the sources' door (JPEG XL and HEIC
    are not libvips'): for quality:auto's probes and /info's measurements."""
    return load_image(data, read_header(data, 0), 1.0, all_frames=all_frames)
