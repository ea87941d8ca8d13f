"""The /info report: the source as it came, the result as it would be served.

The result is measured against the processed image before encoding (the
same pixels the encoder was given), so the numbers say what compression
alone cost: bytes, compression ratio, MSE, PSNR and SSIM.
"""

from __future__ import annotations

import bisect
import itertools
import math
from dataclasses import replace
from typing import Any

import pyvips

from proxy.options.model import ProcessingOptions
from proxy.pipeline.auto_quality import AutoQualityMemory
from proxy.pipeline.encode import EncoderSettings
from proxy.pipeline.faces import Findings, FindingsMemory
from proxy.pipeline.load import decode_result
from proxy.pipeline.metrics import METRICS_MAX_PIXELS, distortion
from proxy.pipeline.process import (
    ProcessedImage,
    ProcessingLimits,
    Rendered,
    inspect_image,
    source_header,
    upright_size,
)
from proxy.pipeline.turn import Turn


def image_report(
    data: bytes,
    options: ProcessingOptions,
    limits: ProcessingLimits,
    watermark: pyvips.Image | None,
    encoder: EncoderSettings,
    auto_memory: AutoQualityMemory | None = None,
    source_digest: str = "",
    findings_memory: FindingsMemory | None = None,
) -> dict[str, Any]:
    """Blocking and CPU-bound (it processes, encodes and decodes): a worker thread."""
    processed, rendered = inspect_image(
        data,
        options,
        limits,
        watermark,
        encoder,
        (),
        auto_memory,
        source_digest,
        findings_memory,
        hold=True,  # the metrics below read the pixels again: computed once
    )
    header = rendered.header if rendered is not None else source_header(data, options, limits)
    findings = rendered.findings if rendered is not None else None
    return {
        "source": {
            "format": header.format,
            "width": header.width,
            "height": header.height,
            "bytes": len(data),
            "orientation": header.orientation,
            "frames": header.frames,
            "faces": faces_report(findings, rendered, options),
        },
        "result": result_report(processed, rendered, len(data)),
        # imgproxy Pro's colour effects that ran, in their order, and its text
        # watermark with how it was shaped (empty: none).
        "effects": list(options.effects.active) + watermark_effects(options),
    }


def watermark_effects(options: ProcessingOptions) -> list[str]:
    if not options.watermark_text:
        return []
    shaped = [
        ("watermark_rotate", options.watermark_rotate),
        ("watermark_shadow", options.watermark_shadow),
    ]
    return ["watermark_text"] + [name for name, value in shaped if value]


def faces_report(
    findings: Findings | None, rendered: Rendered | None, options: ProcessingOptions
) -> list[dict[str, int]] | None:
    """Faces as boxes in the upright source's pixels (EXIF orientation
    applied, `rotate` and the flips not); None when detection did
    not run: no smart gravity with a crop to place, or switched off. (Always
    detecting made every /info pay a second decode and the detector.)"""
    if findings is None or rendered is None:
        return None
    # Detection looked at the picture trim kept, before `rotate` and the flips.
    left, top, right, bottom = 0.0, 0.0, *upright_size(rendered.header, _unturned(options))
    if rendered.trim_box is not None:
        x, y, width, height = rendered.trim_box
        turn = Turn.of(options)
        before_trim = upright_size(rendered.header, options)
        left, top, right, bottom = turn.box((x, y, x + width, y + height), before_trim)
    width, height = right - left, bottom - top
    return [
        {
            "left": round(left + face.left * width),
            "top": round(top + face.top * height),
            "width": round(face.width * width),
            "height": round(face.height * height),
        }
        for face in findings.faces
    ]


def _unturned(options: ProcessingOptions) -> ProcessingOptions:
    return replace(options, rotate=0, flip_horizontal=False, flip_vertical=False)


