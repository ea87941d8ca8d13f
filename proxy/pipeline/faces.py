"""Where the faces (and, for thumbor, the features) of a picture are.

Detection runs on a grey copy of about DETECT_PIXELS (a 460x350 picture),
made from the oriented source, and answers boxes as fractions of that
picture, so one detection serves every size of a srcset (FindingsMemory keeps
it per source digest).

The detector is OpenCV's Viola-Jones cascade `haarcascade_frontalface_alt2`
from the opencv-python-headless 4.x wheel (`cv2.data`; 5.0 has no
CascadeClassifier). Chosen by measurement (bench/faces.py, BENCHMARKS.md):
with a scale step of 1.3 it found 96 of scikit-image's 100 labelled LFW faces,
none of its 100 non-faces and no box on 31 photographs without people, in 26
ms per photograph on one thread, where thumbor's `alt` at thumbor's step 1.2
found 98 in 36 ms (the default cascade is faster but boxed a photograph
without people). YuNet, as the `yuface` wheel compiles it in, found more of
the small faces on a copy of the same size but took half as long again, and
on a copy small enough to be faster it lost most of them (bench/faces.py
--yunet, BlazeFace beside it in BENCHMARKS.md). thumbor's
other parameters: 4 neighbours, the smallest face 1/15 of the short side (at
least 20 pixels).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyvips

from proxy.pipeline import interrupt
from proxy.pipeline.remembered import Remembered

# Sized by area, not by the long side: a panorama's faces are small across
# its width (at 400 pixels wide, 2000x600 left faces of 125 px at 25, where
# the cascade stops). 160,000 found both faces of that scene where 120,000
# found one (JPEG q92, /tmp measurements while choosing; bench/faces.py).
DETECT_PIXELS = 160_000
CASCADE = "haarcascade_frontalface_alt2.xml"
SCALE_STEP = 1.3
# thumbor's feature detector (goodFeaturesToTrack) when no face is found,
# on the source at full size as thumbor's (see feature_points).
FEATURE_CORNERS = 20
FEATURE_QUALITY = 0.04

_local = threading.local()


@dataclass(frozen=True, slots=True)
class Box:
    """A face: left, top, width and height as fractions of the picture."""

    left: float
    top: float
    width: float
    height: float

    @property
    def edges(self) -> tuple[float, float, float, float]:
        """Left, top, right, bottom."""
        return self.left, self.top, self.left + self.width, self.top + self.height

    @property
    def area(self) -> float:
        return self.width * self.height


@dataclass(frozen=True, slots=True)
class Findings:
    faces: tuple[Box, ...] = ()
    # thumbor's feature points (fractions), only looked for when asked and no face.
    features: tuple[tuple[float, float], ...] = ()


def _classifier() -> object:
    # A CascadeClassifier keeps buffers between calls: one per thread.
    found = getattr(_local, "classifier", None)
    if found is None:
        import cv2

        # As many threads as libvips gives a job (VIPS_CONCURRENCY): a lone
        # g:sm miss then detects in half the time on two cores; under load the
        # cores are shared either way (bench/faces.py, BENCHMARKS.md).
        cv2.setNumThreads(pyvips.concurrency_get())
        found = cv2.CascadeClassifier(cv2.data.haarcascades + CASCADE)
        if found.empty():
            raise RuntimeError(f"OpenCV could not load {CASCADE}")
        _local.classifier = found
    return found


def detection_shrink(shrink: float, width: int, height: int) -> float:
    """The shrink-on-load a detecting job may use on a `width` x `height`
    source: detection needs about DETECT_PIXELS whatever the result's size,
    so what it finds does not depend on the size asked (its memory serves
    every size)."""
    return min(shrink, max(1.0, (width * height / DETECT_PIXELS) ** 0.5))


def grey_copy(image: pyvips.Image) -> np.ndarray:
    """The picture as 8-bit grey, reduced to about DETECT_PIXELS.

    Grey is ITU-R 601 luma of the sRGB values, as thumbor's engines make it
    (PIL's convert("L"), OpenCV's RGB2GRAY); other colour interpretations
    (16-bit, CMYK, ...) are made sRGB bytes first. libvips shrinks by whole factors
    and OpenCV does the rest: on a 1/8 decode of a 12 MP JPEG this takes
    0.6 ms where libvips' resize and "b-w" took 2.5-3.5, on a 14.7 MP PNG
    decode 8 ms where OpenCV alone took 37 (bench/faces.py, BENCHMARKS.md).
    """
    if image.hasalpha():
        image = image.flatten(background=[255, 255, 255])
    if image.interpretation in ("b-w", "grey16") or image.bands < 3:
        image = image.colourspace("b-w")[0].cast("uchar")
    elif image.interpretation != "srgb" or image.format != "uchar":
        image = image.colourspace("srgb")
    colour = image.bands == 3
    scale = min(1.0, (DETECT_PIXELS / (image.width * image.height)) ** 0.5)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    factor = int(1 / scale)
    if factor >= 2:
        image = image.shrink(factor, factor)
    pixels = np.ndarray(
        buffer=image.write_to_memory(),
        dtype=np.uint8,
        shape=(image.height, image.width, image.bands),
    )
    import cv2

    grey = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY) if colour else pixels[:, :, 0]
    if (grey.shape[1], grey.shape[0]) != size:
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(grey)


def detect(image: pyvips.Image, features: Callable[[], pyvips.Image] | None = None) -> Findings:
    """Faces in `image` (an oriented source, as small as detection allows);
    when there is none and `features` is given, thumbor's feature points in
    the picture it makes: the source at full size, as thumbor looks at it
    (on a reduced copy the 20 strongest corners are others: their centre
    moved by a median 12% of the long side over the corpus, bench/faces.py)."""
    grey = grey_copy(image)
    height, width = grey.shape
    if min(height, width) < 20:  # thumbor's smallest face
        return Findings()
    smallest = max(20, min(height, width) // 15)
    boxes = _classifier().detectMultiScale(  # type: ignore[attr-defined]
        grey, SCALE_STEP, 4, minSize=(smallest, smallest)
    )
    faces = tuple(
        Box(x / width, y / height, w / width, h / height)
        for x, y, w, h in sorted((tuple(int(v) for v in box) for box in boxes), key=_reading)
    )
    if faces or features is None:
        return Findings(faces)
    return Findings((), feature_points(features()))


# Rows of the picture thumbor's feature detector reads at a time (strips.)
FEATURE_STRIP_ROWS = 256


def feature_points(image: pyvips.Image) -> tuple[tuple[float, float], ...]:
    """thumbor's feature detector on `image`: OpenCV's goodFeaturesToTrack
    (the 20 strongest Shi-Tomasi corners above 4% of the strongest, 3x3 local
    maxima) on PIL's grey of it, as fractions. Computed in strips of
    FEATURE_STRIP_ROWS with the corners' window of overlap, so the same
    points come out (tests/test_faces.py checks them against OpenCV's own
    call) without OpenCV's full-size float maps: ~40 bytes a pixel, 416 MB
    for a 10 MP picture, measured."""
    import cv2

    interrupt.check()  # a second or more on a large picture: stoppable between strips
    grey = thumbor_grey(interrupt.watch(image))
    height, width = grey.shape
    if height < 3 or width < 3:
        return ()
    strongest = 0.0
    candidates: list[tuple[float, int]] = []  # value, index (y * width + x)
    for top in range(0, height, FEATURE_STRIP_ROWS):
        interrupt.check()
        bottom = min(height, top + FEATURE_STRIP_ROWS)
        # A corner value reads 2 rows around it (Sobel, then a 3x3 sum); a
        # local maximum 1 more: the strip is read with 3 rows of margin.
        first, last = max(0, top - 3), min(height, bottom + 3)
        values = cv2.cornerMinEigenVal(grey[first:last], 3, 3)
        strongest = max(strongest, float(values[top - first : bottom - first].max()))
        peaks = cv2.dilate(values, None)
        rows = slice(max(top, 1) - first, min(bottom, height - 1) - first)
        inner, around = values[rows, 1 : width - 1], peaks[rows, 1 : width - 1]
        ys, xs = np.nonzero(inner == around)
        found = inner[ys, xs]
        indices = (ys + max(top, 1)) * width + xs + 1
        # OpenCV ranks the strongest first, and between equal ones the later
        # pixel first; only a strip's first FEATURE_CORNERS can be the picture's.
        ranked = np.lexsort((-indices, -found))[:FEATURE_CORNERS]
        candidates += [(float(found[i]), int(indices[i])) for i in ranked]
    threshold = strongest * FEATURE_QUALITY  # OpenCV keeps the values above it
    chosen = sorted((c for c in candidates if c[0] > threshold), key=lambda c: (-c[0], -c[1]))
    return tuple(
        ((index % width) / width, (index // width) / height)
        for _value, index in chosen[:FEATURE_CORNERS]
    )


def thumbor_grey(image: pyvips.Image) -> np.ndarray:
    """The picture in 8-bit grey as thumbor's engine gives it to its feature
    detector: PIL's convert("L") of the sRGB bytes, (19595 R + 38470 G +
    7471 B + 32768) >> 16, any alpha dropped, not flattened."""
    if image.interpretation in ("b-w", "grey16") or image.bands < 3:
        grey = image.colourspace("b-w")[0].cast("uchar")
    else:
        if image.interpretation != "srgb" or image.format != "uchar":
            image = image.colourspace("srgb").cast("uchar")
        weighted = image[0] * 19595 + image[1] * 38470 + image[2] * 7471 + 32768
        grey = (weighted >> 16).cast("uchar")
    return np.ascontiguousarray(grey.numpy())


def _reading(box: tuple[int, ...]) -> tuple[int, int]:
    return box[1], box[0]  # top to bottom, left to right: a stable order for /info


def faces_window(faces: tuple[Box, ...], width: float, height: float) -> Box | None:
    """The box around the faces a window of `width` x `height` (fractions)
    can keep: all of them when they fit, else the largest face and every
    other, largest first, that still fits with it."""
    if not faces:
        return None
    chosen: Box | None = None
    for face in sorted(faces, key=lambda f: f.area, reverse=True):
        grown = face if chosen is None else _union(chosen, face)
        if chosen is None or (grown.width <= width and grown.height <= height):
            chosen = grown
    return chosen


def _union(a: Box, b: Box) -> Box:
    left, top = min(a.left, b.left), min(a.top, b.top)
    right = max(a.left + a.width, b.left + b.width)
    bottom = max(a.top + a.height, b.top + b.height)
    return Box(left, top, right - left, bottom - top)


class FindingsMemory(Remembered[Findings]):
    """What detection found, per source digest and orientation: the widths of
    a srcset detect once."""

    @property
    def detections(self) -> int:
        return self.stored
