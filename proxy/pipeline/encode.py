"""Encode the processed image: format, quality, and what metadata survives."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
import pyvips

from proxy import tracing
from proxy.options.model import ProcessingOptions
from proxy.pipeline.auto_quality import (
    AUTO_QUALITY_SLOPES,
    AUTO_QUALITY_STARTS,
    AutoQualityMemory,
    Probe,
    SlopeRule,
    choose_quality,
    probe_bytes_ratio,
    quality_sample,
)
from proxy.pipeline.bitmaps import bmp_bytes, ico_bytes
from proxy.pipeline.foreign_save import JXL_EFFORT, heic_bytes, jxl_bytes
from proxy.pipeline.interrupt import check as check_not_stopped
from proxy.pipeline.load import VIPS_ERRORS, decode_result, forget_vips_error

if TYPE_CHECKING:
    from proxy.settings import Settings

COPYRIGHT_FIELDS = ("exif-ifd0-Copyright",)
# Blobs that would otherwise ride along; the EXIF thumbnail alone can be ~10 KB.
_METADATA_BLOBS = ("exif-data", "xmp-data", "iptc-data", "jpeg-thumbnail-data")


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
QUALITY_FORMATS = frozenset({"jpeg", "webp", "avif", "jxl", "heic"})

# JPEG results smaller than this (about 500x500) are encoded plainly: see encode().
SMALL_JPEG_PIXELS = 250_000
LOSSLESS_SOURCES = frozenset({"png", "gif", "svg"})


@dataclass(frozen=True, slots=True)
class EncoderSettings:
    """How results are written; read once from the settings."""

    jpeg_progressive: bool = True
    png_quantize: bool = False
    png_quantization_colors: int = 256
    avif_speed: int = 6
    jxl_effort: int = JXL_EFFORT
    webp_lossless_sources: bool = True
    auto_quality_slopes: Mapping[str, float] = field(
        default_factory=lambda: dict(AUTO_QUALITY_SLOPES)
    )
    auto_quality_ssim: float = 0.9  # the rule's safety floor
    auto_quality_min: int = 30
    auto_quality_max: int = 90
    max_bytes_min_quality: int = 10

    @classmethod
    def from_settings(cls, settings: Settings) -> EncoderSettings:
        return cls(
            jpeg_progressive=settings.jpeg_progressive,
            png_quantize=settings.png_quantize,
            png_quantization_colors=settings.png_quantization_colors,
            avif_speed=settings.avif_speed,
            jxl_effort=settings.jxl_effort,
            webp_lossless_sources=settings.webp_lossless_sources,
            auto_quality_slopes={**AUTO_QUALITY_SLOPES, **settings.auto_quality_slopes},
            auto_quality_ssim=settings.auto_quality_ssim,
            auto_quality_min=settings.auto_quality_min,
            auto_quality_max=settings.auto_quality_max,
            max_bytes_min_quality=settings.max_bytes_min_quality,
        )

    def auto_quality_rule(self, fmt: str) -> SlopeRule:
        return SlopeRule(
            slope=self.auto_quality_slopes[fmt],
            start=AUTO_QUALITY_STARTS[fmt],
            minimum=self.auto_quality_min,
            maximum=self.auto_quality_max,
            floor=self.auto_quality_ssim,
        )


# max_bytes: a first encode this many times over budget tries the floor quality
# first. On the corpus the floor (10) makes 1/3 (WebP) to 1/10 (AVIF) of q80's
# bytes, so below 4x some quality usually fits and plain bisection is cheaper.
FLOOR_PROBE_RATIO = 4


@dataclass(frozen=True, slots=True)
class EncodeRequest:
    """What one result asks of the encoder."""

    format: str
    quality: int
    keep: str  # libvips `keep` flags from prepare_metadata
    max_bytes: int = 0
    auto_quality: bool = False
    lossless_source: bool = False
    animated: bool = False
    palette_bits: int = 0  # a palette source's bits per index (SourceHeader)
    # What identifies the picture apart from its size (source digest, format,
    # every other option): quality:auto's analysis is remembered under it.
    analysis_key: str = ""


@dataclass(frozen=True, slots=True)
class Encoded:
    data: bytes
    quality: int
    encodes: int  # how many times the image was encoded to get here
    scale: float = 1.0  # below 1: downscaled to meet max_bytes
    lossless: bool = False
    width: int = 0
    height: int = 0


def encode_result(
    image: pyvips.Image,
    request: EncodeRequest,
    settings: EncoderSettings,
    memory: AutoQualityMemory | None = None,
) -> Encoded:
    """Encode the processed image as the request asks, in as few encodes as it can.

    quality:auto picks the quality first (a rate-distortion search), WebP from a
    lossless source tries lossless too, and a byte budget then lowers the
    quality by bisection and, if even the floor does not fit, the size.
    """
    counter = _Counter(request, settings)
    tries_lossless = (
        request.format == "webp"
        and request.lossless_source
        and settings.webp_lossless_sources
        and not request.animated
    )
    if (tries_lossless or request.max_bytes) and not request.animated:
        # The processed image is lazy: each encode would compute it again, from
        # the decode on. Where several encodes may read it (WebP's lossless
        # attempt, a byte budget's bisection) it is computed once and held:
        # the result's pixels, counted in the footprint's working set. An
        # animation's frames are held already (process._through_steps).
        image = image.copy_memory()
    # quality:auto where a slope was calibrated (COMPRESSION.md); elsewhere the
    # format's default quality, which the answer's X-Pixelpipe-Quality reports.
    if request.auto_quality and request.format in AUTO_QUALITY_SLOPES and not request.animated:
        quality, data = choose_auto_quality(image, request, settings, counter, memory)
    else:
        quality, data = request.quality, counter.encode(image, request.quality)
    lossless = False
    if tries_lossless and lossless_estimate(image, counter) <= LOSSLESS_HOPELESS * len(data):
        candidate = counter.encode(image, quality, lossless=True)
        if len(candidate) < len(data):
            data, lossless = candidate, True
    result = replace(_sized(image, data, quality, 1.0), lossless=lossless)
    if request.max_bytes and len(data) > request.max_bytes:
        result = fit_budget(image, request, settings, counter, quality, len(data))
    return replace(result, encodes=counter.count)


# WebP from a lossless source (PNG, GIF, SVG) also tries a lossless encode and
# keeps the smaller. On photographs lossless never won (4.7-35x the lossy
# bytes) and cost 4.6-18x the lossy encode, so it is estimated first: a
# lossless encode at effort 0 of quality:auto's sample, its bytes scaled by
# the pixels, which came out 1.1-1.6x the real bytes on photographs. Past
# LOSSLESS_HOPELESS times the lossy bytes the lossless encode is skipped:
# the photographs were estimated at 6.2-46x, drawn graphics (where lossless
# won, tied, or lost on a gradient) at 0.06-3.1x. Answers are the
# same bytes; a 1200 px WebP from a PNG photograph costs 97 ms, not 740
# (bench/webp_lossless.py, COMPRESSION.md).
LOSSLESS_HOPELESS = 4.0


def lossless_estimate(image: pyvips.Image, counter: _Counter) -> float:
    """Bytes a lossless WebP of `image` would take, from a fast encode of a sample."""
    sample = quality_sample(image)
    data = counter.probe(sample, 0, image.width * image.height, lossless=True)
    return len(data) * (image.width * image.height) / (sample.width * sample.height)


class _Counter:
    """encode() that counts, so every path reports its encodes per request."""

    def __init__(self, request: EncodeRequest, settings: EncoderSettings):
        self.request = request
        self.settings = settings
        self.count = 0
        self.last = b""  # the most recent encode

    def probe(
        self, sample: pyvips.Image, quality: int, pixels: int, lossless: bool = False
    ) -> bytes:
        """A probe of a sample (quality:auto's; WebP's lossless estimate), encoded
        as an image of `pixels` would be, at the format's fastest setting."""
        check_not_stopped()
        self.count += 1
        return encode(
            sample,
            self.request.format,
            quality,
            "none",
            self.settings,
            lossless=lossless,
            as_pixels=pixels,
            probe=True,
        )

    def encode(self, image: pyvips.Image, quality: int, lossless: bool = False) -> bytes:
        # A stop reaches libvips' pixels, not an encoder's own work (libaom,
        # x265 and libjxl run seconds on a large picture without a callback):
        # a run with several encodes (quality:auto, max_bytes) ends between them.
        check_not_stopped()
        self.count += 1
        self.last = encode(
            image,
            self.request.format,
            quality,
            self.request.keep,
            self.settings,
            lossless,
            palette_bits=self.request.palette_bits,
        )
        return self.last


