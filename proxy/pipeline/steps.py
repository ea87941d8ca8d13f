"""The processing steps, in imgproxy's documented order, over one pyvips image.

Two stages, each a visible list:
  PREPARE  (image, options)       -> decode-side fixes before sizes are planned:
           to sRGB (over all of an animation's frames at once),
           orientation (EXIF, rotate, flip), trim
  STEPS    (image, options, ctx)  -> with the geometry plan in `ctx`:
           crop, resize, fill crop, filters, extend, extend to aspect ratio,
           padding, flatten, watermark
Steps that have nothing to do return the image unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import pyvips

from proxy.options.formats import FORMATS_WITH_ALPHA
from proxy.options.model import (
    Gravity,
    GravityType,
    ProcessingOptions,
    ThumborWatermark,
    Trim,
    Watermark,
    WatermarkPosition,
)
from proxy.pipeline.effects import apply_effects, unsharp_applies, unsharp_mask
from proxy.pipeline.load import VIPS_ERRORS, forget_vips_error
from proxy.pipeline.plan import Plan, calc_position, min_non_zero
from proxy.pipeline.thumbor_filters import (
    ADJUSTMENTS,
    FILL_BLUR_RADIUS,
    frame,
    join_alpha,
    percent_of_255,
    split_alpha,
    thumbor_blur,
)
from proxy.pipeline.trim_box import find_trim, projections
from proxy.pipeline.turn import Turn

WHITE = (255, 255, 255)
MAGENTA = (255, 0, 255)  # imgproxy's transparency key for trim


@dataclass(frozen=True, slots=True)
class PipelineContext:
    plan: Plan
    output_format: str
    # Decoded size over planned source size: below 1 after shrink-on-load.
    load_scale_x: float
    load_scale_y: float
    watermark: pyvips.Image | None = None  # sRGB with alpha, from the settings
    thumbor_marks: tuple[pyvips.Image, ...] = ()  # thumbor's watermark() images, sRGB with alpha
    thumbor_frame: pyvips.Image | None = None  # a thumbor frame() nine-patch, sRGB with alpha
    # Where a smart crop cut the first frame (left, top), per step: the other
    # frames of an animation are cut there too. A window chosen per frame
    # follows whatever moves, and the picture shakes.
    smart_windows: dict[str, tuple[int, int]] = field(default_factory=dict)


PrepareStep = Callable[[pyvips.Image, ProcessingOptions], pyvips.Image]
Step = Callable[[pyvips.Image, ProcessingOptions, PipelineContext], pyvips.Image]


# --- PREPARE ------------------------------------------------------------------


def to_processing_colourspace(image: pyvips.Image, options: ProcessingOptions) -> pyvips.Image:
    """Work in 8-bit sRGB; keep the source's RGB profile only when asked to."""
    has_icc = "icc-profile-data" in image.get_fields()
    is_rgb = image.interpretation in ("srgb", "rgb") and image.format == "uchar"
    if has_icc and is_rgb and not options.strip_color_profile:
        return image
    # depth=8: libvips' transform keeps a 16-bit source 16-bit, and the steps
    # count in bytes (a 16-bit PNG with a profile came out white once padded).
    if has_icc:
        try:
            return image.icc_transform("srgb", embedded=True, intent="perceptual", depth=8)
        except VIPS_ERRORS:
            forget_vips_error()  # a broken profile: fall back to a plain conversion
    if image.interpretation == "cmyk":
        return image.icc_transform("srgb", input_profile="cmyk", intent="perceptual", depth=8)
    if image.interpretation != "srgb" or image.format != "uchar":
        return image.colourspace("srgb").cast("uchar")
    return image


def orient(image: pyvips.Image, options: ProcessingOptions) -> pyvips.Image:
    """EXIF orientation, then the `rotate` and `flip` options."""
    if options.auto_rotate:
        image = image.autorot()
    elif "orientation" in image.get_fields():
        # imgproxy drops the tag either way, so viewers don't rotate a second time.
        image = image.copy()
        image.remove("orientation")
    if options.rotate:
        # rot, not rotate: the affine rotate resamples, and left a 1 px black
        # line along an edge and the picture a pixel off (imgproxy uses rot too).
        image = image.rot(f"d{options.rotate}")
    if options.flip_horizontal:
        image = image.fliphor()
    if options.flip_vertical:
        image = image.flipver()
    return image


