"""Run the whole pipeline: header check, plan, load, steps, encode."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import pyvips

from proxy import tracing
from proxy.errors import ImageTooLarge, ProcessingFailed, ProxyError, UnsupportedFormat
from proxy.options.formats import CONTENT_TYPES, FORMATS_WITH_ALPHA, FORMATS_WITH_ANIMATION
from proxy.options.model import ProcessingOptions
from proxy.pipeline import interrupt
from proxy.pipeline.auto_quality import AutoQualityMemory
from proxy.pipeline.bitmaps import fit_ico
from proxy.pipeline.encode import (
    LOSSLESS_SOURCES,
    QUALITY_FORMATS,
    EncodeRequest,
    EncoderSettings,
    encode_result,
    prepare_metadata,
)
from proxy.pipeline.faces import Findings, FindingsMemory, detect, detection_shrink
from proxy.pipeline.focus import (
    findings_key,
    focused,
    steers,
    untouched,
    wants_features,
)
from proxy.pipeline.foreign import Selection
from proxy.pipeline.load import (
    MAX_BUILT_PIXELS,
    VIPS_ERRORS,
    SourceHeader,
    forget_vips_error,
    load_image,
    read_header,
)
from proxy.pipeline.plan import Plan, plan_geometry
from proxy.pipeline.remembered import Remembered
from proxy.pipeline.steps import (
    PREPARE_ALL_FRAMES,
    PREPARE_EACH_FRAME,
    STEPS,
    TRIM_BOX,
    PipelineContext,
)
from proxy.pipeline.svg import sanitize_svg
from proxy.pipeline.thumbor_box import resolve_thumbor_box
from proxy.pipeline.turn import Turn
from proxy.pipeline.watermark import shaped_mark, text_mark

if TYPE_CHECKING:
    from proxy.settings import Settings


# Options that change pixels. An SVG asked for none of them may pass through
# (unsharp masking is not one: the server's UNSHARP_MASKING_MODE sets it on
# every URL, and a vector passed through is not resampled).
_PROCESSING_FIELDS = (
    "width", "height", "min_width", "min_height", "zoom_x", "zoom_y", "dpr", "extend",
    "crop", "trim", "padding", "extend_aspect_ratio", "rotate", "flip_horizontal",
    "flip_vertical", "background", "blur", "sharpen", "pixelate", "watermark", "max_bytes",
    "adjustments", "thumbor_box", "thumbor_fill", "round_corner", "thumbor_watermarks",
    "effects", "watermark_text",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ProcessingLimits:
    max_src_pixels: int
    max_animation_frames: int
    sanitize_svg: bool
    max_result_dimension: int = 16383
    # Without a format in the URL or from Accept: imgproxy's PREFERRED_FORMATS rule.
    preferred_formats: tuple[str, ...] = ("jpeg", "png", "gif")
    # Sources read only when switched on (ENABLE_PDF/PSD/RAW/VIDEO_THUMBNAILS).
    optional_formats: frozenset[str] = frozenset()
    video_second: float = 1.0  # VIDEO_THUMBNAIL_SECOND
    face_detection: bool = True  # SMART_CROP_FACE_DETECTION
    # PNG_QUANTIZE: PNG results go through libimagequant as GIF's do (their footprint).
    png_quantize: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> ProcessingLimits:
        switched = {
            "pdf": settings.enable_pdf,
            "psd": settings.enable_psd,
            "raw": settings.enable_raw,
            "video": settings.enable_video_thumbnails,
        }
        return cls(
            max_src_pixels=settings.max_src_pixels,
            max_animation_frames=settings.max_animation_frames,
            sanitize_svg=settings.sanitize_svg,
            max_result_dimension=settings.max_result_dimension,
            preferred_formats=settings.preferred_formats,
            optional_formats=frozenset(fmt for fmt, on in switched.items() if on),
            video_second=settings.video_thumbnail_second,
            face_detection=settings.smart_crop_face_detection,
            png_quantize=settings.png_quantize,
        )


# Headers by source digest: a header is a function of the bytes and the
# selection alone, and each job reads it twice (its footprint estimate, then
# the pipeline), every size of a srcset again. ~200 bytes an entry.
HEADERS: Remembered[SourceHeader] = Remembered(4096)


def source_header(
    data: bytes, options: ProcessingOptions, limits: ProcessingLimits, digest: str = ""
) -> SourceHeader:
    """The source's header under the request's limits, page and video second.

    With the bytes' digest the header is read once per source and selection
    (a header that fails to read is not remembered: it raises every time).
    """
    key = _header_key(options, limits, digest) if digest else None
    header = HEADERS.get(key) if key else None
    if header is None:
        second = _video_second(options, limits)
        header = read_header(
            data, limits.max_src_pixels, Selection(options.page, second), limits.optional_formats
        )
        if key:
            HEADERS.put(key, header)
    return header


def known_header(
    options: ProcessingOptions, limits: ProcessingLimits, digest: str
) -> SourceHeader | None:
    """The header source_header() read before for these bytes, if it is remembered."""
    return HEADERS.get(_header_key(options, limits, digest)) if digest else None


def _video_second(options: ProcessingOptions, limits: ProcessingLimits) -> float:
    return limits.video_second if options.video_second is None else options.video_second


def _header_key(options: ProcessingOptions, limits: ProcessingLimits, digest: str) -> tuple:
    second = _video_second(options, limits)
    return (digest, options.page, second, limits.max_src_pixels, limits.optional_formats)


@dataclass(frozen=True, slots=True)
class ProcessedImage:
    data: bytes
    format: str
    width: int
    height: int
    source_format: str
    encodes: int = 1
    frames: int = 1
    quality: int = 0  # the quality the encoder used (0: not a quality format)
    scale: float = 1.0  # below 1: downscaled to meet max_bytes
    lossless: bool = False

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]


def asks_processing(options: ProcessingOptions) -> bool:
    defaults = ProcessingOptions(source_url="")
    return any(getattr(options, name) != getattr(defaults, name) for name in _PROCESSING_FIELDS)


def output_format(
    options: ProcessingOptions,
    header: SourceHeader,
    preferred: tuple[str, ...] = ("jpeg", "png", "gif"),
    max_frames: int = 1,
) -> str:
    """The format to write, from the URL, the request's Accept, and the source.

    Order: a vector source asked for no processing stays SVG; then the formats
    negotiated from Accept (AVIF and JPEG XL are skipped for animations: no
    sequences are written in either, as imgproxy); then the URL's format; then
    imgproxy's preferred-formats rule: the source's format if listed (or kept,
    as thumbor keeps it), else the first listed that can carry the image's
    animation and alpha, else the first.
    """
    if header.vector and options.format is None and not asks_processing(options):
        return "svg"
    animated = 1 < header.frames <= max_frames
    for fmt in options.accepted_formats:
        if fmt in ("avif", "jxl") and animated:
            continue
        return fmt
    if options.format is not None:
        return options.format
    if options.png_to_jpeg and header.format == "png" and not header.has_alpha:
        return "jpeg"  # thumbor's autojpg(); with an alpha band see _opaque_png_as_jpeg
    if header.format in preferred or header.format in options.source_formats_kept:
        return header.format
    alpha = header.has_alpha and options.background is None
    for fmt in preferred:
        if animated and fmt not in FORMATS_WITH_ANIMATION:
            continue
        if alpha and fmt not in FORMATS_WITH_ALPHA:
            continue
        return fmt
    return preferred[0] if preferred else "jpeg"


@dataclass(frozen=True, slots=True)
class Rendered:
    """The processed image before encoding: what the encoded result is measured against."""

    image: pyvips.Image  # frames stacked vertically when animated
    keep: str  # libvips `keep` flags
    format: str
    header: SourceHeader
    frames: int
    # What a smart gravity's detection found, on the picture before `rotate`
    # and the flips (focus.untouched).
    findings: Findings | None = None
    # The geometry the steps followed (thumbor's meta/ reports it): the plan,
    # the options with thumbor's sizes and detected gravities made concrete,
    # and the box trim kept (left, top, width, height of the upright source).
    plan: Plan | None = None
    options: ProcessingOptions | None = None
    trim_box: tuple[int, int, int, int] | None = None


@dataclass(frozen=True, slots=True)
class FindingsRecall:
    """Detection through the memory of one source's findings."""

    memory: FindingsMemory | None = None
    digest: str = ""

    def find(
        self,
        image: pyvips.Image,
        options: ProcessingOptions,
        full_size: Callable[[], pyvips.Image] | None = None,
    ) -> Findings:
        """What `image` (the prepared source, reduced) shows; `full_size`
        makes the prepared source at full size, where thumbor's feature
        points are looked for."""
        key = findings_key(self.digest, options) if self.memory and self.digest else ""
        found = self.memory.get(key) if self.memory and key else None
        if found is None:

            def whole() -> pyvips.Image:
                return untouched(full_size() if full_size else image, options)

            features = whole if wants_features(options) else None
            found = detect(untouched(image, options), features=features)
            if self.memory and key:
                self.memory.put(key, found)
        return found


