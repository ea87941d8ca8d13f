"""thumbor's sizes that need the source's size, made concrete once it is known.

`orig`, adaptive-fit-in, full-fit-in and focal regions are kept in the
options as a `ThumborBox`; given the size of the (oriented, trimmed) source,
this turns them into plain imgproxy options, so the plan and the steps never
see thumbor's rules. Thumbor measures after its manual crop, so this does too.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from proxy.options.model import Crop, Gravity, GravityType, ProcessingOptions, ResizingType
from proxy.pipeline.plan import crop_size
from proxy.pipeline.turn import BoxEdges, Turn


def resolve_thumbor_box(
    options: ProcessingOptions,
    source_width: int,
    source_height: int,
    trimmed_from: tuple[int, int] = (0, 0),
    untrimmed: tuple[int, int] | None = None,
) -> ProcessingOptions:
    box = options.thumbor_box
    if box is None:
        return options
    changes: dict[str, Any] = {"thumbor_box": None}
    # thumbor cuts the upright source, then flips and turns the result; the
    # pipeline turns and flips the source first (`source_width` x
    # `source_height` is that picture): what thumbor keeps is found where the
    # turn takes it. `trimmed_from`: where trim's box starts in the upright
    # source; thumbor moves its crop by it. `untrimmed`: the turned picture's
    # size before trim, which no_upscale() clamps to (thumbor's happens first).
    turn = Turn.of(options)
    upright = turn.size((source_width, source_height))
    crop = options.crop
    kept: BoxEdges = (0, 0, *upright)  # what thumbor's crop keeps, in the upright source
    if box.crop and crop.enabled and crop.gravity is not None:
        edges = _thumbor_crop(crop, *upright, trimmed_from)
        crop = Crop()
        if edges is not None:
            kept = edges
            left, top, right, bottom = turn.forward(edges, upright)
            crop = Crop(right - left, bottom - top, Gravity(GravityType.NORTH_WEST, left, top))
        changes["crop"] = crop
    width_in = crop_size(source_width, crop.width) or source_width
    height_in = crop_size(source_height, crop.height) or source_height
    asked_width, asked_height = options.width, options.height
    if box.no_upscale:
        # thumbor clamps the asked sides to the source's, before its trim and crop.
        whole_width, whole_height = untrimmed or (source_width, source_height)
        asked_width, asked_height = min(asked_width, whole_width), min(asked_height, whole_height)
    # `orig` is a side of the upright picture: the other one once turned.
    orig_width, orig_height = (
        (box.orig_height, box.orig_width) if turn.quarter else (box.orig_width, box.orig_height)
    )
    width = width_in if orig_width else asked_width
    height = height_in if orig_height else asked_height
    # thumbor keeps the regions whose centre is inside its crop; with none
    # left, the alignment places the crop.
    regions = tuple(
        region
        for region in box.focal
        if kept[0] <= (region[0] + region[2]) / 2 <= kept[2]
        and kept[1] <= (region[1] + region[3]) / 2 <= kept[3]
    )
    if regions:
        changes["gravity"] = _focal_gravity(regions, kept, turn)
    fit_in = options.resizing_type is ResizingType.FIT
    if box.fill_one_side and bool(width) != bool(height):
        changes["thumbor_open_side"] = "height" if width else "width"
        width, height, resizing = _one_side(width, height, width_in, height_in, turn, options)
        changes["resizing_type"] = resizing
    if fit_in and box.fit_one_side and not box.full and bool(width) != bool(height):
        # thumbor's proportional side: round(), half to even, then the fit in
        # both. A picture inside that box is not resized, and the 0 stays (a
        # fill() after it fills the picture's own height, as thumbor's).
        filled_width = width or max(1, round(width_in * height / height_in))
        filled_height = height or max(1, round(height_in * width / width_in))
        if filled_width < width_in or filled_height < height_in:
            width, height = filled_width, filled_height
    if fit_in and box.adaptive and _turned(width_in, height_in, width, height):
        width, height = height, width
    if fit_in and box.full:
        width = width or max(1, round(width_in * height / height_in))
        height = height or max(1, round(height_in * width / width_in))
        # thumbor's full-fit-in: the side with the smaller ratio fits, so the image
        # covers the box; it enlarges too. The +1e-5 is thumbor's own rounding.
        if width_in / width <= height_in / height:
            width, height = width, round(height_in * width / width_in + 1e-5)
        else:
            width, height = round(width_in * height / height_in + 1e-5), height
        changes.update(resizing_type=ResizingType.FORCE, enlarge=True)
    changes.update(width=width, height=height)
    return replace(options, **changes)


def _one_side(
    width: int,
    height: int,
    width_in: int,
    height_in: int,
    turn: Turn,
    options: ProcessingOptions,
) -> tuple[int, int, ResizingType]:
    """thumbor's size asked on one side, not fit-in: the other in proportion
    (round(), half to even), then its auto_crop: when the two ratios round to
    the same two decimals the picture is resized to the box as it is (a
    fraction of a pixel squeezed), else a sliver is cut to the box's ratio
    first; stretch() never cuts. Reckoned upright, as thumbor does."""
    if turn.quarter:
        width, height, width_in, height_in = height, width, height_in, width_in
    # At least a pixel: a sliver asked for one side of a long crop (1x0 of a
    # 1600x100 one) would round its other side to nothing.
    box_width = width or max(1, round(height * width_in / height_in))
    box_height = height or max(1, round(width * height_in / width_in))
    same = round(width_in / height_in, 2) == round(box_width / box_height, 2)
    squeezed = same or options.resizing_type is ResizingType.FORCE
    if turn.quarter:
        box_width, box_height = box_height, box_width
    return box_width, box_height, ResizingType.FORCE if squeezed else ResizingType.FILL


def _turned(source_width: int, source_height: int, width: int, height: int) -> bool:
    # thumbor first gives a missing side in proportion, so a box with one
    # side has the picture's own orientation and never turns.
    if not (width and height):
        return False
    return (source_width < source_height and width > height) or (
        source_width > source_height and width < height
    )


def _thumbor_crop(
    crop: Crop, width: int, height: int, moved: tuple[int, int] = (0, 0)
) -> BoxEdges | None:
    """thumbor's AxB:CxD on the upright `width` x `height` source, moved back by
    what trim cut before it (`moved`): each edge clamped to the picture (a box
    past the right edge keeps what is left of it, not a box of the asked
    width moved back inside); None when nothing is left (thumbor then cuts
    nothing)."""
    assert crop.gravity is not None
    left, top = int(crop.gravity.x) - moved[0], int(crop.gravity.y) - moved[1]
    right, bottom = left + int(crop.width), top + int(crop.height)
    left, right = (min(max(edge, 0), width) for edge in (left, right))
    top, bottom = (min(max(edge, 0), height) for edge in (top, bottom))
    if left >= right or top >= bottom:
        return None
    return left, top, right, bottom


def _focal_gravity(
    regions: tuple[tuple[int, int, int, int], ...], kept: BoxEdges, turn: Turn
) -> Gravity:
    """The regions' centre of mass (weighted by area, as thumbor), as a focus
    point in the kept part of the upright source, then where the turn takes it."""
    total = sum(max(1, (r - left) * (b - top)) for left, top, r, b in regions)
    x = sum(max(1, (r - le) * (b - t)) * (le + r) / 2 for le, t, r, b in regions) / total
    y = sum(max(1, (r - le) * (b - t)) * (t + b) / 2 for le, t, r, b in regions) / total
    fx = min(max((x - kept[0]) / (kept[2] - kept[0]), 0.0), 1.0)
    fy = min(max((y - kept[1]) / (kept[3] - kept[1]), 0.0), 1.0)
    fx, fy, _right, _bottom = turn.forward((fx, fy, fx, fy))
    return Gravity(GravityType.FOCUS_POINT, fx, fy)
