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
from collections.abc import Callable

import numpy as np
import pyvips

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


def working_bytes(
    adjustments: tuple[tuple[str, Args], ...], width: int, height: int, bands: int
) -> int:
    """What the filters hold beyond libvips' streaming, for the footprint estimate.

    equalize() keeps the image in memory (it reads it twice), noise() its
    steps twice (numpy's array and libvips' copy, 16 bits each), and a
    convolution's float rows per libvips thread; the rest stream.
    """
    total = 0
    for name, args in adjustments:
        if name == "equalize":
            total += width * height * bands
        elif name == "noise":
            total += width * height * 2 * 2
        elif name == "convolution":
            rows = len(str(args[0]).split(";")) // int(args[1])
            total += (rows + 2) * (width + rows) * (bands + 1) * 4 * pyvips.concurrency_get()
    return total


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
}
