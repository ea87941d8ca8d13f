"""How much memory one job will need at its peak, from the source's header alone.

Admission control reserves this much of the worker's memory budget before a
job starts (see `proxy.admission`). The estimate reads no pixel: the header
gives the stored size, bands and frames; the same geometry plan the pipeline
uses gives the shrink-on-load factor and the result size. It is meant to be
an upper bound for the jobs pixelpipe runs, calibrated against measured peaks
by `bench/job_memory.py` (numbers in BENCHMARKS.md), not an exact count.
"""

from __future__ import annotations

import math

import pyvips

from proxy.options.model import ProcessingOptions
from proxy.pipeline.encode import LOSSLESS_SOURCES
from proxy.pipeline.faces import FEATURE_STRIP_ROWS, detection_shrink
from proxy.pipeline.focus import needs_findings, steers, wants_features
from proxy.pipeline.foreign import BY_LOADER as FOREIGN_LOADERS
from proxy.pipeline.load import SourceHeader, check_drawn_size, jpeg_shrink_factor, read_header
from proxy.pipeline.metrics import METRICS_MAX_PIXELS
from proxy.pipeline.plan import Plan, plan_geometry
from proxy.pipeline.process import (
    ProcessingLimits,
    animates,
    known_header,
    output_format,
    source_header,
    upright_size,
)
from proxy.pipeline.steps import blur_shrink_factor, shrunk_blur_pixels
from proxy.pipeline.thumbor_box import resolve_thumbor_box
from proxy.pipeline.thumbor_filters import FILL_BLUR_RADIUS, blur_bytes, working_bytes
from proxy.pipeline.trim_box import LARGEST_STRIP
from proxy.pipeline.watermark import TEXT_MARK_BYTES

MIB = 1024 * 1024

# Fixed cost of any job: tile caches of the operations in the pipeline, the
# encoder's output buffer.
JOB_BASE_BYTES = 8 * MIB
# Each libvips thread (VIPS_CONCURRENCY of them a job) computes its own strip
# of the pipeline: rows of the loaded picture, in float where a picture with
# alpha is premultiplied for resizing. Peak rise per thread added, 1 to 8
# threads (bench/job_memory.py's child): 0.5-1 MiB for a 14.7 MP JPEG loaded
# at 640 and 1280 px wide, 0.7 for a 1080 px RGB PNG, 1.2-2.4 for a 16-bit one
# of 1350 px, 2.1-4.6 for a 1080 px PNG with alpha and 6-14 for a 16-bit one
# of 1350 px (most for its 600 px result: about 650 rows of it, 800 with the
# test suite running beside it), so a fifth more. Fitted on 2 threads alone,
# the estimates missed that last picture by 20 MiB there and by 100 on 8.
THREAD_ROWS = 1000

# Working memory of each encoder per output pixel, measured on the corpus
# (bench/job_memory.py): libaom keeps several full-size planes and analysis
# buffers; JPEG, PNG and the rest stream rows.
ENCODER_BYTES_PER_PIXEL: dict[str, int] = {
    "avif": 72,
    "heic": 72,
    "jxl": 96,  # libjxl at effort 4: ~90 MB over a 1200x900 result (bench/formats.py)
    "webp": 24,
    "jpeg": 8,
    "png": 12,
    "gif": 28,  # cgif; libimagequant's palette search besides (palette_bytes)
    "tiff": 8,
    "bmp": 8,
    "ico": 8,
    "svg": 0,
}
# libimagequant (GIF, and PNG under PNG_QUANTIZE) keeps a frame of up to
# 64 MiB of float pixels (4,194,304 of 16 bytes) whole, with its colour
# histogram, which grows with the distinct colours (a noisy picture has one a
# pixel) up to a bound; a larger frame it reads row by row. Measured over
# random-noise JPEGs of 0.48-6.4 MP, the encode alone from a picture in memory
# (the worst case; a smooth photograph takes about half): 73 B/px at 0.48 MP,
# 63 at 1.6, 41 at 4.0 (157 MiB), then 15-16 at 4.2 and 6.4 MP. Those were
# measured on glibc; on jemalloc, which `pixelpipe serve` prefers, whole jobs
# under 0.3 MP took 120-130 B/px against 87-102 on glibc, hence the histogram's
# 64 B/px (a 640x400 palette PNG: 29.7 MiB where 48 reserved 27.8).
PALETTE_WHOLE_FRAME_PIXELS = 4_194_304
PALETTE_BYTES_PER_PIXEL = 4  # above ENCODER_BYTES_PER_PIXEL["gif"], below the bound
PALETTE_HISTOGRAM_BYTES_PER_PIXEL = 64
PALETTE_HISTOGRAM_MAX_BYTES = 64 * MIB
# AVIF's and HEIC's encoders allocate their context and lookahead whatever the
# image size, and a result with alpha codes its alpha plane as a second image,
# with an encoder of its own: x265 took 17-19 MiB more with alpha at 100-400
# px (24-26 MiB without), libaom 7-9 (bench/job_memory.py, 2026-12-02).
ENCODER_BASE_BYTES = {"avif": 16 * MIB, "heic": 20 * MIB}
# WebP's lossless attempt (made for PNG/GIF/SVG sources, see encode.py) builds
# hash chains and histograms per pixel on top of the lossy encode, and a
# histogram per block of 8x8 pixels up to libwebp's 2600 (MAX_HUFF_IMAGE_SIZE),
# which dominates a small picture of many colours: 22 MiB over a 400x300 of
# noise, as over a 640x480 (42 B/px from 1 MP up; BENCHMARKS.md, "Palette
# encoders").
WEBP_LOSSLESS_BYTES_PER_PIXEL = 40
WEBP_LOSSLESS_HISTOGRAM_BYTES_PER_PIXEL = 200
WEBP_LOSSLESS_HISTOGRAMS_MAX_BYTES = 24 * MIB