def process_image(
    data: bytes,
    options: ProcessingOptions,
    limits: ProcessingLimits,
    watermark: pyvips.Image | None = None,
    encoder: EncoderSettings | None = None,
    mark_data: tuple[bytes, ...] = (),
    auto_memory: AutoQualityMemory | None = None,
    source_digest: str = "",
    findings_memory: FindingsMemory | None = None,
    frame_data: bytes | None = None,
) -> ProcessedImage:
    """Blocking and CPU-bound: call from a worker thread.

    `mark_data`, `frame_data`: the bytes of thumbor's watermark() images and of
    a frame() nine-patch, fetched for this request.
    `auto_memory`, `findings_memory`, `source_digest`: quality:auto's choice and
    what face detection found are remembered there for the source's other
    sizes (without a digest they are not).
    """
    return inspect_image(
        data,
        options,
        limits,
        watermark,
        encoder,
        mark_data,
        auto_memory,
        source_digest,
        findings_memory,
        frame_data,
    )[0]


def inspect_image(
    data: bytes,
    options: ProcessingOptions,
    limits: ProcessingLimits,
    watermark: pyvips.Image | None = None,
    encoder: EncoderSettings | None = None,
    mark_data: tuple[bytes, ...] = (),
    auto_memory: AutoQualityMemory | None = None,
    source_digest: str = "",
    findings_memory: FindingsMemory | None = None,
    frame_data: bytes | None = None,
    hold: bool = False,
) -> tuple[ProcessedImage, Rendered | None]:
    """The result, and the unencoded image it came from (None for pass-through).
    With `hold`, that image is computed once and held in memory, for a caller
    that reads it again (/info measures the result against it)."""
    with _libvips_failures():
        remembered = FindingsRecall(findings_memory, source_digest)
        rendered = _render(data, options, limits, watermark, mark_data, remembered, frame_data)
        if isinstance(rendered, ProcessedImage):
            return rendered, None
        interrupt.check()
        # The pixels are computed while encoding: that is where a stop can land.
        interrupt.watch(rendered.image)
        if hold and rendered.frames == 1:  # an animation's frames are held already
            # Computed from the watched image, so a stop still reaches it.
            rendered = replace(rendered, image=rendered.image.copy_memory())
        # Only quality:auto remembers anything: other requests skip the key.
        remembering = source_digest and options.auto_quality
        analysis_key = (
            f"{source_digest}/{rendered.format}/{options.analysis_key()}" if remembering else ""
        )
        # libvips computes the pixels here: decode and steps run inside "encode".
        with tracing.span("encode", **{"pixelpipe.format": rendered.format}):
            encoded = _encode(
                rendered, options, encoder or EncoderSettings(), auto_memory, analysis_key
            )
        return encoded, rendered


