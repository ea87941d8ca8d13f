"""How far an encoded image is from the unencoded one: MSE, PSNR, SSIM, SSIMULACRA2.

The arithmetic runs in whole-image operations (libvips; for the probes' SSIM
and for SSIMULACRA2, numpy and OpenCV's separable filter), so measuring a
1200 px result costs tens of milliseconds, not seconds of Python loops.

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

# Pixels the quality metrics of a result (/info's) are measured on at most
# (about 1600x1250): past it both images are reduced first.
METRICS_MAX_PIXELS = 2_000_000

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


def _blur(plane: np.ndarray) -> np.ndarray:
    """The Gaussian of one float32 plane, edges repeated (as libvips' gaussblur).
    OpenCV's separable filter: a probe's SSIM against a kept reference takes
    0.74 ms at 300x48 and 1.06 ms at 1200x48, where the same sums in numpy
    took 1.27 and 2.49."""
    import cv2  # a dependency already (faces); loaded where SSIM is first measured

    taps = _gaussian_taps()
    return cv2.sepFilter2D(plane, cv2.CV_32F, taps, taps, borderType=cv2.BORDER_REPLICATE)


def _luma_array(image: pyvips.Image) -> np.ndarray:
    pixels = np.ndarray(
        buffer=image.cast("uchar").write_to_memory(),
        dtype=np.uint8,
        shape=(image.height, image.width, image.bands),
    )
    return _luma_of_rgb(pixels)


def _luma_of_rgb(pixels: np.ndarray) -> np.ndarray:
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


class SsimReference:
    """One side of ssim() measured once: quality:auto compares every probe
    with the same sample, so its luma and Gaussian statistics are kept
    (numpy, below NUMPY_SSIM_PIXELS; larger images go to libvips' ssim()).
    The same formula as ssim(); they agree to 1e-5."""

    def __init__(self, reference: pyvips.Image):
        self.image = reference
        self.in_numpy = reference.width * reference.height < NUMPY_SSIM_PIXELS
        if self.in_numpy:
            self.luma = _luma_array(reference)
            self.mean = _blur(self.luma)
            self.mean_squared = self.mean * self.mean
            self.variance = _blur(self.luma * self.luma) - self.mean_squared

    def ssim(self, candidate: pyvips.Image) -> float:
        """Mean SSIM of the candidate's luma against the reference's."""
        if not self.in_numpy:
            return ssim(self.image, candidate)
        return self._ssim_of_luma(_luma_array(candidate))

    def ssim_of_rgb(self, pixels: np.ndarray) -> float:
        """ssim() of a candidate given as 8-bit RGB pixels (height x width x 3),
        as comparable() would make them; only where `in_numpy`."""
        return self._ssim_of_luma(_luma_of_rgb(pixels))

    def _ssim_of_luma(self, y: np.ndarray) -> float:
        mu_x, mu_y = self.mean, _blur(y)
        mu_xx, mu_yy, mu_xy = self.mean_squared, mu_y * mu_y, mu_x * mu_y
        var_y = _blur(y * y) - mu_yy
        cov = _blur(self.luma * y) - mu_xy
        numerator = (mu_xy * 2 + _C1) * (cov * 2 + _C2)
        denominator = (mu_xx + mu_yy + _C1) * (self.variance + var_y + _C2)
        return float((numerator / denominator).mean(dtype=np.float64))


def probe_ssim(reference: pyvips.Image, candidate: pyvips.Image) -> float:
    """ssim() for quality:auto's probes: the same formula in numpy below
    NUMPY_SSIM_PIXELS, because libvips spends milliseconds building and running
    a graph of forty operations even for a small image, which dominated the
    small probes (when chosen: 13 ms at 32x32; numpy 0.7 ms at 32 px, 5 ms at
    300x200 against 22). Large images stay with libvips, which streams (see
    NUMPY_SSIM_PIXELS). A search measures many candidates against one
    reference: SsimReference keeps the reference's side."""
    return SsimReference(reference).ssim(candidate)


# probe_ssim() hands images this large to libvips. Not for time: with OpenCV's
# filter a probe against a kept reference takes 21 ms at 1200x675 and 35 at
# 2000x1125, libvips 48 and 71. For memory: numpy keeps 16 bytes a pixel of
# the reference and peaks at 56 more for each probe, which the footprint does
# not count; a q:auto sample only passes this size for results over 4 MP.
NUMPY_SSIM_PIXELS = 250_000


def distortion(
    reference: pyvips.Image, candidate: pyvips.Image, perceptual: bool = False
) -> Distortion:
    """Compare an encoded-then-decoded image with the image before encoding.

    `perceptual`: SSIMULACRA2 too (about 0.4 s per megapixel on one core).
    """
    if (reference.width, reference.height) != (candidate.width, candidate.height):
        raise ValueError("images to compare differ in size")
    ref, cand = comparable(reference).copy_memory(), comparable(candidate).copy_memory()
    error = mse(ref, cand)
    score = ssimulacra2(ref, cand) if perceptual else None
    return Distortion(mse=error, psnr=psnr(error), ssim=ssim(ref, cand), ssimulacra2=score)