# A watermark turned or shadowed: its copies (the settings' marks are small images).
SHAPED_MARK_BYTES = 8 * MIB

# imgproxy Pro's colour effects and unsharp masking are chains of float
# operations over the held picture (steps.colour_effects). What they hold
# beside it does not grow with the picture: libvips' buffers, per thread and
# per operation. Peak rise over the same job without effects (bench/job_memory.py's
# child, results 150-5000 px wide from a 14.7 MP JPEG and 300 px from a PNG
# with alpha, one to seven effects): 15-21 MiB for one effect and 45-53 for
# six on 2 threads at every size from 300 px; 3-9, 6-33 and 19-96 MiB for
# one, two and seven on 1 to 4 threads (BENCHMARKS.md, "Colour effects").
EFFECT_THREAD_BASE_BYTES = 7 * MIB
EFFECT_THREAD_BYTES = 4 * MIB


# An animation (process._through_steps): the frames whose work is held at
# once (the one being computed, the one the encoder reads), the threads'
# buffers and the decoder's canvases besides, and the encoded output, at most
# about a byte a pixel. Measured with bench/animation.py --memory (25-100
# frames of 400x400 and 800x600, WebP and GIF, results of 100-500 px): peaks
# 19-54 MB above the decoded frames and the held results; with these, each
# peak is 0.31-0.81 of its estimate (0.72-0.80 for the tests' 24 frames).
# On jemalloc (proxy.allocator) those 24 frames through `mc` took 59-74 MiB in
# a quiet child and once 87 in CI, against 86 with a base of 40 MiB: 48 now.
ANIMATION_FRAMES_IN_FLIGHT = 2
ANIMATION_BASE_BYTES = 48 * MIB
ENCODED_BYTES_PER_PIXEL = 1

# OpenCV's cascade over a grey copy of DETECT_PIXELS: its integral images
# and scaled copies (a few MB measured; bench/job_memory.py).
DETECTION_BYTES = 4 * MIB

# thumbor's feature points, looked for at full size when no face is found
# (faces.feature_points): the full-size decode, its grey in libvips and in
# numpy, and one strip's float maps, with room for libvips' buffers. A 10 MP
# JPEG measured 114 MB (tests/test_faces.py holds peaks under this).
FEATURE_BYTES_PER_PIXEL = 6
FEATURE_STRIP_FLOATS = 8
FEATURE_BASE_BYTES = 24 * MIB

# A Gaussian mask spans about 3 sigma each side of its centre.
CONVOLUTION_ROWS_PER_SIGMA = 3
# libvips' sharpen (in LabS, through a lookup table) takes 7-18 MiB more
# than its mask's rows whatever the picture's size, every job, not once a
# process (200x150 to 800x600 JPEGs, sigma 2 and 10, the largest; bench/job_memory.py).
SHARPEN_BASE_BYTES = 16 * MIB

# Bytes per band of the decoded image: 8-bit formats decode to uchar, but a
# 16-bit PNG or TIFF decodes to ushort. The header does not say which for
# every loader, so lossless sources are counted at 2.
_BYTES_PER_BAND = {
    "jpeg": 1,
    "webp": 1,
    "gif": 1,
    "avif": 1,
    "heic": 1,
    "svg": 1,
    "jxl": 1,
    "bmp": 1,
    "ico": 1,
    "pdf": 1,
    "psd": 1,
    "raw": 1,
    "video": 1,
}