def render_image(
    data: bytes,
    options: ProcessingOptions,
    limits: ProcessingLimits,
    source_digest: str = "",
    findings_memory: FindingsMemory | None = None,
) -> Rendered:
    """The result as the steps describe it, not computed (libvips is lazy;
    detection and trim read pixels, an animation's frames are computed):
    its geometry for thumbor's meta/. Never passed through untouched."""
    with _libvips_failures():
        remembered = FindingsRecall(findings_memory, source_digest)
        everything = replace(options, skip_processing=())
        rendered = _render(data, everything, limits, None, (), remembered, detect_anyway=True)
        if not isinstance(rendered, Rendered):
            # An SVG asked for nothing is answered as it is, never drawn; the
            # report describes the picture it draws, as thumbor (which draws
            # every SVG it reads) would.
            drawn = replace(everything, format="png")
            rendered = _render(data, drawn, limits, None, (), remembered, detect_anyway=True)
        assert isinstance(rendered, Rendered)  # nothing skipped, nothing kept as SVG
        interrupt.check()
        return rendered


@contextmanager
def _libvips_failures() -> Iterator[None]:
    """A libvips error in a run is the source's: ProcessingFailed, unless the
    run was stopped (Interrupted). libvips decodes lazily, so a corrupt file
    may only fail at the encode."""
    try:
        yield
    except ProxyError:
        raise
    except VIPS_ERRORS:
        forget_vips_error()
        interrupt.check()  # killed because nobody waits: not the source's fault
        raise ProcessingFailed() from None


