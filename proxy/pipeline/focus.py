"""Smart gravities made concrete from what detection found.

imgproxy's `g:sm` and imgproxy Pro's `g:obj:face` keep the box around the
faces (all of them when the crop can hold them, else the largest and the
others that still fit) by centring the crop on it; with no face, `g:sm` is
libvips' attention crop as before, and so is `g:obj`. thumbor's `smart` is
thumbor's rule: the faces, each raised by 12% of its height for the hair and
weighted by its area, else its feature points, each of weight 1; the crop is
centred on their centre of mass. A gravity made concrete is a focus point
(`fp`), so the steps place the crop as for any other.
"""

from __future__ import annotations

from dataclasses import replace

import pyvips

from proxy.options.model import THUMBOR_SMART, Gravity, GravityType, ProcessingOptions
from proxy.pipeline.faces import Box, Findings, faces_window
from proxy.pipeline.plan import Plan, calc_position
from proxy.pipeline.turn import Turn

# thumbor's face detector raises each face by this much of its height (hair).
HAIR_OFFSET = 0.12


def needs_findings(options: ProcessingOptions, plan: Plan | None) -> bool:
    """Whether a smart gravity has a crop to place (`rs:fit` with g:sm cuts
    nothing: no detection). Without a plan yet (trim first), assume so."""
    crop_gravity = options.crop.gravity if options.crop.enabled else None
    if crop_gravity is not None and crop_gravity.detects:
        return True
    if not options.gravity.detects:
        return False
    if plan is None:
        return True
    cuts_width = 0 < plan.result_crop_width < plan.scaled_width
    cuts_height = 0 < plan.result_crop_height < plan.scaled_height
    return cuts_width or cuts_height


def steers(
    options: ProcessingOptions, plan: Plan | None, face_detection: bool, anyway: bool = False
) -> bool:
    """Whether a job detects: detection switched on and a smart gravity with a
    crop to place; `anyway`, a smart gravity detects with nothing to cut
    (thumbor's meta/ reports what was found). The footprint counts the same."""
    if not face_detection:
        return False
    return needs_findings(options, plan) or (anyway and options.gravity.detects)


def wants_features(options: ProcessingOptions) -> bool:
    return options.gravity.objects == THUMBOR_SMART


def findings_key(digest: str, options: ProcessingOptions) -> str:
    """What detection depends on: the source and what cuts it first. Not the
    `rotate` and flips: detection looks at the picture before them."""
    picture = [
        f"ar:{int(options.auto_rotate)}",
        f"pg:{options.page}",
        f"vts:{options.video_second}",
        f"t:{options.trim.canonical_args() if options.trim else ''}",
        f"features:{int(wants_features(options))}",
    ]
    return f"{digest}/{'/'.join(picture)}"


def untouched(image: pyvips.Image, options: ProcessingOptions) -> pyvips.Image:
    """The oriented picture before the `rotate` option and the flips, which
    `image` has had: the cascade finds upright faces only (a face turned a
    quarter was missed), and thumbor detects before its flips and rotate()."""
    if options.flip_vertical:
        image = image.flipver()
    if options.flip_horizontal:
        image = image.fliphor()
    if options.rotate:
        image = image.rot(f"d{360 - options.rotate}")
    return image


def turned(findings: Findings, options: ProcessingOptions) -> Findings:
    """Findings on the untouched picture, as they lie once it is turned by
    `rotate` (clockwise) and then flipped."""
    turn = Turn.of(options)
    faces = (turn.forward(face.edges) for face in findings.faces)
    points = (turn.forward((x, y, x, y)) for x, y in findings.features)
    return Findings(
        tuple(Box(left, top, right - left, bottom - top) for left, top, right, bottom in faces),
        tuple((left, top) for left, top, _right, _bottom in points),
    )


def focused(options: ProcessingOptions, findings: Findings, plan: Plan) -> ProcessingOptions:
    """`options` with its detecting gravities replaced by focus points;
    `findings` are the untouched picture's (see `untouched`)."""
    changes: dict[str, object] = {}
    crop = options.crop
    cut = bool(plan.crop_width or plan.crop_height)
    if crop.enabled and crop.gravity is None and options.gravity.detects:
        # A crop without a gravity of its own is placed by the main one (the
        # steps read it so): made explicit, so it is placed on the faces too.
        crop = replace(crop, gravity=options.gravity)
    if crop.enabled and crop.gravity is not None and crop.gravity.detects and cut:
        window = (
            plan.crop_width / plan.source_width if plan.crop_width else 1.0,
            plan.crop_height / plan.source_height if plan.crop_height else 1.0,
        )
        crop = replace(crop, gravity=_concrete(crop.gravity, findings, window, options))
        changes["crop"] = crop
    if options.gravity.detects:
        # After a crop the findings inside it count, from its corner (as
        # thumbor counts its focal points after a manual crop).
        region = _crop_region(crop.gravity or options.gravity, plan) if cut else (0, 0, 1, 1)
        window = (
            min(1.0, plan.result_crop_width / plan.scaled_width) if plan.result_crop_width else 1.0,
            min(1.0, plan.result_crop_height / plan.scaled_height)
            if plan.result_crop_height
            else 1.0,
        )
        changes["gravity"] = _concrete(options.gravity, findings, window, options, region)
    return replace(options, **changes) if changes else options