def frames_as_shown(
    answer: pyvips.Image, reference: pyvips.Image, frames: int
) -> tuple[pyvips.Image, int]:
    """The answer's frames that are on screen at each of the reference's frames,
    and how many frames the answer has.

    GIF's and WebP's animation encoders fold a frame identical to the one
    before it into that one (its delay added): a source with a repeated frame,
    or frames made alike by an effect, is answered with fewer frames than were
    encoded. Each reference frame is then matched with the answer's frame
    shown at its middle, on both timelines scaled to their length (GIF keeps
    delays in hundredths of a second, so the lengths can differ a little).
    """
    page_height = reference.height // frames
    if answer.width != reference.width:
        return answer, frames  # not the strip encoded: the comparison refuses it
    count = max(1, answer.height // page_height)
    if count == frames:
        return answer, count
    ours = _delays(reference, frames)
    theirs = _delays(answer, count)
    starts = list(itertools.accumulate(theirs, initial=0))
    ours_starts = list(itertools.accumulate(ours, initial=0))
    picked = []
    for index in range(frames):
        if ours_starts[-1] and starts[-1]:
            middle = (ours_starts[index] + ours[index] / 2) / ours_starts[-1] * starts[-1]
            shown = bisect.bisect_right(starts, middle) - 1
        else:  # no timing to go by: spread evenly
            shown = index * count // frames
        picked.append(min(max(shown, 0), count - 1))
    strip = [answer.crop(0, i * page_height, answer.width, page_height) for i in picked]
    return pyvips.Image.arrayjoin(strip, across=1), count


def _delays(image: pyvips.Image, frames: int) -> list[int]:
    """Each frame's delay in ms (0 where the image has none for it)."""
    delays = image.get("delay") if "delay" in image.get_fields() else []
    return [max(0, int(d)) for d in list(delays)[:frames]] + [0] * (frames - len(delays))


def result_report(
    processed: ProcessedImage, rendered: Rendered | None, source_bytes: int
) -> dict[str, Any]:
    size = len(processed.data)
    report: dict[str, Any] = {
        "format": processed.format,
        "width": processed.width,
        "height": processed.height,
        "frames": processed.frames,
        "bytes": size,
        "quality": processed.quality or None,
        "lossless": processed.lossless,
        "encodes": processed.encodes,
        "downscale": processed.scale,
        "source_bytes_ratio": round(source_bytes / size, 4) if size else None,
    }
    if rendered is None or processed.format == "svg":
        # Passed through untouched: nothing was encoded to measure.
        report |= {
            "metrics_scale": None,
            "compression_ratio": None,
            "mse": None,
            "psnr": None,
            "ssim": None,
            "ssimulacra2": None,
        }
        return report
    reference = rendered.image
    if processed.scale < 1:
        reference = reference.resize(processed.scale, kernel="lanczos3")
    # Read back through the same door as sources: JPEG XL and HEIC need it.
    decoded = decode_result(processed.data, all_frames=processed.frames > 1)
    if processed.frames > 1:
        decoded, shown = frames_as_shown(decoded, reference, processed.frames)
        report["frames"] = shown
    # Uncompressed: 8 bits per band per pixel of what was encoded.
    raw_bytes = reference.width * reference.height * reference.bands
    # The metrics (SSIMULACRA2 above all) cost far more per pixel than the
    # encode: past METRICS_MAX_PIXELS they are taken on a reduced copy of both.
    pixels = reference.width * reference.height
    metrics_scale = min(1.0, math.sqrt(METRICS_MAX_PIXELS / pixels)) if pixels else 1.0
    if metrics_scale < 1:
        reference = reference.resize(metrics_scale, kernel="linear")
        decoded = decoded.resize(metrics_scale, kernel="linear")
    measured = distortion(reference, decoded, perceptual=True)
    report["metrics_scale"] = round(metrics_scale, 4)
    report |= {
        "compression_ratio": round(raw_bytes / size, 4) if size else None,
        "mse": measured.mse,
        "psnr": measured.psnr,
        "ssim": measured.ssim,
        "ssimulacra2": round(measured.ssimulacra2, 3) if measured.ssimulacra2 is not None else None,
    }
    return report