def job_footprint(
    data: bytes,
    options: ProcessingOptions,
    limits: ProcessingLimits,
    digest: str = "",
    detect_anyway: bool = False,
    measuring: bool = False,
) -> int:
    """Estimated peak bytes of processing `data` with `options` (raises what
    read_header raises); `detect_anyway` as focus.steers; `measuring`: /info's
    metrics too."""
    header = source_header(data, options, limits, digest)
    return footprint_of(header, len(data), options, limits, detect_anyway, measuring)


# /info measures the result against the image before encoding: both held at
# the result's size, then MSE, SSIM and SSIMULACRA2 over at most
# METRICS_MAX_PIXELS of them. SSIMULACRA2 alone peaks at 78 bytes a measured
# pixel (float32 colour planes, and seven float64 planes for one channel's
# maps); the comparable copies and libvips' SSIM add the rest, and each
# libvips thread a little. On jemalloc, as `pixelpipe serve` runs
# (proxy.allocator), a 4000x2500 JPEG's results of 0.06-2 MP measured took
# 7-165 MiB on one thread and 23-188 on four beyond the image's own estimate
# (tests/test_info_limits.py's child, 2026-12-02). Before SSIMULACRA2 left
# libvips, each thread had held 100-250 MiB of region buffers.
METRICS_THREAD_BYTES = 16 * MIB
METRICS_BYTES_PER_PIXEL = 128


def metrics_bytes(width: int, height: int, bands: int) -> int:
    """What /info's measurement holds beside the job, for a `width` x `height`
    result (an animation's frames stacked)."""
    pixels = width * height
    measured = min(pixels, METRICS_MAX_PIXELS)
    held = 2 * pixels * bands  # the result held, and read back
    threads = METRICS_THREAD_BYTES * pyvips.concurrency_get()
    return threads + measured * METRICS_BYTES_PER_PIXEL + held


# A thumbor watermark() image is decoded whole (sRGB with alpha) and read
# again where it is pasted, with its alpha lowered: a 4000x4000 PNG mark held
# 90 MB in one job (5.6 bytes a pixel), four of them 323 MB (scratch script).
MARK_BYTES_PER_PIXEL = 6


def marks_footprint(marks: tuple[bytes, ...], limits: ProcessingLimits) -> int:
    """thumbor's watermark() and frame() images, which the source's estimate
    does not see (raises what read_header raises: a mark that is no image)."""
    total = 0
    for data in marks:
        header = read_header(data, limits.max_src_pixels)
        total += header.width * header.height * MARK_BYTES_PER_PIXEL
    return total


def known_footprint(
    source_bytes: int,
    options: ProcessingOptions,
    limits: ProcessingLimits,
    digest: str,
    detect_anyway: bool = False,
    measuring: bool = False,
) -> int | None:
    """job_footprint() without reading anything, when the header is remembered (else None)."""
    header = known_header(options, limits, digest)
    if header is None:
        return None
    return footprint_of(header, source_bytes, options, limits, detect_anyway, measuring)