def _encode(
    rendered: Rendered,
    options: ProcessingOptions,
    encoder: EncoderSettings,
    auto_memory: AutoQualityMemory | None = None,
    analysis_key: str = "",
) -> ProcessedImage:
    fmt, frames = rendered.format, rendered.frames
    request = EncodeRequest(
        format=fmt,
        quality=options.quality_for(fmt),
        keep=rendered.keep,
        max_bytes=options.max_bytes,
        auto_quality=options.auto_quality,
        lossless_source=rendered.header.format in LOSSLESS_SOURCES,
        animated=frames > 1,
        palette_bits=rendered.header.palette_bits,
        analysis_key=analysis_key,
    )
    encoded = encode_result(rendered.image, request, encoder, auto_memory)
    return ProcessedImage(
        encoded.data,
        fmt,
        encoded.width,
        encoded.height // frames,
        rendered.header.format,
        encodes=encoded.encodes,
        frames=frames,
        quality=encoded.quality if fmt in QUALITY_FORMATS else 0,
        scale=encoded.scale,
        lossless=encoded.lossless,
    )


def _render(
    data: bytes,
    options: ProcessingOptions,
    limits: ProcessingLimits,
    watermark: pyvips.Image | None,
    mark_data: tuple[bytes, ...] = (),
    remembered: FindingsRecall | None = None,
    frame_data: bytes | None = None,
    detect_anyway: bool = False,
) -> Rendered | ProcessedImage:
    """The steps' image, lazy; `detect_anyway`: a smart gravity detects even
    when it has nothing to cut (thumbor's meta/ reports what was found)."""
    digest = remembered.digest if remembered else ""
    passed = _pass_through(data, options, limits, digest)
    if passed is not None:
        return passed
    header = source_header(data, options, limits, digest)
    fmt = output_format(options, header, limits.preferred_formats, limits.max_animation_frames)
    if fmt == "svg":
        if not header.vector:
            raise UnsupportedFormat("SVG output needs an SVG source")
        return _svg_result(data, header, limits)
    if header.vector:
        data = sanitize_svg(data)  # librsvg is careful, but it never sees script at all

    animate = animates(header, fmt, limits.max_animation_frames)
    width, height = upright_size(header, options)
    trimming = options.trim is not None and not animate
    if not trimming:
        options = resolve_thumbor_box(options, width, height)
    plan = None if trimming else plan_geometry(width, height, options, header.scalable)
    result_frames = header.frames if animate else 1
    if plan is not None:
        _check_result_size(plan, limits.max_result_dimension, result_frames)
    recall = remembered or FindingsRecall()
    # A smart gravity with a crop to place: detection steers it.
    steering = steers(options, plan, limits.face_detection, detect_anyway)
    shrink = plan.shrink if plan else 1.0
    if steering:
        shrink = detection_shrink(shrink, width, height)
    # libvips decodes lazily: this span holds the header and what the foreign
    # decoders (HEIC, JPEG XL, ...) do at once; libvips' own decode runs in "encode".
    with tracing.span("decode", **{"pixelpipe.source_format": header.format}):
        image = load_image(
            data,
            header,
            shrink,
            all_frames=animate,
            thumbnail=options.enforce_thumbnail,
        )
    if animate and options.trim is not None:
        options = replace(options, trim=None)  # imgproxy does not trim animations either
    prepared = image
    for prepare_step in PREPARE_ALL_FRAMES:
        prepared = prepare_step(prepared, options)
    frames = _split_frames(prepared, header.frames if animate else 1)
    for prepare_step in PREPARE_EACH_FRAME:
        frames = [prepare_step(frame, options) for frame in frames]
    if plan is None:
        trimmed_from = _trimmed_from(frames[0], options, width, height)
        options = resolve_thumbor_box(
            options, frames[0].width, frames[0].height, trimmed_from, (width, height)
        )
        plan = plan_geometry(frames[0].width, frames[0].height, options, header.scalable)
        _check_result_size(plan, limits.max_result_dimension, result_frames)
    findings = None
    if steering:
        if len(frames) == 1:
            # Detection and the steps read the same pixels: decoded once.
            frames = [frames[0].copy_memory()]
        with tracing.span("faces"):
            findings = recall.find(frames[0], options, lambda: _full_size(data, header, options))
        options = focused(options, findings, plan)
    ctx = PipelineContext(
        plan=plan,
        output_format=fmt,
        load_scale_x=frames[0].width / plan.source_width,
        load_scale_y=frames[0].height / plan.source_height,
        watermark=_request_mark(watermark, options),
        thumbor_marks=tuple(_load_mark(data, limits) for data in mark_data),
        thumbor_frame=_load_mark(frame_data, limits) if frame_data and options.frame_url else None,
    )
    # The steps' graph, computed in "encode"; an animation's frames are computed here.
    with tracing.span("processing"):
        frames = [_through_steps(frame, options, ctx, animate) for frame in frames]
    result = _join_frames(frames, image) if animate else frames[0]
    if fmt == "ico":
        result = fit_ico(result)
    result, fmt = _opaque_png_as_jpeg(result, fmt, header, options)

    result, keep = prepare_metadata(result, options)
    trimmed = frames[0].get(TRIM_BOX) if frames[0].get_typeof(TRIM_BOX) else None
    return Rendered(
        result,
        keep,
        fmt,
        header,
        len(frames),
        findings,
        plan,
        options,
        (trimmed[0], trimmed[1], trimmed[2], trimmed[3]) if trimmed else None,
    )


