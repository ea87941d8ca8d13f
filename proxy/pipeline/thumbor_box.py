"""thumbor's sizes that need the source's size, made concrete once it is known.

`orig`, adaptive-fit-in, full-fit-in and focal regions are kept in the
options as a `ThumborBox`; given the size of the (oriented, trimmed) source,
this turns them into plain imgproxy options, so the plan and the steps never
see thumbor's rules. Thumbor measures after its manual crop, so this does too.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from proxy.options.model import Gravity, GravityType, ProcessingOptions, ResizingType
from proxy.pipeline.plan import crop_size


def resolve_thumbor_box(
    options: ProcessingOptions, source_width: int, source_height: int
) -> ProcessingOptions:
    box = options.thumbor_box
    if box is None:
        return options
    crop = options.crop
    width_in = crop_size(source_width, crop.width) or source_width
    height_in = crop_size(source_height, crop.height) or source_height
    width = width_in if box.orig_width else options.width
    height = height_in if box.orig_height else options.height
    changes: dict[str, Any] = {"thumbor_box": None}
    if box.focal:
        changes["gravity"] = _focal_gravity(box.focal, options, width_in, height_in)
    fit_in = options.resizing_type is ResizingType.FIT
    if fit_in and box.adaptive and _turned(width_in, height_in, width, height):
        width, height = height, width
    if fit_in and box.full:
        width = width or round(width_in * height / height_in)
        height = height or round(height_in * width / width_in)
        # thumbor's full-fit-in: the side with the smaller ratio fits, so the image
        # covers the box; it enlarges too. The +1e-5 is thumbor's own rounding.
        if width_in / width <= height_in / height:
            width, height = width, round(height_in * width / width_in + 1e-5)
        else:
            width, height = round(width_in * height / height_in + 1e-5), height
        changes.update(resizing_type=ResizingType.FORCE, enlarge=True)
    changes.update(width=width, height=height)
    return replace(options, **changes)


def _turned(source_width: int, source_height: int, width: int, height: int) -> bool:
    return (source_width < source_height and width > height) or (
        source_width > source_height and width < height
    )


def _focal_gravity(
    regions: tuple[tuple[int, int, int, int], ...],
    options: ProcessingOptions,
    width: int,
    height: int,
) -> Gravity:
    """The regions' centre of mass (weighted by area, as thumbor), as a focus point."""
    offset_x = offset_y = 0.0
    gravity = options.crop.gravity
    if options.crop.enabled and gravity is not None:
        offset_x, offset_y = gravity.x, gravity.y  # a manual crop: nowe with its offsets
    total = sum(max(1, (r - left) * (b - top)) for left, top, r, b in regions)
    x = sum(max(1, (r - le) * (b - t)) * (le + r) / 2 for le, t, r, b in regions) / total
    y = sum(max(1, (r - le) * (b - t)) * (t + b) / 2 for le, t, r, b in regions) / total
    fx = min(max((x - offset_x) / width, 0.0), 1.0)
    fy = min(max((y - offset_y) / height, 0.0), 1.0)
    return Gravity(GravityType.FOCUS_POINT, fx, fy)
