"""imgproxy Pro's colour effects and unsharp masking, as libvips operations.

imgproxy Pro is closed, so the arithmetic here is ours, from its documented
meaning: brightness adds to every channel, contrast stretches around
mid-grey, saturation scales chroma in CIE LCh, monochrome and duotone map
the image's luminance onto a palette, colorize lays a colour over the image
and gradient a colour ramping in from transparent. Each takes an 8-bit sRGB
image (with or without alpha) and gives one back; alpha is kept unless an
effect says otherwise.
"""

from __future__ import annotations

import math

import pyvips

from proxy.options.model import Colour, Effects, UnsharpMasking, UnsharpMode
from proxy.pipeline.thumbor_filters import join_alpha, split_alpha


def _colour_of(image: pyvips.Image) -> tuple[pyvips.Image, pyvips.Image | None]:
    colour, alpha = split_alpha(image)
    if colour.bands == 1:
        colour = colour.colourspace("srgb")
    return colour, alpha


def _luminance(colour: pyvips.Image) -> pyvips.Image:
    """Rec. 601 luma in 0..1: the grey a monochrome print of the image would have."""
    return (colour[0] * 0.299 + colour[1] * 0.587 + colour[2] * 0.114) / 255


def _mix(a: pyvips.Image, b: pyvips.Image, amount: float) -> pyvips.Image:
    return a * (1 - amount) + b * amount


def _palette(grey: pyvips.Image, stops: list[Colour]) -> pyvips.Image:
    """Grey 0..1 mapped linearly through the colours, evenly spaced from 0 to 1."""
    spans = len(stops) - 1
    position = grey * spans
    result = None
    for index in range(spans):
        low, high = stops[index], stops[index + 1]
        local = (position - index).cast("float")
        local = (local < 0).ifthenelse(0, (local > 1).ifthenelse(1, local))
        ramp = local * [h - lo for lo, h in zip(low, high, strict=True)] + list(low)
        inside = (position >= index) & (position <= index + 1) if spans > 1 else None
        result = ramp if result is None else inside.ifthenelse(ramp, result)
    return result


def brightness(colour: pyvips.Image, value: int) -> pyvips.Image:
    return colour + value


def contrast(colour: pyvips.Image, factor: float) -> pyvips.Image:
    return (colour - 127.5) * factor + 127.5


def saturation(colour: pyvips.Image, factor: float) -> pyvips.Image:
    lch = colour.cast("uchar").colourspace("lch")
    return (lch * [1, factor, 1]).colourspace("srgb")


def monochrome(colour: pyvips.Image, effects: Effects) -> pyvips.Image:
    """Black through the colour to white: the colour tints the middle tones."""
    toned = _palette(_luminance(colour), [(0, 0, 0), effects.monochrome_colour, (255, 255, 255)])
    return _mix(colour, toned, effects.monochrome)


def duotone(colour: pyvips.Image, effects: Effects) -> pyvips.Image:
    """The dark colour for the shadows, the light one for the highlights."""
    toned = _palette(_luminance(colour), [effects.duotone_dark, effects.duotone_light])
    return _mix(colour, toned, effects.duotone)


def _layer_over(
    colour: pyvips.Image, alpha: pyvips.Image | None, paint: Colour, cover: pyvips.Image | float
) -> tuple[pyvips.Image, pyvips.Image | None]:
    """A colour with coverage 0..1 composited over the image ("over", alpha included)."""
    if isinstance(cover, pyvips.Image):
        painted = cover * [float(c) for c in paint]
    else:
        painted = [c * cover for c in paint]
    if alpha is None:  # opaque: a plain mix, and it stays opaque
        return colour * (1 - cover) + painted, None
    under = alpha / 255
    out_alpha = cover + under * (1 - cover)
    blended = (colour * (under * (1 - cover)) + painted) / (out_alpha == 0).ifthenelse(1, out_alpha)
    return blended, out_alpha * 255


