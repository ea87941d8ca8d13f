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

from proxy.options.model import THUMBOR_SMART, Gravity, GravityType, ProcessingOptions
from proxy.pipeline.faces import Box, Findings, faces_window
from proxy.pipeline.plan import Plan

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


def wants_features(options: ProcessingOptions) -> bool:
    return options.gravity.objects == THUMBOR_SMART


def findings_key(digest: str, options: ProcessingOptions) -> str:
    """What detection depends on: the source and what turns or cuts it first."""
    picture = [
        f"ar:{int(options.auto_rotate)}",
        f"rot:{options.rotate}",
        f"fl:{int(options.flip_horizontal)}:{int(options.flip_vertical)}",
        f"pg:{options.page}",
        f"vts:{options.video_second}",
        f"t:{options.trim.canonical_args() if options.trim else ''}",
        f"features:{int(wants_features(options))}",
    ]
    return f"{digest}/{'/'.join(picture)}"


def focused(options: ProcessingOptions, findings: Findings, plan: Plan) -> ProcessingOptions:
    """`options` with its detecting gravities replaced by focus points."""
    changes: dict[str, object] = {}
    crop = options.crop
    cut = bool(plan.crop_width or plan.crop_height)
    if crop.enabled and crop.gravity is not None and crop.gravity.detects and cut:
        window = (
            plan.crop_width / plan.source_width if plan.crop_width else 1.0,
            plan.crop_height / plan.source_height if plan.crop_height else 1.0,
        )
        changes["crop"] = replace(crop, gravity=_concrete(crop.gravity, findings, window))
    # After a crop the resized image shows part of the source, which the
    # findings do not describe: the main gravity is placed on it as before.
    if options.gravity.detects and not cut:
        window = (
            min(1.0, plan.result_crop_width / plan.scaled_width) if plan.result_crop_width else 1.0,
            min(1.0, plan.result_crop_height / plan.scaled_height)
            if plan.result_crop_height
            else 1.0,
        )
        changes["gravity"] = _concrete(options.gravity, findings, window)
    return replace(options, **changes) if changes else options


def _concrete(gravity: Gravity, findings: Findings, window: tuple[float, float]) -> Gravity:
    if gravity.objects == THUMBOR_SMART:
        return _thumbor_centre(findings) or Gravity(GravityType.SMART)
    box = faces_window(findings.faces, *window)
    if box is None:
        return Gravity(GravityType.SMART)  # libvips' attention crop
    return Gravity(GravityType.FOCUS_POINT, box.left + box.width / 2, box.top + box.height / 2)


def _thumbor_centre(findings: Findings) -> Gravity | None:
    if findings.faces:
        raised = [_with_hair(face) for face in findings.faces]
        total = sum(face.area for face in raised)
        x = sum(face.area * (face.left + face.width / 2) for face in raised) / total
        y = sum(face.area * (face.top + face.height / 2) for face in raised) / total
        return Gravity(GravityType.FOCUS_POINT, x, y)
    if findings.features:
        count = len(findings.features)
        x = sum(point[0] for point in findings.features) / count
        y = sum(point[1] for point in findings.features) / count
        return Gravity(GravityType.FOCUS_POINT, x, y)
    return None


def _with_hair(face: Box) -> Box:
    # thumbor moves the box up unless that would leave the picture.
    raised = face.top - face.height * HAIR_OFFSET
    return face if raised < 0 else replace(face, top=raised)