def _full_size(data: bytes, header: SourceHeader, options: ProcessingOptions) -> pyvips.Image:
    """The source decoded at full size (its first frame) and prepared as the
    steps' picture is: thumbor's feature detector looks at every pixel."""
    image = load_image(data, header, 1.0)
    for prepare_all in PREPARE_ALL_FRAMES:
        image = prepare_all(image, options)
    for prepare_step in PREPARE_EACH_FRAME:
        image = prepare_step(image, options)
    return image


def animates(header: SourceHeader, fmt: str, max_frames: int) -> bool:
    """Whether the result keeps every frame: an animation into a format that
    animates, within the frame limit (beyond it, the first frame alone)."""
    return 1 < header.frames <= max_frames and fmt in FORMATS_WITH_ANIMATION


def _through_steps(
    frame: pyvips.Image, options: ProcessingOptions, ctx: PipelineContext, computed: bool
) -> pyvips.Image:
    """The steps over one frame; an animation's frames are each computed and
    held before the next is built (as imgproxy does). Left lazy, all of them
    were computed at once by the encoder, every frame's operations holding
    their buffers together: 100 frames of 400x400 took 3.5 GB for `mc` and
    1.6 GB for `bl:10`, 0.18 and 0.16 GB now, for up to 25% more time on
    small frames (bench/animation.py, BENCHMARKS.md "Animations")."""
    for step in STEPS:
        frame = step(frame, options, ctx)
    if not computed:
        return frame
    interrupt.check()  # between frames: each copy runs unwatched (see steps.held)
    return frame.copy_memory()


def _opaque_png_as_jpeg(
    image: pyvips.Image, fmt: str, header: SourceHeader, options: ProcessingOptions
) -> tuple[pyvips.Image, str]:
    """thumbor's autojpg() for a PNG with an alpha band: JPEG if no pixel is see-through.

    thumbor looks at the pixels, not the band; so does this, on the result
    (kept in memory, as it is read twice: here and by the encoder).
    """
    asked = options.png_to_jpeg and options.format is None
    if not (asked and fmt == "png" and header.format == "png" and image.hasalpha()):
        return image, fmt
    image = image.copy_memory()
    if image[image.bands - 1].min() < 255:
        return image, fmt
    return image[: image.bands - 1], "jpeg"


def _pass_through(
    data: bytes, options: ProcessingOptions, limits: ProcessingLimits, digest: str = ""
) -> ProcessedImage | None:
    """skip_processing: listed source formats go back untouched (SVG still sanitised)."""
    if not options.skip_processing:
        return None
    header = source_header(data, options, limits, digest)
    if header.format not in options.skip_processing:
        return None
    fmt = output_format(options, header, limits.preferred_formats, limits.max_animation_frames)
    if fmt != header.format:
        return None  # imgproxy: skipping only when the format would not change
    if header.vector:
        return _svg_result(data, header, limits)
    return ProcessedImage(data, header.format, header.width, header.height, header.format)