def choose_auto_quality(
    image: pyvips.Image,
    request: EncodeRequest,
    settings: EncoderSettings,
    counter: _Counter,
    memory: AutoQualityMemory | None = None,
) -> tuple[int, bytes]:
    """The quality where SSIM per extra byte falls to the format's slope (auto_quality.py).

    The search runs on a sample of the image (whole rows, evenly spaced: see
    quality_sample), each probe a real encode with the whole image's encoder
    settings, decoded and measured with SSIM on luma; then the image is
    encoded once at the chosen quality. The same picture at another size (a
    srcset's widths) takes the remembered quality without a search.
    """
    from proxy.pipeline.metrics import SsimReference, comparable  # only auto quality needs it

    key = request.analysis_key
    remembered = memory.get(key) if memory is not None and key else None
    if remembered is not None:
        return remembered, counter.encode(image, remembered)
    # The processed image is lazy: computed once here, not once for the sample
    # and again for the answer (the result's pixels: a few MB at most).
    image = image.copy_memory()
    pixels = image.width * image.height
    sample = quality_sample(image)
    reference = SsimReference(comparable(sample).copy_memory())
    encoded: dict[int, bytes] = {}
    # A sample's probes (AVIF at speed 9) are scaled to the configured speed; an
    # image too small to sample is searched with real encodes, bytes as they are.
    ratio = 1.0 if sample is image else probe_bytes_ratio(request.format, settings.avif_speed)

    def measure(quality: int) -> Probe:
        if sample is image:
            data = encoded[quality] = counter.encode(image, quality)
        else:
            data = counter.probe(sample, quality, pixels)
        rgb = _probe_pixels(data, request.format) if reference.in_numpy else None
        if rgb is not None:
            score = reference.ssim_of_rgb(rgb)
        else:
            score = reference.ssim(comparable(_decode_probe(data, request.format)))
        size = round(len(data) / ratio)
        probe = Probe(quality, size, score)
        tracing.event("quality:auto probe", quality=quality, bytes=size, ssim=probe.ssim)
        return probe

    rule = settings.auto_quality_rule(request.format)
    chosen = choose_quality(measure, rule, sample.width * sample.height)
    if memory is not None and key:
        memory.put(key, chosen.quality)
    if sample is image:
        return chosen.quality, encoded[chosen.quality]
    return chosen.quality, counter.encode(image, chosen.quality)