# The metadata field the trim step records its box in (left, top, width, height).
TRIM_BOX = "pixelpipe-trim-box"


def trim(image: pyvips.Image, options: ProcessingOptions) -> pyvips.Image:
    settings = options.trim
    if settings is None:
        return image
    # The search reads the whole picture: the loader decodes it into memory
    # once (random access), and the steps then read the part kept from there.
    search = image
    if image.hasalpha():
        search = image.flatten(background=list(MAGENTA))
    if settings.thumbor_corner:
        left, top, width, height = _thumbor_trim_box(search, settings, _turned_corner(options))
    else:
        colour = settings.colour or tuple(search(0, 0)[:3])
        left, top, width, height = find_trim(search, settings.threshold, colour)
    if width == 0 or height == 0:
        return image  # all background: keep the image rather than nothing
    if settings.equal_horizontal:
        right = image.width - left - width
        left = min(left, right)
        width = image.width - 2 * left
    if settings.equal_vertical:
        bottom = image.height - top - height
        top = min(top, bottom)
        height = image.height - 2 * top
    trimmed = image.crop(left, top, width, height)
    # Where the box was, for thumbor's meta/ (a new image: setting is safe).
    trimmed.set_type(pyvips.GValue.array_int_type, TRIM_BOX, [left, top, width, height])
    return trimmed


def _turned_corner(options: ProcessingOptions) -> tuple[bool, bool]:
    """Where thumbor's trim corner is once `orient` has turned and flipped the
    source (thumbor trims before its flips and turns): whether it is on the
    right, and whether at the bottom; thumbor's top-left is (False, False)."""
    far = float(options.trim is not None and options.trim.thumbor_corner == "bottom-right")
    x, y, _x, _y = Turn.of(options).forward((far, far, far, far))
    return x == 1, y == 1


def _thumbor_trim_box(
    image: pyvips.Image, settings: Trim, corner: tuple[bool, bool]
) -> tuple[int, int, int, int]:
    """thumbor's trim: the box of pixels farther than the tolerance (Euclidean, in RGB)
    from the top-left or bottom-right pixel (`corner`: where it now is, right
    and bottom or not). No smoothing, unlike libvips' find_trim.
    """
    x = image.width - 1 if corner[0] else 0
    y = image.height - 1 if corner[1] else 0
    colour = image[:3] if image.bands >= 3 else image
    reference = colour(x, y)
    distance = ((colour - reference) ** 2).bandmean() * colour.bands
    mask = (distance > settings.threshold**2).ifthenelse(1, 0).cast("uchar")
    across, down = projections(mask)
    if not any(across):
        return 0, 0, 0, 0
    left = next(i for i, v in enumerate(across) if v)
    right = len(across) - next(i for i, v in enumerate(reversed(across)) if v)
    top = next(i for i, v in enumerate(down) if v)
    bottom = len(down) - next(i for i, v in enumerate(reversed(down)) if v)
    return left, top, right - left, bottom - top


# The first runs once over all of an animation's frames: it is pointwise, and
# an ICC transform costs ~5 ms to set up, which per frame took a 60-frame
# 400x250 WebP with a profile to 100 px in 1.0 s instead of 0.68 (in process,
# median of 5). The others run frame by frame.
PREPARE_ALL_FRAMES: tuple[PrepareStep, ...] = (to_processing_colourspace,)
PREPARE_EACH_FRAME: tuple[PrepareStep, ...] = (orient, trim)


# --- STEPS --------------------------------------------------------------------


def crop(image: pyvips.Image, options: ProcessingOptions, ctx: PipelineContext) -> pyvips.Image:
    """The `crop` option: an area of the source, before any resizing."""
    plan = ctx.plan
    if not plan.crop_width and not plan.crop_height:
        return image
    # The plan counts source pixels; shrink-on-load may have decoded fewer.
    width = _to_loaded(plan.crop_width, ctx.load_scale_x, image.width)
    height = _to_loaded(plan.crop_height, ctx.load_scale_y, image.height)
    gravity = options.crop.gravity or options.gravity
    return _crop_by_gravity(image, width, height, gravity, ctx.load_scale_x, ctx, "crop")