def raw_result(data: bytes, limits: ProcessingLimits) -> ProcessedImage:
    """`raw`: the source's bytes unprocessed, but only an image of a format read
    here, as detected from the bytes (the origin's Content-Type is never
    trusted: an HTML page or a script must not be served from the image
    domain), and SVG sanitised as on every path. No pixel is decoded, so no
    resolution limit applies."""
    header = read_header(data, 0, enabled=limits.optional_formats)
    if header.format not in CONTENT_TYPES:
        raise UnsupportedFormat(f"raw answers images only, not {header.format}")
    if header.vector:
        return _svg_result(data, header, limits)
    return ProcessedImage(data, header.format, header.width, header.height, header.format)


def _svg_result(data: bytes, header: SourceHeader, limits: ProcessingLimits) -> ProcessedImage:
    if not limits.sanitize_svg:
        raise UnsupportedFormat("SVG pass-through is off (PIXELPIPE_SANITIZE_SVG=false)")
    return ProcessedImage(sanitize_svg(data), "svg", header.width, header.height, "svg")


def _request_mark(
    watermark: pyvips.Image | None, options: ProcessingOptions
) -> pyvips.Image | None:
    """The watermark this request draws: its text, else the settings' image; shaped
    by its shadow and rotation."""
    if options.watermark_text:
        watermark = text_mark(options.watermark_text)
    if watermark is None or (options.watermark is None and not options.watermark_text):
        return watermark
    return shaped_mark(watermark, options.watermark_rotate, options.watermark_shadow)


def _load_mark(data: bytes, limits: ProcessingLimits) -> pyvips.Image:
    """A thumbor watermark() or frame() image: checked like a source, sRGB with alpha."""
    header = read_header(data, limits.max_src_pixels)
    mark = load_image(data, header, 1.0)
    if mark.interpretation not in ("srgb", "rgb") or mark.bands < 3:
        mark = mark.colourspace("srgb")
    mark = mark.cast("uchar") if mark.format != "uchar" else mark
    return mark if mark.hasalpha() else mark.addalpha()


def _trimmed_from(
    image: pyvips.Image, options: ProcessingOptions, width: int, height: int
) -> tuple[int, int]:
    """Where trim's box starts in the upright source, the turned `width` x
    `height` picture it was cut from turned back (thumbor moves its crop by it)."""
    if not image.get_typeof(TRIM_BOX):
        return 0, 0
    left, top, box_width, box_height = image.get(TRIM_BOX)
    edges = Turn.of(options).box((left, top, left + box_width, top + box_height), (width, height))
    return int(edges[0]), int(edges[1])


def upright_size(header: SourceHeader, options: ProcessingOptions) -> tuple[int, int]:
    turns = 0
    if options.auto_rotate and header.orientation in (5, 6, 7, 8):
        turns += 1
    if options.rotate in (90, 270):
        turns += 1
    if turns % 2:
        return header.height, header.width
    return header.width, header.height


def _split_frames(image: pyvips.Image, count: int) -> list[pyvips.Image]:
    if count <= 1:
        return [image]
    page_height = image.height // count
    return [image.crop(0, i * page_height, image.width, page_height) for i in range(count)]


def _join_frames(frames: list[pyvips.Image], source: pyvips.Image) -> pyvips.Image:
    joined = pyvips.Image.arrayjoin(frames, across=1).copy()
    joined.set_type(pyvips.GValue.gint_type, "page-height", frames[0].height)
    for name in ("delay", "loop"):
        if name in source.get_fields():
            joined.set(name, source.get(name))
    return joined


def _check_result_size(plan: Plan, max_side: int, frames: int = 1) -> None:
    """The sides of what is encoded, and the pixels of the largest canvas built
    on the way (a 12000x400 panorama filling 600x600 is scaled to 18000x600
    first, then cut). Every frame is made: an animation's result counts them
    all (as imgproxy's source limit does), so 100 frames of 2000x2000 from a
    1 KB GIF are refused."""
    width, height = plan.output_size
    canvas_width, canvas_height = plan.result_size
    too_many = canvas_width * canvas_height * frames > MAX_BUILT_PIXELS
    if width > max_side or height > max_side or too_many:
        raise ImageTooLarge("result image would be too large")
