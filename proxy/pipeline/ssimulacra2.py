"""SSIMULACRA2 (Jon Sneyers, Cloudinary; in libjxl), computed with OpenCV.

A perceptual score from 100 (identical) down (30 is "low quality", 90 "very
high"): images go to the XYB colour space of JPEG XL, and at six scales an
SSIM map and two edge-difference maps (artifacts that appear, detail that is
lost) are pooled with the mean and the 4-norm; 108 weighted features give the
score. Unlike plain SSIM it models masking, so textured photos are not pushed
to high qualities to hide errors nobody sees.

The constants are the metric's own (libjxl's tools/ssimulacra2.cc);
`tests/test_ssimulacra2.py` checks the result against an independent
implementation (the `ssimulacra2` package).

Every step is a whole-plane OpenCV or numpy operation: the colour conversion
in float32, then one XYB channel at a time in float64. It was a graph of some
700 libvips operations, built and run once a scale: 0.33-0.40 s for a 320 px
image, most of it building, and on jemalloc each libvips thread kept
hundreds of megabytes of region buffers. Here the cost is the arithmetic
(19-30 ms at 320 px, 0.6-0.7 s at 1600 px) and the memory a fixed number of
planes, 78 bytes a pixel at the peak (bench/ssimulacra2_cost.py,
BENCHMARKS.md).
"""

from __future__ import annotations

import math

import numpy as np
import pyvips

from proxy.pipeline import interrupt

_SCALES = 6
_C2 = 0.0009
_OPSIN = [
    [0.30, 1.0 - 0.078 - 0.30, 0.078],
    [0.23, 1.0 - 0.078 - 0.23, 0.078],
    [0.24342268924547819, 0.20476744424496821, 1.0 - 0.24342268924547819 - 0.20476744424496821],
]
_BIAS = 0.0037930732552754493
_CBRT_BIAS = _BIAS ** (1 / 3)

# Gaussian of sigma 1.5 truncated at 3.33 sigma (radius 5), as the reference blur.
_SIGMA = 1.5
_RADIUS = 5
_KERNEL = np.array(
    [math.exp(-(i * i) / (2 * _SIGMA * _SIGMA)) for i in range(-_RADIUS, _RADIUS + 1)]
)
_TAPS = (_KERNEL / _KERNEL.sum()).astype(np.float32)
_NO_TAPS = np.ones(1, dtype=np.float32)

# sRGB byte -> linear light, as a lookup table.
_BYTES = np.arange(256) / 255.0
_LINEAR = np.where(_BYTES <= 0.04045, _BYTES / 12.92, ((_BYTES + 0.055) / 1.055) ** 2.4)
_LINEAR_TABLE = _LINEAR.astype(np.float32).reshape(1, 256)

# Per channel (X, Y, B), per scale, per norm (mean, 4-norm): SSIM, artifact, detail lost.
_WEIGHTS = (
    0.0, 0.0007376606707406586, 0.0, 0.0, 0.0007793481682867309, 0.0, 0.0,
    0.0004371155730107379, 0.0, 1.1041726426657346, 0.00066284834129271,
    0.00015231632783718752, 0.0, 0.0016406437456599754, 0.0, 1.8422455520539298,
    11.441172603757666, 0.0, 0.0007989109436015163, 0.000176816438078653, 0.0,
    1.8787594979546387, 10.94906990605142, 0.0, 0.0007289346991508072,
    0.9677937080626833, 0.0, 0.00014003424285435884, 0.9981766977854967,
    0.00031949755934435053, 0.0004550992113792063, 0.0, 0.0, 0.0013648766163243398,
    0.0, 0.0, 0.0, 0.0, 0.0, 7.466890328078848, 0.0, 17.445833984131262,
    0.0006235601634041466, 0.0, 0.0, 6.683678146179332, 0.00037724407979611296,
    1.027889937768264, 225.20515300849274, 0.0, 0.0, 19.213238186143016,
    0.0011401524586618361, 0.001237755635509985, 176.39317598450694, 0.0, 0.0,
    24.43300999870476, 0.28520802612117757, 0.0004485436923833408, 0.0, 0.0, 0.0,
    34.77906344483772, 44.835625328877896, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
    0.0008680556573291698, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0005313191874358747, 0.0,
    0.00016533814161379112, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0004179171803251336,
    0.0017290828234722833, 0.0, 0.0020827005846636437, 0.0, 0.0, 8.826982764996862,
    23.19243343998926, 0.0, 95.1080498811086, 0.9863978034400682, 0.9834382792465353,
    0.0012286405048278493, 171.2667255897307, 0.9807858872435379, 0.0, 0.0, 0.0,
    0.0005130064588990679, 0.0, 0.00010854057858411537,
)  # fmt: skip


