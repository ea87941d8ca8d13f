"""Run the whole pipeline: header check, plan, load, steps, encode."""

from __future__ import annotations

from dataclasses import dataclass

import pyvips

from proxy.errors import ImageTooLarge, ProcessingFailed, ProxyError
from proxy.options.formats import CONTENT_TYPES, OUTPUT_FORMATS
from proxy.options.model import ProcessingOptions
from proxy.pipeline.encode import encode, prepare_metadata
from proxy.pipeline.load import load_image, read_header
from proxy.pipeline.plan import plan_geometry
from proxy.pipeline.steps import STEPS, PipelineContext

# The largest result we agree to build: beyond this, enlarge/extend/dpr turn a
# tiny URL into gigabytes of pixels.
MAX_RESULT_PIXELS = 50_000_000
MAX_RESULT_SIDE = 16383  # WebP's limit, the smallest among our encoders


@dataclass(frozen=True, slots=True)
class ProcessedImage:
    data: bytes
    format: str
    width: int
    height: int
    source_format: str

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]


def output_format(options: ProcessingOptions, source_format: str) -> str:
    if options.format is not None:
        return options.format
    return source_format if source_format in OUTPUT_FORMATS else "jpeg"


def process_image(data: bytes, options: ProcessingOptions, max_src_pixels: int) -> ProcessedImage:
    """Blocking and CPU-bound: call from a worker thread."""
    try:
        return _process(data, options, max_src_pixels)
    except ProxyError:
        raise
    except pyvips.Error:
        # libvips decodes lazily: a corrupt file may only fail here, at encode.
        raise ProcessingFailed() from None


def _process(data: bytes, options: ProcessingOptions, max_src_pixels: int) -> ProcessedImage:
    header = read_header(data, max_src_pixels)
    turned = options.auto_rotate and header.orientation in (5, 6, 7, 8)
    width, height = (header.height, header.width) if turned else (header.width, header.height)
    plan = plan_geometry(width, height, options)
    _check_result_size(plan.scaled_width, plan.scaled_height, plan.target_width, plan.target_height)

    image = load_image(data, header, plan.shrink)
    loaded_w, loaded_h = (image.height, image.width) if turned else (image.width, image.height)
    fmt = output_format(options, header.format)
    ctx = PipelineContext(
        header=header,
        plan=plan,
        output_format=fmt,
        load_scale_x=loaded_w / width,
        load_scale_y=loaded_h / height,
    )
    for step in STEPS:
        image = step(image, options, ctx)

    image, keep = prepare_metadata(image, options)
    encoded = encode(image, fmt, options.quality_for(fmt), keep)
    return ProcessedImage(encoded, fmt, image.width, image.height, header.format)


def _check_result_size(scaled_w: int, scaled_h: int, target_w: int, target_h: int) -> None:
    width, height = max(scaled_w, target_w), max(scaled_h, target_h)
    if width > MAX_RESULT_SIDE or height > MAX_RESULT_SIDE or width * height > MAX_RESULT_PIXELS:
        raise ImageTooLarge("result image would be too large")
