"""The processing steps, in imgproxy's documented order, over one pyvips image.

Each step is `(image, options, context) -> image` and does one thing; `STEPS`
is the pipeline. Steps that have nothing to do return the image unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pyvips

from proxy.options.formats import FORMATS_WITH_ALPHA
from proxy.options.model import Gravity, GravityType, ProcessingOptions
from proxy.pipeline.load import SourceHeader
from proxy.pipeline.plan import Plan, calc_position, min_non_zero

WHITE = (255.0, 255.0, 255.0)


@dataclass(frozen=True, slots=True)
class PipelineContext:
    header: SourceHeader
    plan: Plan
    output_format: str
    # Decoded size over planned source size: below 1 after shrink-on-load.
    load_scale_x: float
    load_scale_y: float


Step = Callable[[pyvips.Image, ProcessingOptions, PipelineContext], pyvips.Image]


def to_processing_colourspace(
    image: pyvips.Image, options: ProcessingOptions, ctx: PipelineContext
) -> pyvips.Image:
    """Work in 8-bit sRGB; keep the source's RGB profile only when asked to."""
    has_icc = "icc-profile-data" in image.get_fields()
    is_rgb = image.interpretation in ("srgb", "rgb") and image.format == "uchar"
    if has_icc and is_rgb and not options.strip_color_profile:
        return image
    if has_icc:
        try:
            return image.icc_transform("srgb", embedded=True, intent="perceptual")
        except pyvips.Error:
            pass  # a broken profile: fall back to a plain colourspace conversion
    if image.interpretation == "cmyk":
        return image.icc_transform("srgb", input_profile="cmyk", intent="perceptual")
    if image.interpretation != "srgb" or image.format != "uchar":
        return image.colourspace("srgb").cast("uchar")
    return image


def auto_rotate(
    image: pyvips.Image, options: ProcessingOptions, ctx: PipelineContext
) -> pyvips.Image:
    if options.auto_rotate:
        return image.autorot()
    if "orientation" in image.get_fields():
        # imgproxy drops the tag either way, so viewers don't rotate a second time.
        image = image.copy()
        image.remove("orientation")
    return image


def crop(image: pyvips.Image, options: ProcessingOptions, ctx: PipelineContext) -> pyvips.Image:
    """The `crop` option: an area of the source, before any resizing."""
    plan = ctx.plan
    if not plan.crop_width and not plan.crop_height:
        return image
    # The plan counts source pixels; shrink-on-load may have decoded fewer.
    width = _to_loaded(plan.crop_width, ctx.load_scale_x, image.width)
    height = _to_loaded(plan.crop_height, ctx.load_scale_y, image.height)
    gravity = options.crop.gravity or options.gravity
    return _crop_by_gravity(image, width, height, gravity, ctx.load_scale_x)


def resize(image: pyvips.Image, options: ProcessingOptions, ctx: PipelineContext) -> pyvips.Image:
    width, height = ctx.plan.scaled_width, ctx.plan.scaled_height
    if (width, height) == (image.width, image.height):
        return image
    hscale, vscale = width / image.width, height / image.height
    if not image.hasalpha():
        return image.resize(hscale, vscale=vscale)
    # Resampling straight alpha bleeds the colour of transparent pixels into
    # the edges; premultiplying first keeps them out.
    resized = image.premultiply().resize(hscale, vscale=vscale).unpremultiply()
    return resized.cast("uchar")


def crop_to_result(
    image: pyvips.Image, options: ProcessingOptions, ctx: PipelineContext
) -> pyvips.Image:
    """fill and fill-down: cut the resized image down to the requested box."""
    width = min_non_zero(ctx.plan.result_crop_width, image.width)
    height = min_non_zero(ctx.plan.result_crop_height, image.height)
    width, height = min(width, image.width), min(height, image.height)
    if (width, height) == (image.width, image.height):
        return image
    return _crop_by_gravity(image, width, height, options.gravity, ctx.plan.dpr_scale)


def extend(image: pyvips.Image, options: ProcessingOptions, ctx: PipelineContext) -> pyvips.Image:
    if not options.extend:
        return image
    width = max(ctx.plan.target_width, image.width)
    height = max(ctx.plan.target_height, image.height)
    if (width, height) == (image.width, image.height):
        return image
    left, top = calc_position(
        width, height, image.width, image.height, options.extend_gravity, ctx.plan.dpr_scale
    )
    # Transparent now; `flatten` paints it when the output format has no alpha.
    base = image if image.hasalpha() else image.addalpha()
    return base.embed(left, top, width, height, extend="background", background=[0, 0, 0, 0])


def flatten(image: pyvips.Image, options: ProcessingOptions, ctx: PipelineContext) -> pyvips.Image:
    if not image.hasalpha() or ctx.output_format in FORMATS_WITH_ALPHA:
        return image
    return image.flatten(background=list(WHITE)).cast("uchar")


def _to_loaded(size: int, scale: float, limit: int) -> int:
    return limit if size == 0 else min(limit, max(1, round(size * scale)))


def _crop_by_gravity(
    image: pyvips.Image, width: int, height: int, gravity: Gravity, offset_scale: float
) -> pyvips.Image:
    if gravity.type is GravityType.SMART:
        return image.smartcrop(width, height, interesting="attention")
    left, top = calc_position(image.width, image.height, width, height, gravity, offset_scale)
    return image.crop(left, top, width, height)


STEPS: tuple[Step, ...] = (
    to_processing_colourspace,
    auto_rotate,
    crop,
    resize,
    crop_to_result,
    extend,
    flatten,
)