def colorize(
    colour: pyvips.Image, alpha: pyvips.Image | None, effects: Effects
) -> tuple[pyvips.Image, pyvips.Image | None]:
    """The colour over the whole image at the opacity; transparent parts take it
    too unless keep_alpha."""
    blended, new_alpha = _layer_over(colour, alpha, effects.colorize_colour, effects.colorize)
    return blended, (alpha if effects.colorize_keep_alpha else new_alpha)


def gradient(
    colour: pyvips.Image, alpha: pyvips.Image | None, effects: Effects
) -> tuple[pyvips.Image, pyvips.Image | None]:
    """The colour ramping from transparent (at `start`) to the opacity (at `stop`),
    along the direction: 0 degrees runs down, 90 to the left, clockwise."""
    width, height = colour.width, colour.height
    angle = math.radians(effects.gradient_angle)
    # Direction of growing opacity: 0 -> down (+y), 90 -> left (-x).
    dx, dy = -math.sin(angle), math.cos(angle)
    xyz = pyvips.Image.xyz(width, height)
    projected = xyz[0] * dx + xyz[1] * dy
    corners = [x * dx + y * dy for x in (0, width - 1) for y in (0, height - 1)]
    low, high = min(corners), max(corners)
    position = (projected - low) / max(high - low, 1e-9)
    span = effects.gradient_stop - effects.gradient_start
    ramp = (position - effects.gradient_start) / span
    ramp = (ramp < 0).ifthenelse(0, (ramp > 1).ifthenelse(1, ramp))
    return _layer_over(colour, alpha, effects.gradient_colour, ramp * effects.gradient)


def apply_effects(image: pyvips.Image, effects: Effects) -> pyvips.Image:
    """Every active effect, in imgproxy Pro's order."""
    active = effects.active
    if not active:
        return image
    colour, alpha = _colour_of(image)
    colour = colour.cast("float")
    for name in active:
        if name == "brightness":
            colour = brightness(colour, effects.brightness)
        elif name == "contrast":
            colour = contrast(colour, effects.contrast)
        elif name == "saturation":
            colour = saturation(_clipped(colour), effects.saturation)
        elif name == "monochrome":
            colour = monochrome(_clipped(colour), effects)
        elif name == "duotone":
            colour = duotone(_clipped(colour), effects)
        elif name == "colorize":
            colour, alpha = colorize(_clipped(colour), alpha, effects)
        elif name == "gradient":
            colour, alpha = gradient(_clipped(colour), alpha, effects)
    result = join_alpha(
        _clipped(colour).rint(), None if alpha is None else alpha.rint().cast("uchar")
    )
    return result.copy(interpretation="srgb")


def _clipped(values: pyvips.Image) -> pyvips.Image:
    return (values < 0).ifthenelse(0, (values > 255).ifthenelse(255, values))


def unsharp_applies(unsharp: UnsharpMasking, downscaled: bool, sharpened: bool) -> bool:
    """`sharpened`: the URL sharpens already (imgproxy's `sharpen`, thumbor's sharpen())."""
    if unsharp.mode is UnsharpMode.ALWAYS:
        return True
    return unsharp.mode is UnsharpMode.AUTO and downscaled and not sharpened


def unsharp_mask(image: pyvips.Image, unsharp: UnsharpMasking) -> pyvips.Image:
    """A 3x3 sharpening: the pixel plus (8 x itself - its neighbours) x weight / divider."""
    w = unsharp.weight
    centre = unsharp.divider + 8 * w
    mask = pyvips.Image.new_from_array(
        [[-w, -w, -w], [-w, centre, -w], [-w, -w, -w]], scale=unsharp.divider
    )
    colour, alpha = split_alpha(image)
    padded = colour.embed(1, 1, colour.width + 2, colour.height + 2, extend="copy")
    sharpened = padded.conv(mask, precision="float").crop(1, 1, colour.width, colour.height)
    return join_alpha(_clipped(sharpened).rint(), alpha).copy(interpretation=colour.interpretation)