def resize(image: pyvips.Image, options: ProcessingOptions, ctx: PipelineContext) -> pyvips.Image:
    width, height = ctx.plan.scaled_width, ctx.plan.scaled_height
    if (width, height) == (image.width, image.height):
        return image
    hscale, vscale = width / image.width, height / image.height
    return _premultiplied(image, lambda im: im.resize(hscale, vscale=vscale))


def crop_to_result(
    image: pyvips.Image, options: ProcessingOptions, ctx: PipelineContext
) -> pyvips.Image:
    """fill and fill-down: cut the resized image down to the requested box."""
    width = min(min_non_zero(ctx.plan.result_crop_width, image.width), image.width)
    height = min(min_non_zero(ctx.plan.result_crop_height, image.height), image.height)
    if (width, height) == (image.width, image.height):
        return image
    return _crop_by_gravity(
        image, width, height, options.gravity, ctx.plan.dpr_scale, ctx, "crop_to_result"
    )


def apply_filters(
    image: pyvips.Image, options: ProcessingOptions, ctx: PipelineContext
) -> pyvips.Image:
    if options.blur > 0:  # thumbor's blur() is its own (thumbor_filters)
        image = _blurred(image, options)
    if options.sharpen > 0:  # thumbor's sharpen() is its own (thumbor_filters)
        image = _sharpen(image, options.sharpen)
    if options.pixelate > 1:
        image = _pixelate(image, options.pixelate)
    return image


def _blurred(image: pyvips.Image, options: ProcessingOptions) -> pyvips.Image:
    return _premultiplied(image, lambda im: gaussian_blur(im, options.blur))


def colour_effects(
    image: pyvips.Image, options: ProcessingOptions, ctx: PipelineContext
) -> pyvips.Image:
    """imgproxy Pro's unsharp masking (as its mode says), then its colour effects,
    on the picture itself: before extend, padding and the watermark."""
    downscaled = min(ctx.plan.wscale, ctx.plan.hscale) < 1
    sharpened = options.sharpen > 0 or any(name == "sharpen" for name, _ in options.adjustments)
    if unsharp_applies(options.unsharp, downscaled, sharpened):
        image = unsharp_mask(image, options.unsharp)
    if options.effects.active:
        # Each effect reads the picture several times (its bands, the mix):
        # lazily, every read computed the resize again from the decode, and a
        # 300 px monochrome of a 1080x1920 PNG took 97 MiB where 36 do now.
        image = held(image)
    return apply_effects(image, options.effects)


def extend(image: pyvips.Image, options: ProcessingOptions, ctx: PipelineContext) -> pyvips.Image:
    if not options.extend or any(name == "fill" for name, _ in options.adjustments):
        return image  # thumbor's fill() is done in its place among its filters
    width = max(ctx.plan.target_width, image.width)
    height = max(ctx.plan.target_height, image.height)
    return _embed(image, width, height, options.extend_gravity, ctx.plan.dpr_scale)