def footprint_of(
    header: SourceHeader,
    source_bytes: int,
    options: ProcessingOptions,
    limits: ProcessingLimits,
    detect_anyway: bool = False,
    measuring: bool = False,
) -> int:
    fmt = output_format(options, header, limits.preferred_formats, limits.max_animation_frames)
    animated = animates(header, fmt, limits.max_animation_frames)
    frames = header.frames if animated else 1
    width, height = upright_size(header, options)
    # thumbor's sizes are only known against the picture (full-fit-in covers
    # its box, a crop is cut first): 4096x100 of a 1600x1000 photo is a
    # 4096x2560 result, not 160x100. Trimmed, _render fits the box to what is
    # left, unknown here: the whole picture stands in for it.
    options = resolve_thumbor_box(options, width, height)
    plan = plan_geometry(width, height, options, header.scalable)
    bands = 4 if header.has_alpha or header.vector else 3
    per_band = _BYTES_PER_BAND.get(header.format, 2)

    # Trimmed, the crop is only known after the trim: _render detects for any
    # smart gravity then, with or without a crop to place (plan None).
    trimming = options.trim is not None and not animated
    detecting = steers(options, None if trimming else plan, limits.face_detection, detect_anyway)
    shrink = detection_shrink(plan.shrink, width, height) if detecting else plan.shrink
    if options.trim is not None:
        # Trimming searches the whole picture before the geometry is known:
        # it is decoded at full size and held in memory (steps.trim).
        shrink = 1.0
    foreign = FOREIGN_LOADERS.get(header.loader)
    if foreign is not None and foreign.scalable:
        check_drawn_size(header, 1.0 / shrink)  # refused before it waits for memory
    load_w, load_h = _loaded_size(header, width, height, shrink)
    decoded = load_w * load_h * bands * per_band * frames
    if foreign is not None:
        # Decoded at full size outside libvips, in several copies (see its `copies`).
        decoded *= foreign.copies
    if header.format == "jpeg" and header.progressive:
        # libjpeg keeps every DCT coefficient of a progressive file (16 bits
        # each, full size whatever the shrink) until the last scan is read.
        decoded += width * height * 3 * 2
    result_width, result_height = plan.result_size
    # What one frame's work holds while it is computed (a still has one frame).
    result_pixels = result_width * result_height
    # The resized image before encoding (float while resampling) and the encoder's own.
    working = result_pixels * bands * 4
    encoders = 2 if bands == 4 else 1  # the alpha plane's own (AVIF, HEIC)
    encoder = encoders * ENCODER_BASE_BYTES.get(fmt, 0)
    encoder += result_pixels * ENCODER_BYTES_PER_PIXEL.get(fmt, 16)
    if fmt == "webp" and header.format in LOSSLESS_SOURCES:
        encoder += result_pixels * WEBP_LOSSLESS_BYTES_PER_PIXEL + min(
            result_pixels * WEBP_LOSSLESS_HISTOGRAM_BYTES_PER_PIXEL,
            WEBP_LOSSLESS_HISTOGRAMS_MAX_BYTES,
        )
    if fmt == "gif" or (fmt == "png" and limits.png_quantize):
        encoder += palette_bytes(result_pixels)
    convolution = _convolution_bytes(options, result_width, result_height, bands)
    # thumbor's filters that hold pixels; autojpg() keeps a PNG's result to read its alpha.
    filters = working_bytes(options.adjustments, result_width, result_height, bands)
    if options.thumbor_fill == "blur":  # its canvas: the picture through thumbor's blur(50)
        filters += blur_bytes(FILL_BLUR_RADIUS, result_width, result_height, bands)
    if options.png_to_jpeg and header.has_alpha:
        filters += result_pixels * bands
    filters += _effect_bytes(options, result_pixels, bands)
    if options.watermark_text:
        filters += TEXT_MARK_BYTES  # the drawn text, bounded by the markup's checks
    if options.watermark_rotate or options.watermark_shadow:
        filters += SHAPED_MARK_BYTES
    detection = 0
    if detecting:
        # The decoded image is held in memory once for detection and the steps
        # (a still; animations are read lazily), plus OpenCV's working set.
        detection = DETECTION_BYTES + (load_w * load_h * bands * per_band if frames == 1 else 0)
        if wants_features(options):
            detection += _feature_bytes(width, height, bands * per_band)
    frame_work = working + encoder + convolution + filters
    if animated:
        # Frames are computed one at a time and held (process._through_steps):
        # every frame's result in 8 bits, the work of the frames in flight,
        # and what the encoder writes out.
        frame_work = (
            ANIMATION_BASE_BYTES
            + frame_work * ANIMATION_FRAMES_IN_FLIGHT
            + result_pixels * frames * (bands + ENCODED_BYTES_PER_PIXEL)
        )
    output_width, output_height = plan.output_size
    measured = metrics_bytes(output_width, output_height * frames, bands) if measuring else 0
    strip_band = 4 if header.has_alpha else per_band
    strips = pyvips.concurrency_get() * THREAD_ROWS * load_w * bands * strip_band
    return (
        JOB_BASE_BYTES
        + strips
        + measured
        + source_bytes
        + decoded
        + frame_work
        + detection
        # One frame's: an animation's other frames are cut where the first was.
        + _attention_pixels(options, plan, load_w * load_h) * bands * per_band
        + _trim_bytes(options, load_w, load_h, bands, decoded)
    )


def _effect_bytes(options: ProcessingOptions, pixels: int, bands: int) -> int:
    """imgproxy Pro's colour effects and unsharp masking: the picture held for
    the effects (8-bit) and each thread's buffers, per operation chain."""
    effects = len(options.effects.active) + (options.unsharp.mode.value != "none")
    if not effects:
        return 0
    held = pixels * bands if options.effects.active else 0
    per_thread = EFFECT_THREAD_BASE_BYTES + effects * EFFECT_THREAD_BYTES
    return held + per_thread * pyvips.concurrency_get()