def ssimulacra2(reference: pyvips.Image, candidate: pyvips.Image) -> float:
    """The score of `candidate` against `reference`: 8-bit sRGB images of one size."""
    if (reference.width, reference.height) != (candidate.width, candidate.height):
        raise ValueError("images to compare differ in size")
    import cv2  # a dependency already (faces)

    linear_ref = cv2.LUT(reference.cast("uchar").numpy(), _LINEAR_TABLE)
    linear_cand = cv2.LUT(candidate.cast("uchar").numpy(), _LINEAR_TABLE)
    # features[channel][scale] = (ssim mean, ssim 4-norm, artifact mean, artifact 4-norm,
    #                             detail-lost mean, detail-lost 4-norm)
    features: list[list[tuple[float, ...]]] = [[], [], []]
    for _ in range(_SCALES):
        # Up to a second at 2 MP, out of libvips' reach: a run nobody waits
        # for any more stops here, between scales and channels.
        interrupt.check()
        height, width = linear_ref.shape[:2]
        if width < 8 or height < 8:
            break
        # The next scale's input first, so each linear image goes once converted.
        half_ref, half_cand = _half(linear_ref), _half(linear_cand)
        planes_ref = _xyb_planes(linear_ref)
        linear_ref = half_ref
        planes_cand = _xyb_planes(linear_cand)
        linear_cand = half_cand
        for channel in range(3):
            interrupt.check()
            # Popped: each float32 plane goes once its float64 copy is made.
            features[channel].append(_channel_features(planes_ref.pop(0), planes_cand.pop(0)))
    total = 0.0
    index = 0
    for channel in range(3):
        for scale_features in features[channel]:
            ssim_avg, ssim_l4, art_avg, art_l4, lost_avg, lost_l4 = scale_features
            for ssim_value, art_value, lost_value in (
                (ssim_avg, art_avg, lost_avg),
                (ssim_l4, art_l4, lost_l4),
            ):
                total += _WEIGHTS[index] * abs(ssim_value)
                total += _WEIGHTS[index + 1] * abs(art_value)
                total += _WEIGHTS[index + 2] * abs(lost_value)
                index += 3
    return _score(total)


def _channel_features(one: np.ndarray, two: np.ndarray) -> tuple[float, ...]:
    """The SSIM, artifact and detail-lost maps of one XYB plane at one scale,
    each pooled by its mean and its 4-norm. Three scratch planes beside the four
    it needs (the two images and their local means): seven planes at most.

    In float64: the variances are differences of near-equal numbers (the blur
    of x^2 less the square of the blurred x), and in float32 a score of 91
    moved by 0.009 from the reference implementation's (float64) one."""
    import cv2

    one, two = one.astype(np.float64), two.astype(np.float64)
    mu1, mu2 = _blur(one), _blur(two)
    a, b = np.empty_like(one), np.empty_like(one)
    # SSIM's distance: 1 - (1 - (mu1 - mu2)^2) (2 sigma12 + C2) / (sigma11 + sigma22 + C2)
    # Each variance whole before the sum: of identical images the sum is then
    # exactly twice the covariance below, and the distance exactly 0.
    denominator = _blur(cv2.multiply(one, one, dst=a), b)  # a new plane: the third
    denominator -= cv2.multiply(mu1, mu1, dst=a)
    variance_two = _blur(cv2.multiply(two, two, dst=a), b, a)
    variance_two -= cv2.multiply(mu2, mu2, dst=b)
    denominator += variance_two
    denominator += _C2
    numerator = _blur(cv2.multiply(one, two, dst=a), b, a)
    numerator -= cv2.multiply(mu1, mu2, dst=b)
    numerator *= 2.0
    numerator += _C2
    means_apart = cv2.absdiff(mu1, mu2, dst=b)
    means_apart *= means_apart
    numerator *= np.subtract(1.0, means_apart, out=means_apart)
    distance = cv2.divide(numerator, denominator, dst=denominator)
    np.subtract(1.0, distance, out=distance)
    np.maximum(distance, 0.0, out=distance)
    ssim_pooled = _pooled(distance, b)
    # Artifacts (detail that appears) and detail lost: how much farther from
    # its local mean the candidate is than the reference, above and below 1.
    ratio = cv2.absdiff(two, mu2, dst=b)
    ratio += 1.0
    near_ref = cv2.absdiff(one, mu1, dst=a)
    near_ref += 1.0
    cv2.divide(ratio, near_ref, dst=ratio)
    ratio -= 1.0
    artifact_pooled = _pooled(np.maximum(ratio, 0.0, out=distance), a)
    lost_pooled = _pooled(np.maximum(np.negative(ratio, out=ratio), 0.0, out=ratio), a)
    return (*ssim_pooled, *artifact_pooled, *lost_pooled)


