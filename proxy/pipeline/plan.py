"""The geometry of a request, computed from sizes alone (pure arithmetic).

This follows imgproxy's documented resizing semantics: the scale factors
for fit/fill/fill-down/force/auto, min-width/min-height, zoom, dpr and
enlarge, then the result crop (fill) and the extend canvas. Keeping it free
of libvips makes it cheap to test exhaustively and lets the loader pick a
shrink-on-load factor before any pixel is decoded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from proxy.options.model import Gravity, GravityType, ProcessingOptions, ResizingType


def round_half_up(value: float) -> int:
    # Go's math.Round (half away from zero), which imgproxy's sizes use.
    return math.floor(value + 0.5) if value >= 0 else -math.floor(-value + 0.5)


def scale_size(size: int, factor: float) -> int:
    return 0 if size == 0 else round_half_up(size * factor)


def crop_size(source: int, crop: float) -> int:
    """crop >= 1: pixels; 0 < crop < 1: a fraction of the source; 0: no crop."""
    if crop == 0:
        return 0
    if crop >= 1:
        return min(int(crop), source)
    return max(1, scale_size(source, crop))


def min_non_zero(a: int, b: int) -> int:
    if a == 0:
        return b
    if b == 0:
        return a
    return min(a, b)


@dataclass(frozen=True, slots=True)
class Plan:
    source_width: int  # upright (after EXIF orientation)
    source_height: int
    crop_width: int  # 0: no crop before resize
    crop_height: int
    wscale: float  # source (after crop) -> scaled
    hscale: float
    dpr_scale: float
    scaled_width: int
    scaled_height: int
    target_width: int  # the requested box in output pixels (0: free)
    target_height: int
    result_crop_width: int  # crop after resize (fill); 0: none on that axis
    result_crop_height: int
    aspect_width: int  # extend_aspect_ratio canvas; 0: nothing to extend
    aspect_height: int
    padding: tuple[int, int, int, int]  # top, right, bottom, left, in output pixels

    @property
    def shrink(self) -> float:
        """How much the source shrinks at least: what shrink-on-load may take."""
        return 1.0 / max(self.wscale, self.hscale)

    @property
    def result_size(self) -> tuple[int, int]:
        """The largest canvas the steps build: scaled, cropped or extended, plus padding."""
        return self._extended(self.scaled_width, self.scaled_height)

    @property
    def output_size(self) -> tuple[int, int]:
        """At most what is encoded: the scaled picture cut to a fill's box (the
        scaled one can be far larger: a panorama filling a square), then
        extended to the box or the aspect ratio, plus padding."""
        return self._extended(
            min_non_zero(self.result_crop_width, self.scaled_width),
            min_non_zero(self.result_crop_height, self.scaled_height),
        )

    def _extended(self, width: int, height: int) -> tuple[int, int]:
        """A picture of this size extended to the box or the aspect ratio, and padded."""
        top, right, bottom, left = self.padding
        return (
            max(width, self.target_width, self.aspect_width) + left + right,
            max(height, self.target_height, self.aspect_height) + top + bottom,
        )


def _resolve_auto(src_w: float, src_h: float, dst_w: float, dst_h: float) -> ResizingType:
    same_orientation = (src_w - src_h >= 0) == (dst_w - dst_h >= 0)
    return ResizingType.FILL if same_orientation else ResizingType.FIT


def calc_scale(
    width: int, height: int, o: ProcessingOptions, vector: bool = False
) -> tuple[float, float, float]:
    src_w, src_h = float(width), float(height)
    dst_w = float(o.width) if o.width else src_w
    dst_h = float(o.height) if o.height else src_h
    wshrink = 1.0 if dst_w == src_w else src_w / dst_w
    hshrink = 1.0 if dst_h == src_h else src_h / dst_h

    if wshrink != 1 or hshrink != 1:
        kind = o.resizing_type
        if kind is ResizingType.AUTO:
            kind = _resolve_auto(src_w, src_h, dst_w, dst_h)
        if o.width == 0 and kind is not ResizingType.FORCE:
            wshrink = hshrink
        elif o.height == 0 and kind is not ResizingType.FORCE:
            hshrink = wshrink
        elif kind is ResizingType.FIT:
            wshrink = hshrink = max(wshrink, hshrink)
        elif kind in (ResizingType.FILL, ResizingType.FILL_DOWN):
            wshrink = hshrink = min(wshrink, hshrink)

    wshrink /= o.zoom_x
    hshrink /= o.zoom_y

    dpr_scale = o.dpr
    # A vector source has no pixel size to protect: it renders sharp at any scale.
    if not o.enlarge and not vector:
        least = min(wshrink, hshrink)
        if least < 1:
            wshrink /= least
            hshrink /= least
            if not o.extend:
                dpr_scale /= least
        # Never let dpr enlarge past the source either.
        dpr_scale = min(dpr_scale, wshrink, hshrink)

    if o.min_width and (floor := src_w / o.min_width) < wshrink:
        hshrink /= wshrink / floor
        wshrink = floor
    if o.min_height and (floor := src_h / o.min_height) < hshrink:
        wshrink /= hshrink / floor
        hshrink = floor

    wshrink /= dpr_scale
    hshrink /= dpr_scale
    # At least one pixel survives on each axis.
    wshrink = min(wshrink, src_w)
    hshrink = min(hshrink, src_h)
    return 1.0 / wshrink, 1.0 / hshrink, dpr_scale


def plan_geometry(
    source_width: int, source_height: int, o: ProcessingOptions, vector: bool = False
) -> Plan:
    crop_w = crop_size(source_width, o.crop.width)
    crop_h = crop_size(source_height, o.crop.height)
    width_to_scale = crop_w or source_width
    height_to_scale = crop_h or source_height

    wscale, hscale, dpr_scale = calc_scale(width_to_scale, height_to_scale, o, vector)

    target_w = scale_size(o.width, dpr_scale * o.zoom_x)
    target_h = scale_size(o.height, dpr_scale * o.zoom_y)
    scaled_w = max(1, scale_size(width_to_scale, wscale))
    scaled_h = max(1, scale_size(height_to_scale, hscale))

    result_w, result_h = target_w, target_h
    if o.resizing_type is ResizingType.FILL_DOWN and not o.enlarge and target_w and target_h:
        # Too small to fill the box: crop to the box's aspect ratio instead.
        diff_w = target_w / scaled_w
        diff_h = target_h / scaled_h
        if diff_w > diff_h and diff_w > 1:
            result_w, result_h = scaled_w, scale_size(scaled_w, target_h / target_w)
        elif diff_h > diff_w and diff_h > 1:
            result_w, result_h = scale_size(scaled_h, target_w / target_h), scaled_h

    aspect_w = aspect_h = 0
    if o.extend_aspect_ratio and target_w and target_h:
        # The canvas that gives the result the requested aspect ratio.
        out_w = min_non_zero(scaled_w, result_w)
        out_h = min_non_zero(scaled_h, result_h)
        if target_h / out_h > target_w / out_w:
            aspect_w, aspect_h = out_w, scale_size(out_w, target_h / target_w)
        elif target_w / out_w > target_h / out_h:
            aspect_w, aspect_h = scale_size(out_h, target_w / target_h), out_h

    padding = tuple(round(side * dpr_scale) for side in o.padding)

    return Plan(
        source_width=source_width,
        source_height=source_height,
        crop_width=crop_w,
        crop_height=crop_h,
        wscale=wscale,
        hscale=hscale,
        dpr_scale=dpr_scale,
        scaled_width=scaled_w,
        scaled_height=scaled_h,
        target_width=target_w,
        target_height=target_h,
        result_crop_width=result_w,
        result_crop_height=result_h,
        aspect_width=aspect_w,
        aspect_height=aspect_h,
        padding=(padding[0], padding[1], padding[2], padding[3]),
    )


def calc_position(
    outer_width: int,
    outer_height: int,
    inner_width: int,
    inner_height: int,
    gravity: Gravity,
    offset_scale: float = 1.0,
) -> tuple[int, int]:
    """Top-left of an inner box placed in an outer one by gravity (imgproxy's rules).

    Offsets >= 1 are pixels (scaled by dpr); smaller ones are fractions of the
    outer size. The box is kept inside the outer one.
    """
    if gravity.type is GravityType.FOCUS_POINT:
        left = round(outer_width * gravity.x) - inner_width // 2
        top = round(outer_height * gravity.y) - inner_height // 2
    else:
        off_x = _offset(gravity.x, outer_width, offset_scale)
        off_y = _offset(gravity.y, outer_height, offset_scale)
        left = round((outer_width - inner_width + 1) / 2) + off_x
        top = round((outer_height - inner_height + 1) / 2) + off_y
        kind = gravity.type
        if kind in (GravityType.NORTH, GravityType.NORTH_EAST, GravityType.NORTH_WEST):
            top = off_y
        if kind in (GravityType.EAST, GravityType.NORTH_EAST, GravityType.SOUTH_EAST):
            left = outer_width - inner_width - off_x
        if kind in (GravityType.SOUTH, GravityType.SOUTH_EAST, GravityType.SOUTH_WEST):
            top = outer_height - inner_height - off_y
        if kind in (GravityType.WEST, GravityType.NORTH_WEST, GravityType.SOUTH_WEST):
            left = off_x
    left = max(0, min(left, outer_width - inner_width))
    top = max(0, min(top, outer_height - inner_height))
    return left, top


def _offset(value: float, size: int, offset_scale: float) -> int:
    # round() is round-half-even, as imgproxy's ScaleToEven/RoundToEven.
    if abs(value) >= 1:
        return round(value * offset_scale)
    return round(size * value)
