"""SSIMULACRA2 (Jon Sneyers, Cloudinary; in libjxl), computed with libvips.

A perceptual score from 100 (identical) down (30 is "low quality", 90 "very
high"): images go to the XYB colour space of JPEG XL, and at six scales an
SSIM map and two edge-difference maps (artifacts that appear, detail that is
lost) are pooled with the mean and the 4-norm; 108 weighted features give the
score. Unlike plain SSIM it models masking, so textured photos are not pushed
to high qualities to hide errors nobody sees.

The constants are the metric's own (libjxl's tools/ssimulacra2.cc). Every
operation is a whole-image libvips one; `tests/test_ssimulacra2.py` checks the
result against an independent implementation (the `ssimulacra2` package).
"""

from __future__ import annotations

import math

import pyvips

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
_KERNEL = [math.exp(-(i * i) / (2 * _SIGMA * _SIGMA)) for i in range(-_RADIUS, _RADIUS + 1)]

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
    linear_ref = _linear(reference).copy_memory()
    linear_cand = _linear(candidate).copy_memory()
    # features[channel][scale] = (ssim mean, ssim 4-norm, artifact mean, artifact 4-norm,
    #                             detail-lost mean, detail-lost 4-norm)
    features: list[list[tuple[float, ...]]] = [[], [], []]
    for scale in range(_SCALES):
        if scale:
            linear_ref = _half(linear_ref).copy_memory()
            linear_cand = _half(linear_cand).copy_memory()
        if linear_ref.width < 8 or linear_ref.height < 8:
            break
        one, two = _xyb(linear_ref).copy_memory(), _xyb(linear_cand).copy_memory()
        mu1, mu2 = _blur(one).copy_memory(), _blur(two).copy_memory()
        ssim_map = _ssim_map(mu1, mu2, _blur(one * one), _blur(two * two), _blur(one * two))
        ratio = (1.0 + (two - mu2).abs()) / (1.0 + (one - mu1).abs()) - 1.0
        artifact = _positive(ratio)
        lost = _positive(ratio * -1.0)
        maps = ssim_map.bandjoin([artifact, lost])  # 9 bands: 3 maps x 3 channels
        squared = maps * maps
        # One pass over the pixels for all 18 averages: the maps and their 4th powers.
        stats = maps.bandjoin(squared * squared).stats()
        means = [stats(4, band + 1)[0] for band in range(18)]
        for channel in range(3):
            features[channel].append(
                tuple(
                    value
                    for kind in range(3)
                    for value in (means[kind * 3 + channel], means[9 + kind * 3 + channel] ** 0.25)
                )
            )
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


def _score(total: float) -> float:
    value = total * 0.9562382616834844
    value = (
        2.326765642916932 * value
        - 0.020884521182843837 * value * value
        + 6.248496625763138e-05 * value * value * value
    )
    return 100.0 - 10.0 * value**0.6276336467831387 if value > 0 else 100.0


def _linear(image: pyvips.Image) -> pyvips.Image:
    # A lookup table: 256 entries instead of a power per pixel.
    table = pyvips.Image.identity().cast("float") / 255.0
    table = (table <= 0.04045).ifthenelse(table / 12.92, ((table + 0.055) / 1.055) ** 2.4)
    return image.maplut(table)


def _xyb(linear: pyvips.Image) -> pyvips.Image:
    """Linear RGB -> XYB, made positive as SSIMULACRA2 does."""
    mixed = linear.recomb(_OPSIN) + _BIAS
    mixed = _positive(mixed) ** (1 / 3) - _CBRT_BIAS
    x = (mixed[0] - mixed[1]) * 0.5
    y = (mixed[0] + mixed[1]) * 0.5
    b = mixed[2]
    return (x * 14.0 + 0.42).bandjoin([y + 0.01, (b - y) + 0.55])


def _half(image: pyvips.Image) -> pyvips.Image:
    """A 2x2 box average; an odd last row or column averages with itself, as the reference."""
    even = image.embed(0, 0, image.width + image.width % 2, image.height + image.height % 2,
                       extend="copy")  # fmt: skip
    return even.shrink(2, 2)


def _blur(image: pyvips.Image) -> pyvips.Image:
    """The reference's blur: zeros above and below, mirrored at the sides."""
    padded = image.embed(0, _RADIUS, image.width, image.height + 2 * _RADIUS, extend="black")
    padded = padded.embed(_RADIUS, 0, padded.width + 2 * _RADIUS, padded.height, extend="mirror")
    mask = pyvips.Image.new_from_list([_KERNEL], scale=sum(_KERNEL))
    blurred = padded.convsep(mask, precision="float")
    return blurred.crop(_RADIUS, _RADIUS, image.width, image.height)


def _ssim_map(
    mu1: pyvips.Image,
    mu2: pyvips.Image,
    sigma11: pyvips.Image,
    sigma22: pyvips.Image,
    sigma12: pyvips.Image,
) -> pyvips.Image:
    mu11, mu22, mu12 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    num_m = 1.0 - (mu1 - mu2) * (mu1 - mu2)
    num_s = (sigma12 - mu12) * 2.0 + _C2
    denom_s = (sigma11 - mu11) + (sigma22 - mu22) + _C2
    distance = 1.0 - num_m * num_s / denom_s
    return _positive(distance)


def _positive(image: pyvips.Image) -> pyvips.Image:
    """max(image, 0), without a mask image."""
    return (image + image.abs()) * 0.5
