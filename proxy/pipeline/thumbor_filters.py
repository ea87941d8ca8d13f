"""thumbor's pixel filters, with thumbor's arithmetic.

thumbor runs these in C over 8-bit RGB(A) bytes (its `ext/filters`): each
channel value is computed in floating point, truncated towards zero when it
is stored back in an int, and clipped to 0..255. The same rules here, as
libvips operations over the whole image, so the pictures agree to rounding
(tests/test_thumbor.py compares them with real thumbor). Grey images become
RGB first, as thumbor's `image_data_as_rgb` does; alpha is left alone except
by convolution(), which filters it as thumbor does.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pyvips

from proxy.pipeline.faces import detect

Args = tuple[int | float | str, ...]


def split_alpha(image: pyvips.Image) -> tuple[pyvips.Image, pyvips.Image | None]:
    if image.hasalpha():
        return image[: image.bands - 1], image[image.bands - 1]
    return image, None


def join_alpha(colour: pyvips.Image, alpha: pyvips.Image | None) -> pyvips.Image:
    colour = colour.cast("uchar")  # clips to 0..255, as thumbor's ADJUST_COLOR
    return colour if alpha is None else colour.bandjoin(alpha)


def percent_of_255(value: int) -> int:
    return int(255 * value / 100)  # C's integer division: towards zero


def _rgb(image: pyvips.Image) -> tuple[pyvips.Image, pyvips.Image | None]:
    colour, alpha = split_alpha(image)
    if colour.bands == 1:
        colour = colour.colourspace("srgb")
    return colour.cast("uchar"), alpha


def _stored(values: pyvips.Image) -> pyvips.Image:
    """A float result stored in an int: towards zero (below zero clips to 0 anyway)."""
    return values.floor()


# --- brightness, rgb, contrast, grayscale ------------------------------------------


def _shift(image: pyvips.Image, deltas: list[int]) -> pyvips.Image:
    colour, alpha = _rgb(image)
    return join_alpha(colour + deltas, alpha)


def brightness(image: pyvips.Image, args: Args) -> pyvips.Image:
    return _shift(image, [percent_of_255(int(args[0]))] * 3)


def rgb(image: pyvips.Image, args: Args) -> pyvips.Image:
    return _shift(image, [percent_of_255(int(value)) for value in args])


def contrast(image: pyvips.Image, args: Args) -> pyvips.Image:
    factor = (int(args[0]) + 100) ** 2 // 100
    colour, alpha = split_alpha(image)
    scaled = (colour.cast("int") - 128) * factor
    truncated = (scaled.abs() / 100).floor() * scaled.sign()  # C's division
    return join_alpha(truncated + 128, alpha)


def grayscale(image: pyvips.Image, args: Args) -> pyvips.Image:
    colour, alpha = split_alpha(image)
    if colour.bands >= 3:
        # PIL's RGB -> L, which thumbor uses: ITU-R 601 weights in 16-bit fixed point.
        grey = (colour[0] * 19595 + colour[1] * 38470 + colour[2] * 7471 + 32768) / 65536
        colour = grey.floor().copy(interpretation="b-w")
    return join_alpha(colour, alpha).copy(interpretation="b-w")


def background_color(image: pyvips.Image, args: Args) -> pyvips.Image:
    """The transparent parts painted with the colour ("rrggbb"), here and not at
    the encode, as thumbor pastes the picture on a canvas of it; a grey
    picture (grayscale() before) goes on the coloured canvas."""
    if not image.hasalpha():
        return image
    if image.bands < 4:
        image = image.colourspace("srgb")
    colour = str(args[0])
    paint = [int(colour[i : i + 2], 16) for i in (0, 2, 4)]
    return image.flatten(background=paint).cast("uchar")


def proportion(image: pyvips.Image, args: Args) -> pyvips.Image:
    """The picture scaled by the value, its sides truncated to whole pixels
    (thumbor's engine takes int() of them); nothing when a side would vanish
    or the value is 0, as thumbor."""
    value = float(args[0])
    width, height = int(image.width * value), int(image.height * value)
    if value <= 0 or width < 1 or height < 1:
        return image
    if image.hasalpha():  # premultiplied, so transparent pixels' colour stays out
        scaled = image.premultiply().resize(width / image.width, vscale=height / image.height)
        return scaled.unpremultiply().cast(image.format)
    return image.resize(width / image.width, vscale=height / image.height)


# --- saturation, colorize, noise ---------------------------------------------------


def saturation(image: pyvips.Image, args: Args) -> pyvips.Image:
    """Each channel moved away from (or towards) the pixel's perceived brightness."""
    change = float(args[0])
    colour, alpha = _rgb(image)
    values = colour.cast("float")
    red, green, blue = values[0], values[1], values[2]
    brightness = (red * red * 0.299 + green * green * 0.587 + blue * blue * 0.114) ** 0.5
    return join_alpha(_stored(brightness + (values - brightness) * change), alpha)


def colorize(image: pyvips.Image, args: Args) -> pyvips.Image:
    """Each channel blended its own percentage of the way to the fill colour's."""
    percents = [float(value) for value in args[:3]]
    fill = bytes.fromhex(str(args[3]))
    colour, alpha = _rgb(image)
    kept = [100.0 - percent for percent in percents]
    added = [channel * percent for channel, percent in zip(fill, percents, strict=True)]
    return join_alpha(_stored((colour.cast("float") * kept + added) / 100.0), alpha)


def noise(image: pyvips.Image, args: Args) -> pyvips.Image:
    """One random step per pixel in [-amount/2, amount/2), the same for each channel.

    thumbor draws from C's random() (seeded only when the seed is not 0), so
    its noise differs run to run; here the seed, 0 included, fixes the
    pattern, so a URL always gives the same bytes (and its cached copy is
    what a second request would have made).
    """
    amount, seed = int(args[0]), int(args[1])
    if amount <= 0:
        return image
    colour, alpha = _rgb(image)
    steps = np.random.default_rng(seed).integers(
        0, amount, size=(colour.height, colour.width), dtype=np.int16
    ) - np.int16(amount >> 1)
    shifted = colour.cast("short") + pyvips.Image.new_from_array(steps)
    return join_alpha(shifted, alpha)


# --- equalize and curve: a lookup table per channel -----------------------------------


def _mapped(colour: pyvips.Image, alpha: pyvips.Image | None, tables: np.ndarray) -> pyvips.Image:
    """Each channel through its own 256-entry table (tables: 256 x channels, uint8)."""
    lut = pyvips.Image.new_from_array(np.ascontiguousarray(tables.reshape(1, 256, -1)))
    return join_alpha(colour.maplut(lut.cast("uchar")), alpha)


def equalize(image: pyvips.Image, args: Args) -> pyvips.Image:
    """Histogram equalisation per channel, with thumbor's quirks kept.

    thumbor takes the lowest cumulative count only for the channels that have
    a value at the first level any channel uses (the others keep 0), and
    computes in single precision; both are copied. A channel of one value
    (0/0 in thumbor's C) becomes 0, what that division gives there on x86.
    """
    colour, alpha = _rgb(image)
    colour = colour.copy_memory()  # read twice: its histogram, then the mapping
    counts = np.asarray(colour.hist_find().numpy(), dtype=np.int64).reshape(256, -1)[:, :3]
    cumulative = np.where(counts > 0, np.cumsum(counts, axis=0), 0)
    first = int(np.argmax(cumulative.any(axis=1)))
    lowest = cumulative[first]  # 0 for channels absent at that level, as thumbor's loop
    area = np.float32(colour.width * colour.height)
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = (
            (cumulative - lowest).astype(np.float32)
            / (area - lowest.astype(np.float32))
            * np.float32(255)
        )
    tables = np.nan_to_num(scaled, nan=0.0, posinf=0.0, neginf=0.0)
    return _mapped(colour, alpha, np.clip(tables, 0, 255).astype(np.uint8))


def _points(text: str) -> list[tuple[int, int]]:
    """`x-y_x-y...` (the option model's form of curve()'s [(x,y),...])."""
    return [tuple(map(int, pair.split("-"))) for pair in text.split("_")]  # type: ignore[misc]


def curve_table(points: list[tuple[int, int]]) -> list[int]:
    """thumbor's natural cubic spline through the points, as 256 values.

    A transcription of `_curve.c`: the second derivatives by its tridiagonal
    sweep, the first y before the first x, the last y from the last x on.
    """
    n = len(points)
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    matrix = [[0.0, 0.0, 0.0] for _ in range(n)]
    result = [0.0] * n
    matrix[0][1] = 1.0
    for i in range(1, n - 1):
        matrix[i] = [
            (xs[i] - xs[i - 1]) / 6,
            (xs[i + 1] - xs[i - 1]) / 3,
            (xs[i + 1] - xs[i]) / 6,
        ]
        result[i] = (ys[i + 1] - ys[i]) / (xs[i + 1] - xs[i]) - (ys[i] - ys[i - 1]) / (
            xs[i] - xs[i - 1]
        )
    matrix[n - 1][1] = 1.0
    for i in range(1, n):
        k = matrix[i][0] / matrix[i - 1][1]
        matrix[i][1] -= k * matrix[i - 1][2]
        matrix[i][0] = 0.0
        result[i] -= k * result[i - 1]
    for i in range(n - 2, -1, -1):
        k = matrix[i][2] / matrix[i + 1][1]
        matrix[i][1] -= k * matrix[i + 1][0]
        matrix[i][2] = 0.0
        result[i] -= k * result[i + 1]
    second = [result[i] / matrix[i][1] for i in range(n)]
    table = [ys[0]] * 256
    for i in range(n - 1):
        h = xs[i + 1] - xs[i]
        for x in range(xs[i], xs[i + 1]):
            b = (x - xs[i]) / h
            a = 1 - b
            y = a * ys[i] + b * ys[i + 1]
            y += (h * h / 6) * ((a**3 - a) * second[i] + (b**3 - b) * second[i + 1])
            table[x] = min(255, max(0, math.floor(y + 0.5) if y >= 0 else -math.floor(-y + 0.5)))
    for x in range(xs[-1], 256):
        table[x] = ys[-1]
    return table


def curve(image: pyvips.Image, args: Args) -> pyvips.Image:
    """curve(all, red, green, blue): each channel through its curve, then through `all`."""
    overall, *channels = (curve_table(_points(str(text))) for text in args)
    tables = np.array([[overall[table[v]] for table in channels] for v in range(256)])
    colour, alpha = _rgb(image)
    return _mapped(colour, alpha, tables.astype(np.uint8))


# --- blur (and fill(blur)'s canvas) ------------------------------------------------

MAX_BLUR_RADIUS = 150  # thumbor's
FILL_BLUR_RADIUS = 50  # thumbor's fill(blur) canvas
# The mask in whole numbers summing to about this: libvips' integer
# convolution (vectorised: 26 ms at 1200x900, 556 in float) then rounds
# where thumbor's C truncates, within one level a pass.
_MASK_SCALE = 4096


def blur(image: pyvips.Image, args: Args) -> pyvips.Image:
    return thumbor_blur(image, int(args[0]), float(args[1]))


def thumbor_blur(image: pyvips.Image, radius: int, sigma: float = 0.0) -> pyvips.Image:
    """thumbor's blur: a Gaussian of `sigma` (the radius when 0) cut at the
    radius, across and then down, every band (alpha too, not premultiplied),
    edges extended. Cut at one sigma it is nearly a box: a full Gaussian of
    the same sigma blurred far wider (9.5 apart at blur(150))."""
    radius = min(radius, MAX_BLUR_RADIUS)
    sigma = sigma or radius
    weights = [math.exp(-(x * x) / (2 * sigma * sigma)) for x in range(-radius, radius + 1)]
    total = sum(weights)
    mask = [round(weight / total * _MASK_SCALE) for weight in weights]
    scale = sum(mask)
    colour, alpha = split_alpha(image)
    whole = image.cast("uchar") if alpha is None else colour.cast("uchar").bandjoin(alpha)
    width, height = whole.width, whole.height
    across = pyvips.Image.new_from_array([mask], scale=scale)
    down = pyvips.Image.new_from_array([[value] for value in mask], scale=scale)
    wide = whole.embed(radius, 0, width + 2 * radius, height, extend="copy")
    blurred = wide.conv(across, precision="integer").crop(radius, 0, width, height).cast("uchar")
    # Held between the passes: the pass down reads 2 x radius + 1 rows of it
    # for every row it makes, which would otherwise be computed again each time.
    blurred = blurred.copy_memory()
    tall = blurred.embed(0, radius, width, height + 2 * radius, extend="copy")
    blurred = tall.conv(down, precision="integer").crop(0, radius, width, height).cast("uchar")
    return blurred.copy(interpretation=image.interpretation)


# --- sharpen -----------------------------------------------------------------------


def sharpen(image: pyvips.Image, args: Args) -> pyvips.Image:
    """thumbor's sharpen(amount, radius, luminance_only): Marco Rossini's wavelet
    sharpen (five levels of the "a trous" hat transform, each level's detail
    scaled by amount * exp(-(level - radius)^2 / 1.5) + 1), as thumbor's C runs
    it: in single precision, on R, G and B (or on the luma of its YCbCr), the
    result clamped and truncated to bytes; alpha untouched."""
    amount, radius, luminance_only = float(args[0]), float(args[1]), bool(args[2])
    colour, alpha = _rgb(image)
    shape = (colour.height, colour.width, 3)
    pixels = np.ndarray(buffer=colour.write_to_memory(), dtype=np.uint8, shape=shape)
    channels = [pixels[:, :, band].astype(np.float32) for band in range(3)]
    if luminance_only:
        channels = _ycbcr(*channels)
    planes = [channel / np.float32(255) for channel in channels]
    for band in (0,) if luminance_only else (0, 1, 2):
        planes[band] = _wavelet_sharpen(planes[band], amount, radius)
    channels = [plane * np.float32(255) for plane in planes]
    if luminance_only:
        channels = _rgb_of_ycbcr(*channels)
    # C's float to unsigned char after the clamp: towards zero.
    result = np.stack([np.clip(channel, 0, 255) for channel in channels], axis=2).astype(np.uint8)
    sharpened = pyvips.Image.new_from_memory(
        result.tobytes(), colour.width, colour.height, 3, "uchar"
    ).copy(interpretation="srgb")
    return join_alpha(sharpened, alpha)


def _wavelet_sharpen(plane: np.ndarray, amount: float, radius: float) -> np.ndarray:
    levels: list[np.ndarray] = [plane, plane, plane]  # the image, then two scratch planes
    high = 0
    for level in range(5):
        low = (level & 1) + 1
        step = 1 << level
        levels[low] = _hat(_hat(levels[high], step, axis=1), step, axis=0)
        weight = np.float32(amount * math.exp(-(level - radius) * (level - radius) / 1.5) + 1.0)
        levels[high] = (levels[high] - levels[low]) * weight
        if high:
            levels[0] = levels[0] + levels[high]
        high = low
    return levels[0] + levels[high]


def _hat(plane: np.ndarray, step: int, axis: int) -> np.ndarray:
    """(2 * x[i] + x[i - step] + x[i + step]) / 4 along `axis`, mirrored at the
    edges as thumbor's hat_transform (clamped where a tiny picture has no
    mirror: thumbor reads past its buffer there)."""
    size = plane.shape[axis]
    index = np.arange(size)
    before = np.clip(np.where(index < step, step - index, index - step), 0, size - 1)
    after = np.where(index + step < size, index + step, 2 * size - 2 - (index + step))
    after = np.clip(after, 0, size - 1)
    summed = 2 * plane + np.take(plane, before, axis=axis) + np.take(plane, after, axis=axis)
    return summed * np.float32(0.25)


def _ycbcr(red: np.ndarray, green: np.ndarray, blue: np.ndarray) -> list[np.ndarray]:
    f = np.float32
    return [
        f(0.2990) * red + f(0.5870) * green + f(0.1140) * blue,
        f(-0.1687) * red - f(0.3313) * green + f(0.5000) * blue + f(128),
        f(0.5000) * red - f(0.4187) * green - f(0.0813) * blue + f(128),
    ]


def _rgb_of_ycbcr(luma: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> list[np.ndarray]:
    f = np.float32
    return [
        luma + f(1.40200) * (cr - f(128)),
        luma - f(0.34414) * (cb - f(128)) - f(0.71414) * (cr - f(128)),
        luma + f(1.77200) * (cb - f(128)),
    ]


# --- convolution -------------------------------------------------------------------


def convolution(image: pyvips.Image, args: Args) -> pyvips.Image:
    """A kernel over every channel (alpha too), edges extended by copying, as thumbor."""
    values = [float(value) for value in str(args[0]).split(";")]
    columns, normalize = int(args[1]), bool(args[2])
    total = sum(values)
    if normalize and total != 0:
        values = [value / total for value in values]
    rows = [values[start : start + columns] for start in range(0, len(values), columns)]
    mask = pyvips.Image.new_from_array(rows)
    colour, alpha = _rgb(image)
    whole = colour if alpha is None else colour.bandjoin(alpha)
    mid_x, mid_y = columns // 2, len(rows) // 2
    padded = whole.embed(
        mid_x, mid_y, whole.width + 2 * mid_x, whole.height + 2 * mid_y, extend="copy"
    )
    # libvips correlates (no flip), as thumbor's loop does.
    filtered = padded.conv(mask, precision="float").crop(mid_x, mid_y, whole.width, whole.height)
    # (int) of a sum: towards zero; negatives end at 0 either way.
    return _stored(filtered).cast("uchar").copy(interpretation=whole.interpretation)


# --- red_eye: thumbor's red-eye removal, inside the faces found ----------------------

EYE_CASCADE = "haarcascade_eye.xml"  # OpenCV's, the same file thumbor ships
_eyes = threading.local()


def _eye_classifier() -> object:
    import cv2

    found = getattr(_eyes, "classifier", None)
    if found is None:
        found = _eyes.classifier = cv2.CascadeClassifier(cv2.data.haarcascades + EYE_CASCADE)
    return found


def red_eye(image: pyvips.Image) -> pyvips.Image:
    """thumbor's red_eye(): in each face, in each eye its cascade finds (scale
    1.2, 3 neighbours, 20 px at least), the largest region whose red is over
    twice the mean of green and blue and over 60 is closed, grown, and painted
    with that mean; thumbor's own steps, with OpenCV.

    thumbor looks only in faces its detector found for a `smart` crop and
    measures them on the source (wrong on a resized result); here the faces are
    found on the result itself, with the same detector as `smart` (faces.py).
    """
    import cv2

    faces = detect(image).faces
    if not faces:
        return image
    colour, alpha = _rgb(image)
    pixels = np.array(colour.numpy(), dtype=np.uint8).reshape(colour.height, colour.width, 3)
    for face in faces:
        left, top = int(face.left * colour.width), int(face.top * colour.height)
        width, height = int(face.width * colour.width), int(face.height * colour.height)
        region = pixels[top : top + height, left : left + width]
        eyes = _eye_classifier().detectMultiScale(  # type: ignore[attr-defined]
            region, scaleFactor=1.2, minNeighbors=3, minSize=(20, 20)
        )
        for x, y, w, h in eyes:
            region[y : y + h, x : x + w] = _without_red(cv2, region[y : y + h, x : x + w])
    painted = pyvips.Image.new_from_array(pixels, interpretation="srgb")
    return join_alpha(painted, alpha)


def _without_red(cv2: Any, eye: np.ndarray) -> np.ndarray:
    red, green, blue = cv2.split(eye)
    mean = cv2.add(blue, green) // 2  # saturating, as thumbor adds them
    mask = ((red > 2.0 * mean) & (red > 60)).astype(np.uint8) * 255
    contours = cv2.findContours(mask.copy(), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)[-2]
    largest = max(contours, key=cv2.contourArea, default=None)
    if largest is None or cv2.contourArea(largest) <= 0:
        return eye
    mask = cv2.drawContours(mask * 0, [largest], 0, 255, -1)
    # thumbor's element: getStructuringElement(MORPH_DILATE, ...), a cross, and a
    # dilation by the 1x2 kernel its (3, 3) tuple becomes.
    mask = cv2.morphologyEx(
        mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_DILATE, (5, 5))
    )
    mask = cv2.dilate(mask, np.array((3, 3)), iterations=3)
    mean = cv2.cvtColor(cv2.bitwise_and(mean, mask), cv2.COLOR_GRAY2RGB)
    return cv2.bitwise_and(~cv2.cvtColor(mask, cv2.COLOR_GRAY2RGB), eye) + mean


# --- frame: a nine-patch drawn around the image -------------------------------------


def _stretchy(pixels: np.ndarray) -> np.ndarray:
    """Opaque black marker pixels (RGBA 0,0,0,255): where a nine-patch stretches."""
    return (pixels[..., :3] == 0).all(axis=-1) & (pixels[..., 3] == 255)


def nine_patch_padding(patch: np.ndarray) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) from the markers along the right and bottom edges."""
    height, width = patch.shape[:2]
    bottom_row = np.flatnonzero(_stretchy(patch[height - 1, 1 : width - 1]))
    right_column = np.flatnonzero(_stretchy(patch[1 : height - 1, width - 1]))
    left = int(bottom_row[0]) if bottom_row.size else 0
    right = int(width - 3 - bottom_row[-1]) if bottom_row.size else 0
    top = int(right_column[0]) if right_column.size else 0
    bottom = int(height - 3 - right_column[-1]) if right_column.size else 0
    return left, top, right, bottom


def _runs(markers: np.ndarray) -> list[tuple[int, int, bool]]:
    """(start, length, stretchy) of each run of equal markers, positions from 1."""
    runs, start = [], 0
    for index in range(1, len(markers) + 1):
        if index == len(markers) or markers[index] != markers[start]:
            runs.append((start + 1, index - start, bool(markers[start])))
            start = index
    return runs


def _stretched(length: int, stretchy: bool, total: int, target_total: int) -> int:
    return int(length / total * target_total + 0.5) if stretchy else length


CELL_ROWS = 64  # rows of a cell mixed at once: bounds the float temporaries


def _paste_cell(
    patch: np.ndarray, source: tuple[int, int, int, int], target: np.ndarray, spot: tuple[int, ...]
) -> None:
    """thumbor's paste_rectangle: bilinear from the cell, composited over the target's colour
    (the target's alpha stays as it was, as in thumbor)."""
    sx, sy, sw, sh = source
    tx, ty, tw, th = spot
    columns = np.arange(tw) * ((sw - 1) / tw)
    x0 = columns.astype(int)
    fx, xs = (columns - x0)[None, :, None], (sx + x0)[None, :]
    for first in range(0, th, CELL_ROWS):
        rows = np.arange(first, min(th, first + CELL_ROWS)) * ((sh - 1) / th)
        y0 = rows.astype(int)
        fy, ys = (rows - y0)[:, None, None], (sy + y0)[:, None]
        a, b = patch[ys, xs].astype(np.float32), patch[ys, xs + 1].astype(np.float32)
        c, d = patch[ys + 1, xs].astype(np.float32), patch[ys + 1, xs + 1].astype(np.float32)
        mixed = a * (1 - fx) * (1 - fy) + b * fx * (1 - fy) + c * (1 - fx) * fy + d * fx * fy
        # thumbor mixes only where the four differ, truncating the mix.
        values = np.where((a == b) & (a == c) & (a == d), a, np.floor(np.clip(mixed, 0, 255)))
        region = target[ty + first : ty + first + len(rows), tx : tx + tw]
        cover, under = values[..., 3:4] / 255.0, region[..., 3:4] / 255.0
        colour = cover * values[..., :3] + under * region[..., :3] * (1 - cover)
        region[..., :3] = np.clip(colour, 0, 255).astype(np.uint8)


def _paste_nine_patch(target: np.ndarray, patch: np.ndarray) -> None:
    """thumbor's _nine_patch.apply: each cell of the patch pasted over its share of the target."""
    height, width = patch.shape[:2]
    row_runs = _runs(_stretchy(patch[1 : height - 1, 0]))
    column_runs = _runs(_stretchy(patch[0, 1 : width - 1]))
    stretchy_h = sum(length for _, length, s in row_runs if s)
    stretchy_w = sum(length for _, length, s in column_runs if s)
    target_stretchy_h = max(0, target.shape[0] - (height - 2 - stretchy_h))
    target_stretchy_w = max(0, target.shape[1] - (width - 2 - stretchy_w))
    ty = 0
    for sy, sh, row_stretchy in row_runs:
        th = _stretched(sh, row_stretchy, stretchy_h, target_stretchy_h)
        tx = 0
        for sx, sw, column_stretchy in column_runs:
            tw = _stretched(sw, column_stretchy, stretchy_w, target_stretchy_w)
            # A cell that would not fit is skipped, as thumbor gives up on it.
            if th and tw and tx + tw <= target.shape[1] and ty + th <= target.shape[0]:
                _paste_cell(patch, (sx, sy, sw, sh), target, (tx, ty, tw, th))
            tx += tw
        ty += th


def frame(image: pyvips.Image, patch: pyvips.Image) -> pyvips.Image:
    """thumbor's frame(url): padded on white as the patch's right and bottom markers
    say, then the patch drawn over it, its stretchy rows and columns stretched to fit."""
    markers = np.asarray(patch.numpy(), dtype=np.uint8).reshape(patch.height, patch.width, -1)
    left, top, right, bottom = nine_patch_padding(markers)
    colour, alpha = _rgb(image)
    rgba = colour.bandjoin(alpha if alpha is not None else 255).cast("uchar")
    width, height = rgba.width + left + right, rgba.height + top + bottom
    white = pyvips.Image.black(width, height, bands=4).new_from_image([255, 255, 255, 255])
    placed = rgba.embed(left, top, width, height, extend="background", background=[0, 0, 0, 0])
    canvas = white.cast("uchar").copy(interpretation="srgb").composite2(placed, "over")
    target = np.array(canvas.cast("uchar").numpy(), dtype=np.uint8)
    _paste_nine_patch(target, markers)
    return pyvips.Image.new_from_array(target, interpretation="srgb")


# sharpen(): numpy's float32 planes (three channels, the wavelet's three
# levels and the hat transform's temporaries): 33-34 bytes a result pixel
# above the estimate without it, measured at 1200 and 2400 px.
_FLOAT_BYTES_PER_PIXEL = {"saturation": 48, "contrast": 24, "colorize": 24, "sharpen": 56}


def working_bytes(
    adjustments: tuple[tuple[str, Args], ...], width: int, height: int, bands: int
) -> int:
    """What the filters hold beyond libvips' streaming, for the footprint estimate.

    equalize() keeps the image in memory (it reads it twice), noise() its
    steps twice (numpy's array and libvips' copy, 16 bits each, and what the
    allocator keeps of them: 20 bytes a pixel counted), and a convolution's
    float rows per libvips thread. The float arithmetic of
    saturation, contrast and colorize measured up to 15.5, 10.1 and 4.9 bytes
    per result pixel above a filter that stays 8-bit (bench/thumbor_filters.py
    at 2400 px), and more when chained (saturation, colorize and curve: ~52
    at 1200 px): counted generously. The rest stream.
    """
    total = 0
    for name, args in adjustments:
        if name in _FLOAT_BYTES_PER_PIXEL:
            total += width * height * _FLOAT_BYTES_PER_PIXEL[name]
        elif name == "equalize":
            total += width * height * bands
        elif name == "noise":
            total += width * height * 20
        elif name == "red_eye":
            # The colour as a numpy array and back, and the face detector's copy.
            total += width * height * 3 * 3 + 16 * 1024 * 1024
        elif name == "frame":
            # The padded image as numpy arrays and libvips' copies (measured
            # 11.4-25 bytes per pixel above 8-bit filters), and a cell's float rows
            # (CELL_ROWS at a time); the patch is counted as small.
            total += width * height * 4 * 8 + CELL_ROWS * width * 4 * 4 * 8
        elif name == "convolution":
            rows = len(str(args[0]).split(";")) // int(args[1])
            total += (rows + 2) * (width + rows) * (bands + 1) * 4 * pyvips.concurrency_get()
            # and its float output before the cast (measured up to ~8 bytes a pixel
            # in a fresh process, more in one that has run other jobs).
            total += width * height * 16
        elif name == "blur":
            total += blur_bytes(int(args[0]), width, height, bands)
    return total


def blur_bytes(radius: int, width: int, height: int, bands: int) -> int:
    """thumbor_blur's working memory: each pass's rows per libvips thread (a
    mask of 2 x radius + 1, on a copy widened by it), their int sums, and the
    pass across held in memory. Measured over the 4000x2500 JPEG in
    bench/thumbor_filters.py's child (scratch): blur(150) 47 MB at 1200x750
    (estimate 81), 23-26 at 600x375 (37), 85-95 at 2400x1500 (232); blur(50)
    74-110 at 2400x1500 (196). Before the pass across was held, the same job
    ran 80-135 MB."""
    rows = 2 * min(radius, MAX_BLUR_RADIUS) + 1
    per_thread = (rows + 2) * (width + rows) * (bands + 1) * 4
    held = width * height * bands
    return 2 * per_thread * pyvips.concurrency_get() + width * height * 16 + held


ADJUSTMENTS: dict[str, Callable[[pyvips.Image, Args], pyvips.Image]] = {
    "brightness": brightness,
    "contrast": contrast,
    "rgb": rgb,
    "grayscale": grayscale,
    "saturation": saturation,
    "colorize": colorize,
    "equalize": equalize,
    "curve": curve,
    "convolution": convolution,
    "noise": noise,
    "red_eye": lambda image, _args: red_eye(image),
    "background_color": background_color,
    "proportion": proportion,
    "sharpen": sharpen,
    "blur": blur,
}