def _pooled(plane: np.ndarray, scratch: np.ndarray) -> tuple[float, float]:
    """The mean and the 4-norm (accumulated in double by OpenCV)."""
    import cv2

    mean = cv2.mean(plane)[0]
    fourth = cv2.multiply(plane, plane, dst=scratch)
    fourth *= fourth
    return mean, cv2.mean(fourth)[0] ** 0.25


def _score(total: float) -> float:
    value = total * 0.9562382616834844
    value = (
        2.326765642916932 * value
        - 0.020884521182843837 * value * value
        + 6.248496625763138e-05 * value * value * value
    )
    return 100.0 - 10.0 * value**0.6276336467831387 if value > 0 else 100.0


# Linear RGB -> the opsin mix plus its bias (an affine transform: 3x4).
_OPSIN_AFFINE = np.array([[*row, _BIAS] for row in _OPSIN], dtype=np.float32)
# The cube roots -> X, Y, B made positive, one plane each: X = 14 (r - g) / 2
# + 0.42, Y = (r + g) / 2 + 0.01, B = b - (r + g) / 2 + 0.55.
_XYB_ROWS = [
    np.array([row], dtype=np.float32)
    for row in ([7.0, -7.0, 0.0, 0.42], [0.5, 0.5, 0.0, 0.01], [-0.5, -0.5, 1.0, 0.55])
]


def _xyb_planes(linear: np.ndarray) -> list[np.ndarray]:
    """Linear RGB -> the X, Y and B planes, made positive as SSIMULACRA2 does."""
    import cv2

    mixed = cv2.transform(linear, _OPSIN_AFFINE)
    np.maximum(mixed, 0.0, out=mixed)
    np.cbrt(mixed, out=mixed)
    mixed -= _CBRT_BIAS
    return [cv2.transform(mixed, row) for row in _XYB_ROWS]


def _half(image: np.ndarray) -> np.ndarray:
    """A 2x2 box average; an odd last row or column averages with itself, as the reference."""
    import cv2

    height, width = image.shape[:2]
    if height % 2 or width % 2:
        image = cv2.copyMakeBorder(image, 0, height % 2, 0, width % 2, cv2.BORDER_REPLICATE)
        height, width = image.shape[:2]
    return cv2.resize(image, (width // 2, height // 2), interpolation=cv2.INTER_AREA)


def _blur(
    plane: np.ndarray, between: np.ndarray | None = None, out: np.ndarray | None = None
) -> np.ndarray:
    """The reference's blur: mirrored at the sides, zeros above and below.
    Two passes (one border each) through `between`; `out` may be the input,
    which the first pass has read whole."""
    import cv2

    across = cv2.sepFilter2D(plane, -1, _TAPS, _NO_TAPS, dst=between, borderType=cv2.BORDER_REFLECT)
    return cv2.sepFilter2D(across, -1, _NO_TAPS, _TAPS, dst=out, borderType=cv2.BORDER_CONSTANT)