def thumbor_filters(
    image: pyvips.Image, options: ProcessingOptions, ctx: PipelineContext
) -> pyvips.Image:
    """thumbor's filters that run after its crop and resize, in URL order, as
    thumbor runs them (a grayscale() before fill(red) leaves the fill red; a
    watermark() after brightness() is not darkened): blur, sharpen, fill,
    round_corner, watermark, frame and the pixel filters with thumbor's
    arithmetic.

    thumbor turns its result with rotate() where the URL names it; the
    pipeline turned the source first. So the filters named before rotate()
    run on the result turned back (a watermark turns with the picture), and
    the turn is made again after them.
    """
    if not options.adjustments:
        return image  # an imgproxy URL, or a thumbor one without filters
    names = [name for name, _ in options.adjustments]
    # The source was turned by every rotate() at once; a filter sees the
    # picture turned only by the rotate()s named before it. So the rotate()s
    # after the first filter are undone, and made again where they stand.
    first_filter = next((i for i, name in enumerate(names) if name != "rotate"), len(names))
    later = [
        int(args[0]) for i, (name, args) in enumerate(options.adjustments)
        if name == "rotate" and i > first_filter
    ]  # fmt: skip
    turned_back = sum(later) % 360
    if turned_back:
        image = image.rot(f"d{360 - turned_back}")
    # fill() and upscale() read thumbor's request: the URL's box, a side it
    # left open still 0, before the turn or after it (the plan's turned back).
    plan = ctx.plan
    if options.thumbor_open_side:
        plan = replace(plan, **{f"target_{options.thumbor_open_side}": 0})
    if options.rotate in (90, 270):
        plan = replace(plan, target_width=plan.target_height, target_height=plan.target_width)
    fill_ctx = replace(ctx, plan=plan)
    # The n-th watermark() draws the n-th mark (none where they were not loaded: /info).
    marks = iter(zip(options.thumbor_watermarks, ctx.thumbor_marks, strict=False))
    for index, (name, args) in enumerate(options.adjustments):
        if name == "rotate":
            clockwise = int(args[0]) % 360
            if index > first_filter and clockwise:
                image = image.rot(f"d{clockwise}")
        elif name == "fill":
            image = _fill(image, options, fill_ctx)
        elif name == "upscale":
            image = _upscale(image, fill_ctx.plan.target_width, fill_ctx.plan.target_height)
        elif name == "round_corner":
            image = round_corners(image, options, ctx)
        elif name == "watermark":
            paired = next(marks, None)
            if paired is not None:
                image = thumbor_watermark(image, *paired)
        elif name == "frame":
            # Drawn where it stands among the filters; /info runs without the patch.
            image = image if ctx.thumbor_frame is None else frame(image, ctx.thumbor_frame)
        else:
            image = ADJUSTMENTS[name](image, args)
    return image


