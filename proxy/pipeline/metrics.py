"""How far an encoded image is from the unencoded one: MSE, PSNR, SSIM, SSIMULACRA2.

The arithmetic runs in whole-image operations (libvips, or numpy for SSIM),
so measuring a 1200 px result costs tens of milliseconds, not seconds of
Python loops.

SSIM follows Wang et al. (2004): an 11-tap Gaussian window of sigma 1.5 and
the constants K1 = 0.01, K2 = 0.03 for 8-bit samples, computed on luma
(Rec. 601 weights) because that is where people see compression damage;
chroma is subsampled by the encoders anyway. MSE and PSNR cover every colour
band, so a colour shift that SSIM on luma would miss still shows there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np
import pyvips

from proxy.pipeline.ssimulacra2 import ssimulacra2

_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2
_SIGMA = 1.5
# PSNR of identical images is infinite; JSON has no infinity, so report this cap.
PSNR_IDENTICAL = 100.0


@dataclass(frozen=True, slots=True)
class Distortion:
    mse: float
    psnr: float  # dB; PSNR_IDENTICAL when mse is 0
    ssim: float  # 1.0 for identical images
    ssimulacra2: float | None = None  # 100 for identical images; None: not measured


def comparable(image: pyvips.Image) -> pyvips.Image:
    """8-bit sRGB without alpha (flattened onto white), as a viewer would see it."""
    if image.hasalpha():
        image = image.flatten(background=[255] * (image.bands - 1))
    if image.interpretation not in ("srgb", "b-w"):
        image = image.colourspace("srgb")
    if image.bands == 1:
        image = image.bandjoin([image, image])
    return image.cast("uchar")


def luma(image: pyvips.Image) -> pyvips.Image:
    red, green, blue = image[0], image[1], image[2]
    return (red * 0.299 + green * 0.587 + blue * 0.114).cast("float")


def mse(reference: pyvips.Image, candidate: pyvips.Image) -> float:
    difference = reference.cast("float") - candidate.cast("float")
    return float((difference * difference).avg())


def psnr(mean_squared_error: float) -> float:
    if mean_squared_error <= 0:
        return PSNR_IDENTICAL
    return min(PSNR_IDENTICAL, 10 * math.log10(255**2 / mean_squared_error))


@cache
def _gaussian_taps() -> np.ndarray:
    """libvips' own 1-D Gaussian (sigma 1.5, cut where it falls below 1%), normalised.
    Made on first use, not at import: libvips must not start its threads in a
    process that forks workers afterwards (bench/auto_quality.py's pool hung)."""
    mask = pyvips.Image.gaussmat(_SIGMA, 0.01, separable=True, precision="float")
    taps = np.frombuffer(mask.write_to_memory(), dtype=np.float64).astype(np.float32)
    return taps / taps.sum()


def _blur(maps: np.ndarray) -> np.ndarray:
    """The Gaussian over the last two axes, edges repeated (as libvips' gaussblur)."""
    taps = _gaussian_taps()
    reach = len(taps) // 2
    height, width = maps.shape[-2:]
    padded = np.pad(maps, ((0, 0), (reach, reach), (reach, reach)), mode="edge")
    across = sum(tap * padded[:, :, i : i + width] for i, tap in enumerate(taps))
    return sum(tap * across[:, i : i + height, :] for i, tap in enumerate(taps))


def _luma_array(image: pyvips.Image) -> np.ndarray:
    pixels = np.ndarray(
        buffer=image.cast("uchar").write_to_memory(),
        dtype=np.uint8,
        shape=(image.height, image.width, image.bands),
    )
    return pixels[:, :, :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def ssim(reference: pyvips.Image, candidate: pyvips.Image) -> float:
    """Mean SSIM of the luma of two 8-bit sRGB images of the same size (libvips)."""
    x, y = luma(reference), luma(candidate)

    def blur(image: pyvips.Image) -> pyvips.Image:
        return image.gaussblur(_SIGMA, precision="float", min_ampl=0.01)

    mu_x, mu_y = blur(x), blur(y)
    mu_xx, mu_yy, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
    var_x = blur(x * x) - mu_xx
    var_y = blur(y * y) - mu_yy
    cov = blur(x * y) - mu_xy
    numerator = (mu_xy * 2 + _C1) * (cov * 2 + _C2)
    denominator = (mu_xx + mu_yy + _C1) * (var_x + var_y + _C2)
    return float((numerator / denominator).avg())


def probe_ssim(reference: pyvips.Image, candidate: pyvips.Image) -> float:
    """ssim() for quality:auto's probes: the same formula in numpy (they agree
    to 1e-5), because libvips spends about 13 ms building and running a graph
    of forty operations even for a 32x32 image, which dominated the small
    probes (numpy: 0.7 ms at 32 px, 5 ms at 300x200 against 22). numpy is
    single-threaded, so large images stay with libvips."""
    if reference.width * reference.height >= NUMPY_SSIM_PIXELS:
        return ssim(reference, candidate)
    # The five Gaussian-weighted means are blurred in one stacked pass.
    x, y = _luma_array(reference), _luma_array(candidate)
    mu_x, mu_y, xx, yy, xy = _blur(np.stack([x, y, x * x, y * y, x * y]))
    mu_xx, mu_yy, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
    numerator = (mu_xy * 2 + _C1) * ((xy - mu_xy) * 2 + _C2)
    denominator = (mu_xx + mu_yy + _C1) * ((xx - mu_xx) + (yy - mu_yy) + _C2)
    return float((numerator / denominator).mean(dtype=np.float64))


# probe_ssim() hands images this large to libvips (numpy: 164 ms at 1200x800, libvips 53).
NUMPY_SSIM_PIXELS = 250_000


def distortion(
    reference: pyvips.Image, candidate: pyvips.Image, perceptual: bool = False
) -> Distortion:
    """Compare an encoded-then-decoded image with the image before encoding.

    `perceptual`: SSIMULACRA2 too (about 1 s per megapixel on one core).
    """
    if (reference.width, reference.height) != (candidate.width, candidate.height):
        raise ValueError("images to compare differ in size")
    ref, cand = comparable(reference).copy_memory(), comparable(candidate).copy_memory()
    error = mse(ref, cand)
    score = ssimulacra2(ref, cand) if perceptual else None
    return Distortion(mse=error, psnr=psnr(error), ssim=ssim(ref, cand), ssimulacra2=score)