# Probes _probe_pixels leaves to libvips (AVIF; JPEG and WebP with alpha or
# too large for numpy's SSIM) are our own encoder's output: read by their
# loader directly rather than through the sources' header sniffing (a JPEG
# probe's read-back: 1.6 ms instead of 2.0 at 300x48, 1.9 instead of 2.5 at
# 1200x48). JPEG XL and HEIC are read by other decoders and keep decode_result.
_PROBE_LOADERS = {"jpeg": "jpegload_buffer", "webp": "webpload_buffer", "avif": "heifload_buffer"}


def _probe_pixels(data: bytes, fmt: str) -> np.ndarray | None:
    """A JPEG or WebP probe's RGB pixels, read by OpenCV's decoder: the same
    libjpeg-turbo and libwebp arithmetic as libvips' (the same pixels on every
    corpus sample at 300 and 1200 px, qualities 30-90), without libvips'
    per-image setup (300x48: 0.07 ms against 1.45 for a JPEG, 0.14 against
    2.16 for a WebP). None where comparable() has more to do (alpha to
    flatten) or the format is another's: the caller reads it with libvips."""
    if fmt not in ("jpeg", "webp"):
        return None
    import cv2  # a dependency already (faces)

    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.dtype != np.uint8:
        return None
    if pixels.ndim == 2:  # grey: comparable() repeats the band
        return cv2.cvtColor(pixels, cv2.COLOR_GRAY2RGB)
    if pixels.shape[2] != 3:
        return None
    # OpenCV's BGR, swapped into a contiguous array: the luma's matrix product
    # took 0.58 ms on a reversed view of 1200x48 against 0.08 for this.
    return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)