def _fill(image: pyvips.Image, options: ProcessingOptions, ctx: PipelineContext) -> pyvips.Image:
    """thumbor's fill(): the picture on a canvas of the asked box, centred;
    what overflows it is cut (a fit-in result turned by rotate() first)."""
    width = ctx.plan.target_width or image.width
    height = ctx.plan.target_height or image.height
    if options.thumbor_fill:
        # Its canvas is made from the whole picture, as thumbor's; the paste cuts.
        return _thumbor_fill(image, width, height, options)
    if image.width > width or image.height > height:
        # thumbor's offsets, (box - picture) // 2, are floored below zero too.
        left, top = -min(0, (width - image.width) // 2), -min(0, (height - image.height) // 2)
        image = image.crop(left, top, min(width, image.width), min(height, image.height))
    # thumbor's offsets, floored (imgproxy's centre rounds: a pixel apart at odd gaps).
    image = _embed_at(
        image, width, height, (width - image.width) // 2, (height - image.height) // 2
    )
    if options.background is not None and image.hasalpha():
        # fill(colour, true): painted now, so the filters after it see the colour.
        # An opaque picture already the box's size has nothing to paint; a grey
        # one (grayscale() before) goes on a coloured paint.
        if image.bands < 4:
            image = image.colourspace("srgb")
        image = image.flatten(background=list(options.background)).cast("uchar")
    return image


def _upscale(image: pyvips.Image, width: int, height: int) -> pyvips.Image:
    """thumbor's upscale(): a picture smaller than the URL's box on both sides
    grows to fit in it, the other side truncated to whole pixels."""
    if not (width and height) or image.width >= width or image.height >= height:
        return image
    if image.width / width >= image.height / height:
        width, height = width, int(image.height * width / image.width)
    else:
        width, height = int(image.width * height / image.height), height
    return _premultiplied(
        image, lambda picture: picture.resize(width / image.width, vscale=height / image.height)
    )


def held(image: pyvips.Image) -> pyvips.Image:
    """`image` computed once and held in memory, for a step that reads it more
    than once: a lazy image is computed again, from the decode on, at every
    read. Not watched for a stop (interrupt.watch): the one clean-clone run
    with a watch here lost a test worker to a crash, which no run without it
    had; the encode that follows is watched."""
    return image.copy_memory()


def _thumbor_fill(
    image: pyvips.Image, width: int, height: int, options: ProcessingOptions
) -> pyvips.Image:
    """thumbor's fill: the image centred on a canvas of a colour ("rrggbb"), of
    the image's mean colour (integer; "auto"), or of the image blurred (thumbor's
    radius 50) and stretched to the box ("blur"). thumbor pastes the picture as
    it is, so its transparency stays (the canvas is opaque) unless
    fill_transparent blends it onto the canvas; a picture larger than the box
    (turned by rotate() first) is cut by the paste."""
    if (width, height) == (image.width, image.height):
        return image
    mode = options.thumbor_fill
    left, top = (width - image.width) // 2, (height - image.height) // 2
    if mode in ("auto", "blur"):
        image = held(image)  # read for the canvas (three means, or the blur) and pasted
    elif image.bands - image.hasalpha() < 3:
        image = image.colourspace("srgb")  # a grey picture (grayscale()) on a coloured canvas
    colour = image[: image.bands - 1] if image.hasalpha() else image
    if mode == "auto":
        mean = [int(colour[band].avg()) for band in range(colour.bands)]
        canvas = (pyvips.Image.black(width, height, bands=colour.bands) + mean).cast("uchar")
    elif mode == "blur":
        # The picture blurred as thumbor's blur(50) blurs it, its alpha too:
        # thumbor's canvas is as transparent as the picture.
        blurred = thumbor_blur(image, FILL_BLUR_RADIUS)
        canvas = blurred.resize(width / image.width, vscale=height / image.height).cast("uchar")
        canvas = canvas.crop(0, 0, min(width, canvas.width), min(height, canvas.height))
        canvas = canvas.embed(0, 0, width, height, extend="copy")
    else:
        paint = list(bytes.fromhex(mode))  # "rrggbb", as thumbor_filters reads colours
        canvas = (pyvips.Image.black(width, height, bands=3) + paint).cast("uchar")
    canvas = canvas.copy(interpretation=image.interpretation)
    if not image.hasalpha():
        return canvas.insert(image, left, top)
    if options.thumbor_fill_transparent:
        placed = image.embed(left, top, width, height)
        blended = canvas.composite2(placed, "over").cast("uchar")
        return blended if canvas.hasalpha() else blended[: colour.bands]
    if not canvas.hasalpha():
        canvas = canvas.bandjoin(255)
    return canvas.insert(image, left, top)


def extend_aspect_ratio(
    image: pyvips.Image, options: ProcessingOptions, ctx: PipelineContext
) -> pyvips.Image:
    if not options.extend_aspect_ratio or not ctx.plan.aspect_width:
        return image
    width = max(ctx.plan.aspect_width, image.width)
    height = max(ctx.plan.aspect_height, image.height)
    return _embed(image, width, height, options.extend_aspect_ratio_gravity, ctx.plan.dpr_scale)


def padding(image: pyvips.Image, options: ProcessingOptions, ctx: PipelineContext) -> pyvips.Image:
    top, right, bottom, left = ctx.plan.padding
    if not any((top, right, bottom, left)):
        return image
    base = image if image.hasalpha() else image.addalpha()
    return base.embed(
        left,
        top,
        image.width + left + right,
        image.height + top + bottom,
        extend="background",
        background=[0, 0, 0, 0],
    )


def flatten(image: pyvips.Image, options: ProcessingOptions, ctx: PipelineContext) -> pyvips.Image:
    """Paint transparency: with `background` when set, else white where alpha can't go."""
    if not image.hasalpha():
        return image
    if options.background is None and ctx.output_format in FORMATS_WITH_ALPHA:
        return image
    return image.flatten(background=list(options.background or WHITE)).cast("uchar")


def watermark(
    image: pyvips.Image, options: ProcessingOptions, ctx: PipelineContext
) -> pyvips.Image:
    mark, settings = ctx.watermark, options.watermark
    if settings is None and options.watermark_text:
        settings = TEXT_ONLY  # a text asked for without `watermark`: shown, centred
    if mark is None or settings is None:
        return image
    if settings.scale > 0:
        box_w = max(1, round(image.width * settings.scale))
        box_h = max(1, round(image.height * settings.scale))
        mark = mark.thumbnail_image(box_w, height=box_h)
    if settings.opacity < 1:
        mark = mark[: mark.bands - 1].bandjoin(mark[mark.bands - 1] * settings.opacity)
    if settings.position is WatermarkPosition.REPLICATE:
        gap_x = max(0, round(settings.x * ctx.plan.dpr_scale))
        gap_y = max(0, round(settings.y * ctx.plan.dpr_scale))
        tile = mark.embed(0, 0, mark.width + gap_x, mark.height + gap_y, background=[0, 0, 0, 0])
        across = -(-image.width // tile.width)
        down = -(-image.height // tile.height)
        layer = tile.replicate(across, down).crop(0, 0, image.width, image.height)
    else:
        gravity = Gravity(GravityType(settings.position.value), settings.x, settings.y)
        left, top = calc_position(
            image.width, image.height, mark.width, mark.height, gravity, ctx.plan.dpr_scale
        )
        layer = mark.embed(left, top, image.width, image.height, background=[0, 0, 0, 0])
    return _over(image, layer)


TEXT_ONLY = Watermark(1.0)


def _over(image: pyvips.Image, layer: pyvips.Image) -> pyvips.Image:
    """A layer the size of the image (with alpha) composited over it; alpha kept only if it had."""
    marked = image.composite2(layer.cast(image.format), "over")
    if not image.hasalpha():
        marked = marked[: marked.bands - 1]
    return marked.cast("uchar")


def round_corners(
    image: pyvips.Image, options: ProcessingOptions, ctx: PipelineContext
) -> pyvips.Image:
    """thumbor's round_corner: elliptical corners painted with a colour, or transparent."""
    if options.round_corner is None:
        return image
    a, b, red, green, blue, transparent = options.round_corner
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{image.width}" height="{image.height}">'
        f'<rect width="{image.width}" height="{image.height}" rx="{a}" ry="{b}" fill="#fff"/>'
        "</svg>"
    )
    inside = pyvips.Image.svgload_buffer(svg.encode())[3]  # the shape's coverage, 0..255
    colour, alpha = split_alpha(image)
    if transparent:
        opaque = alpha if alpha is not None else colour.new_from_image(255).cast("uchar")
        return join_alpha(colour, opaque * inside / 255)
    paint = colour.new_from_image([red, green, blue][: colour.bands]).cast("uchar")
    blended = (colour * inside + paint * (255 - inside)) / 255
    return join_alpha(blended.copy(interpretation=colour.interpretation), alpha)


def thumbor_watermark(
    image: pyvips.Image, spec: ThumborWatermark, mark: pyvips.Image
) -> pyvips.Image:
    """thumbor's watermark(): its placement, repeat and alpha rules, pasted "over"."""
    if spec.alpha:
        lowered = mark[3] - percent_of_255(spec.alpha)  # thumbor's _alpha: a fixed step
        mark = mark[:3].bandjoin(lowered.cast("uchar"))
    if spec.width_ratio or spec.height_ratio:
        width, height = _ratio_size(image, mark, spec.width_ratio, spec.height_ratio)
        mark = mark.resize(width / mark.width, vscale=height / mark.height)
    cap = (
        spec.x == spec.y == "repeat"
        and _repeats(image.width, mark.width)[0] * _repeats(image.height, mark.height)[0] > 100
    )
    spots_x = _spots(spec.x, image.width, mark.width, cap)
    spots_y = _spots(spec.y, image.height, mark.height, cap)
    layer = pyvips.Image.black(image.width, image.height, bands=4).copy(interpretation="srgb")
    for left in spots_x:
        for top in spots_y:
            layer = layer.insert(mark, left, top)
    return _over(image if image.bands >= 3 else image.colourspace("srgb"), layer)


def _ratio_size(
    image: pyvips.Image, mark: pyvips.Image, width_ratio: float, height_ratio: float
) -> tuple[int, int]:
    max_w = image.width * width_ratio or mark.width * image.height * height_ratio / mark.height
    max_h = image.height * height_ratio or mark.height * max_w / mark.width
    if mark.width / max_w >= mark.height / max_h:
        return max(1, round(max_w)), max(1, round(mark.height * max_w / mark.width))
    return max(1, round(mark.width * max_h / mark.height)), max(1, round(max_h))


def _spots(position: str, length: int, size: int, cap: bool = False) -> list[int]:
    """Where thumbor pastes along one axis: one place, or the repeats of "repeat"."""
    if position.endswith("p"):
        sign = "-" if position.startswith("-") else ""
        position = f"{sign}{round(length * float(position.strip('-p')) / 100 + 1e-5)}"
    if position == "center":
        return [int((length - size) / 2)]
    if position != "repeat":
        value = int(position)
        return [length - size + value if position.startswith("-") else value]
    count, spare = _repeats(length, size)
    if cap:  # both axes repeat over 100 times: thumbor pastes 6 x 6, spread out
        count = min(6, count)
        spare = length - count * size
    gap = spare // (max(count, 2) - 1)
    return [i * gap + i * size for i in range(int(count))]


def _repeats(length: int, size: int) -> tuple[int, int]:
    """How many marks fit along an axis, and the room left, as thumbor counts them."""
    if length / size < 2:
        return math.ceil(length / size), 10
    return divmod(length, size)


STEPS: tuple[Step, ...] = (
    crop,
    resize,
    crop_to_result,
    apply_filters,
    colour_effects,
    extend,
    thumbor_filters,  # before flatten: transparent corners become the background
    extend_aspect_ratio,
    padding,
    flatten,
    watermark,
)


# --- helpers --------------------------------------------------------------------


def _to_loaded(size: int, scale: float, limit: int) -> int:
    return limit if size == 0 else min(limit, max(1, round(size * scale)))


def _crop_by_gravity(
    image: pyvips.Image,
    width: int,
    height: int,
    gravity: Gravity,
    offset_scale: float,
    ctx: PipelineContext,
    step: str,
) -> pyvips.Image:
    if gravity.type is GravityType.SMART:
        chosen = ctx.smart_windows.get(step)
        if chosen is not None:  # a later frame of an animation
            return image.crop(*chosen, width, height)
        # smartcrop reads all of its input to choose the window, then the
        # encoder reads the window again: from memory, not by running the
        # decode and the resize a second time (libvips' own thumbnail copies
        # too). 1.7x faster on a 14.7 MP PNG, 1.5x on an 8 MP JPEG at
        # 1200x800 (BENCHMARKS.md); footprint.py counts the copy.
        window = held(image).smartcrop(width, height, interesting="attention")
        # libvips' extract_area records the cut as negative offsets.
        ctx.smart_windows[step] = (-window.xoffset, -window.yoffset)
        return window
    left, top = calc_position(image.width, image.height, width, height, gravity, offset_scale)
    return image.crop(left, top, width, height)


def _embed(
    image: pyvips.Image, width: int, height: int, gravity: Gravity, offset_scale: float
) -> pyvips.Image:
    if (width, height) == (image.width, image.height):
        return image
    left, top = calc_position(width, height, image.width, image.height, gravity, offset_scale)
    return _embed_at(image, width, height, left, top)


def _embed_at(image: pyvips.Image, width: int, height: int, left: int, top: int) -> pyvips.Image:
    # Transparent now; `flatten` paints it when asked or when the format has no alpha.
    base = image if image.hasalpha() else image.addalpha()
    # As many zeros as bands: thumbor's grayscale() leaves grey and alpha.
    transparent = [0] * base.bands
    return base.embed(left, top, width, height, extend="background", background=transparent)


def _premultiplied(
    image: pyvips.Image, operation: Callable[[pyvips.Image], pyvips.Image]
) -> pyvips.Image:
    # Resampling straight alpha bleeds the colour of transparent pixels into
    # the edges; premultiplying first keeps them out.
    if not image.hasalpha():
        return operation(image)
    return operation(image.premultiply()).unpremultiply().cast("uchar")


# libvips' gaussblur runs a mask 3.6 sigma wide over every pixel. On 1600x900
# its integer path takes 290 ms at sigma 250 and, past its vector code, 10.8 s
# at 300 and minutes at 1000 (imgproxy's largest); in float (a picture with
# alpha, premultiplied) 2.9 s already at 100. A Gaussian that wide is smooth
# enough to compute on a copy shrunk by sigma / 16 and enlarged again: 31-59
# ms, within 1.4 levels of libvips' float result, edges included, where its
# own integer result is within 1.7 (bench/blur.py, BENCHMARKS.md).
BLUR_SHRINK_FROM = 100.0
BLUR_SHRINK_STEP = 16.0
# Only 8-bit pixels take libvips' vector code. A picture with alpha is blurred
# premultiplied, in float, 20x dearer (1.3 s at sigma 50 on 1600x900), so it
# takes the shrunk copy from the first sigma that shrinks by two, 32; there
# the result stays within one level of libvips' float one (bench/blur.py).
BLUR_SHRINK_FROM_NON_UCHAR = 2 * BLUR_SHRINK_STEP


def blur_shrink_factor(sigma: float, vectorised: bool) -> int:
    """How far gaussian_blur shrinks its copy: 1 where it calls libvips' own
    gaussblur at full size (`vectorised`: 8-bit pixels)."""
    if sigma < (BLUR_SHRINK_FROM if vectorised else BLUR_SHRINK_FROM_NON_UCHAR):
        return 1
    return int(sigma / BLUR_SHRINK_STEP)


def _blur_padding(sigma: float, factor: int) -> int:
    # The edges repeated as far as libvips' mask reaches (1.8 sigma at its
    # min_ampl of 0.2), in whole blocks: the shrunk copy's edges are then
    # averages of what libvips repeats at full size.
    return factor * math.ceil(2 * sigma / factor)


def shrunk_blur_pixels(width: int, height: int, sigma: float, vectorised: bool) -> int:
    """Pixels of the shrunk, blurred copy gaussian_blur holds in memory (float
    bands) for a `width` x `height` picture; 0 where it makes none."""
    factor = blur_shrink_factor(sigma, vectorised)
    if factor == 1:
        return 0
    edges = 2 * _blur_padding(sigma, factor) // factor
    return (math.ceil(width / factor) + edges) * (math.ceil(height / factor) + edges)


def gaussian_blur(image: pyvips.Image, sigma: float) -> pyvips.Image:
    """libvips' gaussblur(sigma), computed on a shrunk copy from BLUR_SHRINK_FROM
    (8-bit pixels) or BLUR_SHRINK_FROM_NON_UCHAR (any other format)."""
    factor = blur_shrink_factor(sigma, image.format == "uchar")
    if factor == 1:
        return image.gaussblur(sigma)
    pad = _blur_padding(sigma, factor)
    width = factor * math.ceil(image.width / factor)
    height = factor * math.ceil(image.height / factor)
    padded = image.embed(pad, pad, width + 2 * pad, height + 2 * pad, extend="copy")
    # The block mean is already a blur of variance (factor^2 - 1) / 12.
    rest = math.sqrt(sigma * sigma - (factor * factor - 1) / 12) / factor
    blurred = padded.shrink(factor, factor).gaussblur(rest, precision="float")
    # Held (1/factor^2 of the padded picture): each pixel of it is read for
    # many tiles of the enlargement, and without the copy each read shrank its
    # whole reach of the picture again (a full-size bl:1000 request on a 14.7 MP
    # picture with alpha took 70 s, 0.9 s with the copy; BENCHMARKS.md).
    blurred = held(blurred)
    enlarged = blurred.affine(
        [factor, 0, 0, factor],
        interpolate=pyvips.Interpolate.new("bilinear"),
        odx=(factor - 1) / 2,  # block centres onto their pixels' centre
        ody=(factor - 1) / 2,
        oarea=[pad, pad, image.width, image.height],
        extend="copy",
    )
    if image.format in ("float", "double"):
        return enlarged
    return enlarged.rint().cast(image.format)


def _sharpen(image: pyvips.Image, sigma: float) -> pyvips.Image:
    if not image.hasalpha():
        return image.sharpen(sigma=sigma).colourspace("srgb").cast("uchar")
    alpha = image[image.bands - 1]
    colour = image[: image.bands - 1].sharpen(sigma=sigma).colourspace("srgb").cast("uchar")
    return colour.bandjoin(alpha)


def _pixelate(image: pyvips.Image, size: int) -> pyvips.Image:
    size = min(size, image.width, image.height)
    if size <= 1:
        return image
    width, height = image.width, image.height
    # Pad to whole blocks by repeating the edge, average each block, blow it back up.
    padded = image.embed(0, 0, -(-width // size) * size, -(-height // size) * size, extend="copy")
    blocks = padded.shrink(size, size).cast(image.format)
    return blocks.zoom(size, size).crop(0, 0, width, height)
