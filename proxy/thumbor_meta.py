"""thumbor's `meta/` answer: the operations of a request as thumbor's JSON engine
reports them, computed from the geometry the pipeline followed.

    {"thumbor": {"source": {"url", "width", "height", "frameCount"},
                 "operations": [{"type": "crop", "left", "top", "right", "bottom"},
                                {"type": "resize", "width", "height"},
                                {"type": "flip_horizontally"}, ...],
                 "target": {"width", "height"},
                 "focal_points": [{"x", "y", "z", "height", "width", "origin"}, ...]}}

thumbor's own rules, kept as they are (checked against real thumbor 7.8 by
tests/test_faces.py::test_meta_answers_thumbor_json):
- boxes and points are in the pixels of the upright source (after EXIF
  orientation and trim), before the flips and `rotate()`, which thumbor
  applies last; a crop after a crop counts in the first one's pixels;
- `source` is the size of what is served (thumbor's engine has done the
  operations by the time it reports), `target` that of the last crop or resize;
- focal points: `focal()` regions ("Explicit"), else the faces found (raised
  12% of their height for the hair, "Face Detection") or feature points
  ("alignment", as thumbor labels them), else the alignment's point; those
  outside a manual crop are dropped and the rest counted from its corner.

The pipeline turns and flips the source first and cuts after, so its boxes
are turned back here (`Turn`). What differs from thumbor is the face
detector (pixelpipe's looks at a reduced copy: the boxes agree within a few
pixels); the feature points are thumbor's own (found at full size).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from proxy.options.model import ANCHORS, THUMBOR_SMART, Gravity, GravityType, ProcessingOptions
from proxy.pipeline.faces import Findings
from proxy.pipeline.focus import HAIR_OFFSET
from proxy.pipeline.plan import Plan, calc_position, min_non_zero
from proxy.pipeline.process import Rendered, upright_size
from proxy.pipeline.turn import BoxEdges, Turn


def thumbor_meta(image: str, requested: ProcessingOptions, rendered: Rendered) -> dict[str, Any]:
    """thumbor's JSON for a request: `image` as its path names it, the options
    as parsed (their focal regions) and what the pipeline made of them."""
    plan, options = rendered.plan, rendered.options
    assert plan is not None and options is not None  # a rendered image always has them
    turn = Turn.of(options)
    operations: list[dict[str, Any]] = []
    if rendered.trim_box is not None:
        left, top, width, height = rendered.trim_box
        before_trim = upright_size(rendered.header, options)
        operations.append(_crop(turn.box((left, top, left + width, top + height), before_trim)))
    frame = (plan.source_width, plan.source_height)  # turned, trimmed
    kept = frame
    manual: BoxEdges | None = None
    if plan.crop_width or plan.crop_height:
        kept = (plan.crop_width or frame[0], plan.crop_height or frame[1])
        left, top = _placed(frame, kept, options.crop.gravity or options.gravity, 1.0)
        manual = turn.box((left, top, left + kept[0], top + kept[1]), frame)
        operations.append(_crop(manual))
    shown, result = _cut_and_scaled(plan, options, kept, turn, operations)
    # thumbor's full-fit-in resizes even to the size the picture has.
    full = requested.thumbor_box is not None and requested.thumbor_box.full
    if result != shown or full:
        operations.append({"type": "resize", "width": result[0], "height": result[1]})
    horizontal, vertical = turn.flip_horizontal, turn.flip_vertical
    if turn.quarter:  # the pipeline's flips were turned with the picture
        horizontal, vertical = vertical, horizontal
    if horizontal:
        operations.append({"type": "flip_horizontally"})
    if vertical:
        operations.append({"type": "flip_vertically"})
    # The last crop or resize; without one, the size served (after the filters).
    target = (rendered.image.width, rendered.image.height // rendered.frames)
    for operation in operations:
        if operation["type"] == "crop":
            target = (
                operation["right"] - operation["left"],
                operation["bottom"] - operation["top"],
            )
        elif operation["type"] == "resize":
            target = (operation["width"], operation["height"])
    points = _focal_points(requested, rendered.findings, turn, frame, manual)
    if not points:
        points = [_alignment_point(options, turn, kept)]
    return {
        "thumbor": {
            "source": {
                "url": quote(image),
                "width": rendered.image.width,
                "height": rendered.image.height // rendered.frames,
                "frameCount": rendered.header.frames,
            },
            "operations": operations,
            "target": {"width": target[0], "height": target[1]},
            "focal_points": points,
        }
    }


def _cut_and_scaled(
    plan: Plan,
    options: ProcessingOptions,
    kept: tuple[int, int],
    turn: Turn,
    operations: list[dict[str, Any]],
) -> tuple[tuple[int, int], tuple[int, int]]:
    """A fill's cut, as thumbor's crop of the (manually cropped) picture before
    its resize: appended to `operations`. Returns the upright size shown and
    the upright size it is scaled to."""
    scaled = (plan.scaled_width, plan.scaled_height)
    result = (
        min(min_non_zero(plan.result_crop_width, scaled[0]), scaled[0]),
        min(min_non_zero(plan.result_crop_height, scaled[1]), scaled[1]),
    )
    shown = kept
    if result != scaled:
        left, top = _placed(scaled, result, options.gravity, plan.dpr_scale)
        window = (
            max(0, round(left / plan.wscale)),
            max(0, round(top / plan.hscale)),
            min(kept[0], round((left + result[0]) / plan.wscale)),
            min(kept[1], round((top + result[1]) / plan.hscale)),
        )
        operations.append(_crop(turn.box(window, kept)))
        shown = (window[2] - window[0], window[3] - window[1])
    return turn.size(shown), turn.size(result)


def _placed(
    outer: tuple[int, int], inner: tuple[int, int], gravity: Gravity, scale: float
) -> tuple[int, int]:
    """Where the steps place a box. libvips' attention crop (a smart gravity
    that found nothing) chooses while encoding: reported at the centre, where
    thumbor puts a crop it has no focal point for."""
    if gravity.type in (GravityType.SMART, GravityType.OBJECT):
        gravity = Gravity()
    return calc_position(outer[0], outer[1], inner[0], inner[1], gravity, scale)


def _crop(edges: BoxEdges) -> dict[str, Any]:
    left, top, right, bottom = (round(edge) for edge in edges)
    return {"type": "crop", "left": left, "top": top, "right": right, "bottom": bottom}


def _focal_points(
    requested: ProcessingOptions,
    findings: Findings | None,
    turn: Turn,
    frame: tuple[int, int],
    manual: BoxEdges | None,
) -> list[dict[str, Any]]:
    points: list[dict[str, Any]] = []
    box = requested.thumbor_box
    if box is not None and box.focal:
        points = [
            _square(left, top, r - left, b - top, "Explicit") for left, top, r, b in box.focal
        ]
    elif findings is not None:  # found on the picture before the turns and flips
        width, height = turn.size(frame)
        for face in findings.faces:
            left, top = int(face.left * width), int(face.top * height)
            right = int((face.left + face.width) * width)
            bottom = int((face.top + face.height) * height)
            face_height = bottom - top
            raised = top - face_height * HAIR_OFFSET
            points.append(
                _square(
                    left,
                    raised if raised >= 0 else top,
                    right - left,
                    face_height,
                    "Face Detection",
                )
            )
        if not points:
            points = [_point(x * width, y * height) for x, y in findings.features]
    if manual is None:
        return points
    left, top, right, bottom = manual
    # thumbor's adjust_focal_points: inside the crop (edges included), from its corner.
    return [
        point | {"x": point["x"] - round(left), "y": point["y"] - round(top)}
        for point in points
        if left <= point["x"] <= right and top <= point["y"] <= bottom
    ]


def _square(left: float, top: float, width: int, height: int, origin: str) -> dict[str, Any]:
    """thumbor's FocalPoint.from_square: the centre, weighted by the area."""
    return {
        "x": int(left + width // 2),
        "y": int(top + height // 2),
        "z": width * height,
        "height": height,
        "width": width,
        "origin": origin,
    }


def _point(x: float, y: float) -> dict[str, Any]:
    return {"x": int(x), "y": int(y), "z": 1, "height": 1, "width": 1, "origin": "alignment"}


def _alignment_point(
    options: ProcessingOptions, turn: Turn, kept: tuple[int, int]
) -> dict[str, Any]:
    """thumbor's point for its alignment (the centre by default) on the picture
    after its manual crop."""
    gravity = options.gravity
    if gravity.type is GravityType.FOCUS_POINT or gravity.objects == THUMBOR_SMART:
        fx, fy = gravity.x, gravity.y  # smart's alignment, made a focus point when nothing is found
    else:
        fx, fy = ANCHORS.get(gravity.type, (0.5, 0.5))
    x, y = fx * kept[0], fy * kept[1]
    upright = turn.box((x, y, x, y), kept)
    return _point(upright[0], upright[1])