def _decode_probe(data: bytes, fmt: str) -> pyvips.Image:
    loader = _PROBE_LOADERS.get(fmt)
    if loader is not None:
        try:
            return pyvips.Operation.call(loader, data)
        except VIPS_ERRORS:
            forget_vips_error()  # decode_result says what failed, as a ProcessingFailed
    return decode_result(data)


def fit_budget(
    image: pyvips.Image,
    request: EncodeRequest,
    settings: EncoderSettings,
    counter: _Counter,
    quality: int,
    first_size: int,
) -> Encoded:
    """The highest quality that fits max_bytes; failing that, the largest size that does.

    Quality: bisection over [floor, quality), about log2(quality - floor)
    encodes rather than a step-by-step walk. When the first encode is far over
    budget (FLOOR_PROBE_RATIO times or more), the floor is tried first: if even
    it does not fit, bisecting above it would only prove that again, so the
    image is downscaled at once (about half the encodes of bisecting first).
    Size: each round scales by sqrt(budget / bytes) with a 5% margin (bytes
    grow roughly with pixel count), then the quality is bisected again at the
    new size. Animations are not resized (their frames are stacked in one
    image); they get the floor.
    """
    floor = min(settings.max_bytes_min_quality, quality)
    budget = request.max_bytes
    tunable = request.format in QUALITY_FORMATS
    level = floor if tunable else quality
    if tunable and first_size < FLOOR_PROBE_RATIO * budget:
        # Probably fits at some quality: bisect; its last miss, if all miss, is the floor.
        better = _bisect_quality(image, counter, floor, quality - 1, budget)
        if better is not None:
            return better
        smallest = _sized(image, counter.last, floor, 1.0)
    else:
        smallest = _sized(image, counter.encode(image, level), level, 1.0)
        if len(smallest.data) <= budget:
            if not tunable or floor >= quality - 1:
                return smallest
            better = _bisect_quality(image, counter, floor + 1, quality - 1, budget)
            return better if better is not None else smallest
    if request.animated:
        return smallest
    scale = 1.0
    for _round in range(8):
        scale *= math.sqrt(budget / len(smallest.data)) * 0.95
        smaller = image.resize(scale, kernel="lanczos3")
        if smaller.width < 1 or smaller.height < 1:
            break
        smallest = _sized(smaller, counter.encode(smaller, level), level, scale)
        if len(smallest.data) <= budget:
            if not tunable:
                return smallest
            better = _bisect_quality(smaller, counter, floor + 1, quality, budget)
            return replace(better, scale=scale) if better is not None else smallest
    return smallest


def _sized(image: pyvips.Image, data: bytes, quality: int, scale: float) -> Encoded:
    """An encode of `image` as made (its size is the result's size)."""
    return Encoded(data, quality, 0, scale, False, image.width, image.height)


def _bisect_quality(
    image: pyvips.Image, counter: _Counter, low: int, high: int, budget: int
) -> Encoded | None:
    """The highest quality in [low, high] whose encode is within budget, or None."""
    best: Encoded | None = None
    while low <= high:
        middle = (low + high) // 2
        attempt = _sized(image, counter.encode(image, middle), middle, 1.0)
        if len(attempt.data) <= budget:
            best = attempt
            low = middle + 1
        else:
            high = middle - 1
    return best