def palette_bytes(pixels: int) -> int:
    """What libimagequant holds on top of a streaming encoder's working memory
    while it finds one frame's palette and maps the frame to it."""
    if pixels > PALETTE_WHOLE_FRAME_PIXELS:
        return 0  # read row by row: ENCODER_BYTES_PER_PIXEL["gif"] covers it
    histogram = min(pixels * PALETTE_HISTOGRAM_BYTES_PER_PIXEL, PALETTE_HISTOGRAM_MAX_BYTES)
    return pixels * PALETTE_BYTES_PER_PIXEL + histogram


def _feature_bytes(width: int, height: int, decoded_per_pixel: int) -> int:
    """thumbor's smart without a face: its feature detector reads the source at
    full size (`width` x `height`), in strips (faces.feature_points)."""
    strip = (FEATURE_STRIP_ROWS + 6) * width * 4 * FEATURE_STRIP_FLOATS
    pixels = width * height
    return FEATURE_BASE_BYTES + pixels * (decoded_per_pixel + FEATURE_BYTES_PER_PIXEL) + strip


def _trim_bytes(
    options: ProcessingOptions, width: int, height: int, bands: int, decoded: int
) -> int:
    """What trimming holds besides one decode: an allowance for the search's
    widest strip (trim_box reads its masks a byte a pixel, libvips' region
    buffers besides; counted at float width), and a second decode's worth.
    Trim jobs on a 10 MP JPEG (30 MB decoded) peaked at 31-99 MB measured two
    runs back to back (tests/test_trim.py), as they did before the search was
    rewritten; the high ones are about a second full-size buffer (not traced
    to its owner). thumbor's trim reads its whole mask instead, a byte a
    pixel (steps._thumbor_trim_box): one clean-clone run measured its job
    69 KB over the estimate without it."""
    if options.trim is None:
        return 0
    working = (LARGEST_STRIP + 2) * max(width, height) * bands * 4
    if options.trim.thumbor_corner:
        working += width * height  # thumbor's whole mask
    return working + decoded


def _attention_pixels(options: ProcessingOptions, plan: Plan, loaded_pixels: int) -> int:
    """Pixels libvips' attention crop (g:sm, or detection that found nothing)
    holds in memory: a copy of its input, the loaded picture for a smart
    `crop`, the resized one for a smart fill (steps._crop_by_gravity)."""
    if not needs_findings(options, plan):
        return 0
    crop_gravity = options.crop.gravity if options.crop.enabled else None
    pixels = loaded_pixels if crop_gravity is not None and crop_gravity.detects else 0
    if options.gravity.detects:
        pixels += plan.scaled_width * plan.scaled_height
    return pixels


def _convolution_bytes(options: ProcessingOptions, width: int, height: int, bands: int) -> int:
    """Blur and sharpen hold, per libvips thread, the rows their mask spans in float:
    a sigma of 400 over 1600 px held ~116 MB more than a sigma of 10 (measured).
    A wide blur convolves a copy shrunk by its factor instead, which it holds
    whole (steps.gaussian_blur; a picture with alpha is blurred premultiplied,
    in float, which takes that path from a lower sigma)."""
    threads = pyvips.concurrency_get()
    held = 0
    fixed = 0
    if options.sharpen > 0:
        held += _mask_rows(options.sharpen) * width * threads
        fixed += SHARPEN_BASE_BYTES
    if options.blur > 0:
        vectorised = bands < 4  # with alpha: premultiplied, in float
        factor = blur_shrink_factor(options.blur, vectorised)
        held += _mask_rows(options.blur / factor) * math.ceil(width / factor) * threads
        held += shrunk_blur_pixels(width, height, options.blur, vectorised)
    return held * bands * 4 + fixed


def _mask_rows(sigma: float) -> int:
    return 2 * math.ceil(CONVOLUTION_ROWS_PER_SIGMA * sigma) + 1


def _loaded_size(header: SourceHeader, width: int, height: int, shrink: float) -> tuple[int, int]:
    """The size the decoder produces: shrink-on-load as `load_image` asks for it."""
    if header.format == "jpeg":
        factor: float = jpeg_shrink_factor(shrink)
    elif header.format == "webp" and header.frames > 1:
        factor = 1  # libvips decodes an animated WebP at full size, whatever the scale
    elif (header.format == "webp" or header.scalable) and shrink > 1:
        factor = shrink
    else:
        factor = 1
    if header.scalable and shrink < 1:
        factor = shrink  # an SVG or a PDF page renders at the (larger) target size
    return math.ceil(width / factor), math.ceil(height / factor)