Region = tuple[float, float, float, float]  # left, top, right, bottom: fractions


def _crop_region(gravity: Gravity, plan: Plan) -> Region:
    """Where the `crop` option cut, as fractions of the picture it cut."""
    width, height = plan.source_width, plan.source_height
    kept_width, kept_height = plan.crop_width or width, plan.crop_height or height
    if gravity.detects:
        gravity = Gravity()  # placed by libvips' attention crop: not known here
    left, top = calc_position(width, height, kept_width, kept_height, gravity)
    return (
        left / width,
        top / height,
        (left + kept_width) / width,
        (top + kept_height) / height,
    )


def _concrete(
    gravity: Gravity,
    findings: Findings,
    window: tuple[float, float],
    options: ProcessingOptions,
    region: Region = (0, 0, 1, 1),
) -> Gravity:
    if gravity.objects == THUMBOR_SMART:
        # thumbor's points (faces with their hair raised upwards, or features)
        # on the untouched picture, then turned.
        points = _thumbor_points(findings)
        spots = turned(Findings((), tuple((x, y) for x, y, _weight in points)), options)
        inside = [
            (_within(x, region[0], region[2]), _within(y, region[1], region[3]), weight)
            for (x, y), (_x, _y, weight) in zip(spots.features, points, strict=True)
            if _inside(x, y, region)
        ]
        if not inside:
            # thumbor's focal point is then its alignment's (held in x and y).
            return Gravity(GravityType.FOCUS_POINT, gravity.x, gravity.y)
        total = sum(weight for _x, _y, weight in inside)
        x = sum(x * weight for x, _y, weight in inside) / total
        y = sum(y * weight for _x, y, weight in inside) / total
        return Gravity(GravityType.FOCUS_POINT, x, y)
    faces = [
        _face_within(face, region)
        for face in turned(findings, options).faces
        if _inside(face.left + face.width / 2, face.top + face.height / 2, region)
    ]
    box = faces_window(tuple(faces), *window)
    if box is None:
        return Gravity(GravityType.SMART)  # libvips' attention crop
    return Gravity(GravityType.FOCUS_POINT, box.left + box.width / 2, box.top + box.height / 2)


# Fractions of a turned or mirrored picture miss an edge by a rounding
# error (1 - 0.503125 is not 318 / 640): a point on the crop's edge, which
# thumbor keeps (its bounds are inclusive, in whole pixels), was dropped.
_EDGE = 1e-9


def _inside(x: float, y: float, region: Region) -> bool:
    return (
        region[0] - _EDGE <= x <= region[2] + _EDGE and region[1] - _EDGE <= y <= region[3] + _EDGE
    )


def _within(value: float, start: float, end: float) -> float:
    return (value - start) / (end - start)


def _face_within(face: Box, region: Region) -> Box:
    """A face as fractions of the region, cut to it."""
    left = max(0.0, _within(face.left, region[0], region[2]))
    top = max(0.0, _within(face.top, region[1], region[3]))
    right = min(1.0, _within(face.left + face.width, region[0], region[2]))
    bottom = min(1.0, _within(face.top + face.height, region[1], region[3]))
    return Box(left, top, right - left, bottom - top)


def _thumbor_points(findings: Findings) -> list[tuple[float, float, float]]:
    """thumbor's focal points: each face's centre with its hair, weighted by
    its area; else the feature points, of weight 1."""
    if findings.faces:
        raised = [_with_hair(face) for face in findings.faces]
        return [
            (face.left + face.width / 2, face.top + face.height / 2, face.area) for face in raised
        ]
    return [(x, y, 1.0) for x, y in findings.features]


def _with_hair(face: Box) -> Box:
    # thumbor moves the box up unless that would leave the picture.
    raised = face.top - face.height * HAIR_OFFSET
    return face if raised < 0 else replace(face, top=raised)