def encode(
    image: pyvips.Image,
    fmt: str,
    quality: int,
    keep: str,
    settings: EncoderSettings | None = None,
    lossless: bool = False,
    as_pixels: int = 0,
    probe: bool = False,
    palette_bits: int = 0,
) -> bytes:
    """One encode, with each format's settings chosen on purpose.

    `as_pixels`: encode with the settings an image of that many pixels gets
    (quality:auto's probes of a sample must be encoded as the whole would be).
    `probe`: a quality:auto probe, where a format has a faster setting whose
    bytes follow the real one's (AVIF; see probe_bytes_ratio).

    JPEG, chosen per output size from bench/jpeg_encoders.py (BENCHMARKS.md):
    from SMALL_JPEG_PIXELS up, mozjpeg's trellis quantisation and progressive
    scans (4-7% fewer bytes at equal SSIM for 4-6x the encode time: paid once
    per miss, saved on every delivery); below it, a plain baseline encode
    (trellis bought under 2% at equal SSIM there, for a tenth of the whole
    request's CPU). Optimised Huffman tables always; chroma subsampling 4:2:0
    below quality 90 and 4:4:4 from 90 up (libvips' "auto"): at high quality
    the colour detail is what was asked for.
    PNG: zlib level 6 (level 9 costs ~60% more time for ~3%), palette
    quantisation only when the setting asks (lossy, and slow on photos).
    WebP: lossy at the quality, or lossless when asked (see encode_result).
    AVIF: libaom at effort 9 - AVIF_SPEED (imgproxy's speed scale). The
    default, speed 6, writes 7% fewer bytes than speed 7 at equal SSIM for 1.4x
    its encode time; speed 5 saves 5% more for 6x (bench/avif_speed.py).
    GIF: libimagequant's palette per frame, of as many bits as a palette
    source had (`palette_bits`; 8 otherwise), as imgproxy does: a 16-colour GIF
    made smaller keeps 16 colours instead of gaining up to 256 from the
    resampling (a 60-frame one at 200 px: 2.9x fewer bytes in 0.28x the time,
    bench/animation.py, BENCHMARKS.md "Animations").
    JPEG XL and HEIC: see proxy.pipeline.foreign_save.
    TIFF, BMP, ICO: lossless, no quality (see proxy.pipeline.bitmaps).
    """
    settings = settings or EncoderSettings()
    if fmt == "jpeg":
        large = (as_pixels or image.width * image.height) >= SMALL_JPEG_PIXELS
        return image.jpegsave_buffer(
            Q=quality,
            optimize_coding=True,
            trellis_quant=large,
            interlace=large and settings.jpeg_progressive,
            subsample_mode="auto",
            keep=keep,
        )
    if fmt == "png":
        if settings.png_quantize:
            return image.pngsave_buffer(
                compression=6,
                palette=True,
                Q=quality,
                # libvips counts palette size as a bit depth: 256 colours -> 8.
                bitdepth=max(1, math.ceil(math.log2(settings.png_quantization_colors))),
                keep=keep,
            )
        return image.pngsave_buffer(compression=6, keep=keep)
    if fmt == "webp":
        if lossless:
            return image.webpsave_buffer(lossless=True, effort=0 if probe else 4, keep=keep)
        return image.webpsave_buffer(Q=quality, keep=keep)
    if fmt == "avif":
        effort = 0 if probe else 9 - settings.avif_speed
        return image.heifsave_buffer(Q=quality, compression="av1", effort=effort, keep=keep)
    if fmt == "gif":
        return image.gifsave_buffer(keep=keep, bitdepth=palette_bits or 8)
    if fmt == "tiff":
        # Lossless deflate with a predictor: imgproxy writes TIFF uncompressed,
        # several times larger for the same pixels.
        return image.tiffsave_buffer(compression="deflate", predictor="horizontal", keep=keep)
    if fmt == "jxl":
        return jxl_bytes(image, quality, settings.jxl_effort, keep)
    if fmt == "heic":
        return heic_bytes(image, quality, keep)
    if fmt == "bmp":
        return bmp_bytes(image)
    if fmt == "ico":
        return ico_bytes(image, keep)
    raise ValueError(f"no encoder for {fmt}")
