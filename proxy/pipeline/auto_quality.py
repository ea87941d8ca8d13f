"""quality:auto: the quality where one more byte stops buying enough SSIM.

The rule (issue 16; measured in COMPRESSION.md). For a set of images, the
fewest total bytes at a given mean SSIM come from giving every image the
quality at which SSIM gained per extra bit per pixel is the same number for
all of them (the Lagrangian condition, a rate-distortion slope): an image
whose SSIM climbs fast with bytes gets more of them, one whose SSIM hardly
moves (fine texture, which also hides the loss) gets fewer. A fixed SSIM
floor does the opposite and sends detailed photos to the highest quality.

So each image gets the quality that maximises

    value(q) = SSIM(q) - slope * bits_per_pixel(q)

with `slope` a per-format constant calibrated once on the corpus (the SSIM a
bit per pixel must buy). Per pixel, because SSIM is a mean over pixels: the
condition then minimises total bytes at a pixel-weighted mean SSIM, whatever
the output sizes.

Finding that quality costs encodes, so it is searched with a model: locally
1 - SSIM falls as a power of the bit rate (1 - s = c * bpp^-k), which two
probes fix; the model puts the optimum where its slope equals `slope`, and
log(bpp) is interpolated linearly in quality to name that quality. Each new
probe refines the fit with its nearest measured neighbour. The answer is the
best probe by value, so extra probes can only help.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pyvips

from proxy.pipeline.remembered import Remembered

# quality:auto's constants per format, calibrated on the corpus by
# bench/auto_quality.py (COMPRESSION.md "quality:auto"): the slope at which
# the rule's mean SSIM on the corpus matches JPEG q80's, so every format looks
# like JPEG q80 did, by SSIM, at the fewest bytes; and the first quality
# probed, the median of the qualities the rule chose there.
AUTO_QUALITY_SLOPES: Mapping[str, float] = {
    # Calibrated with the search on samples, as it runs now (issue 26,
    # 2026-11-30). WebP keeps issue 16's: the new calibration (0.0615, start
    # 80) left the held-back set 3% over WebP's own fixed-quality curve, the
    # old one is within 1% there and over JPEG q80's mean SSIM on the corpus.
    "jpeg": 0.0354,
    "webp": 0.0497,
    # Recalibrated when AVIF_SPEED's default went from 7 to 6 (its curve moved;
    # at speed 7 it was 0.0513).
    "avif": 0.0531,
    # bench/auto_quality.py --formats jxl,heic, recalibrated for the search on
    # samples (2026-11-30; on whole images they were 0.0444 and 0.0702, which
    # left JPEG XL 2.5% over its own fixed-quality curve once probes sampled).
    "jxl": 0.0362,
    "heic": 0.0495,
}
AUTO_QUALITY_STARTS: Mapping[str, int] = {"jpeg": 78, "webp": 71, "avif": 59, "jxl": 78, "heic": 40}
# A prediction goes at most this many steps beyond the probes it came from:
# extrapolating further is guesswork, and an optimum at the edge of the range
# is still reached within the probes (corpus choices are the same with 2-4).
REACH = 3
# A predicted quality this close to a probed one is not probed (issue 26: the
# search's cost); on the corpus it moved no choice's value by more than
# the search's own noise (COMPRESSION.md).
CLOSE_ENOUGH = 1


@dataclass(frozen=True, slots=True)
class Probe:
    """One encode at one quality, measured."""

    quality: int
    bytes: int
    ssim: float


@dataclass(frozen=True, slots=True)
class SlopeRule:
    """The per-format constants of the rule; see COMPRESSION.md for their calibration."""

    slope: float  # SSIM per bit per pixel below which more bytes are not worth it
    start: int  # the first quality probed: the corpus' median choice
    minimum: int = 30
    maximum: int = 90
    floor: float = 0.0  # safety net: a result below this SSIM takes the maximum quality
    probes: int = 4  # encodes the search may spend (the floor may add one)
    step: int = 10  # the second probe's distance from the first


def value(probe: Probe, rule: SlopeRule, pixels: int) -> float:
    return probe.ssim - rule.slope * 8 * probe.bytes / pixels


def choose_quality(measure: Callable[[int], Probe], rule: SlopeRule, pixels: int) -> Probe:
    """Search qualities in [rule.minimum, rule.maximum] for the best value(q)."""
    probes: dict[int, Probe] = {}

    def probe(quality: int) -> Probe:
        if quality not in probes:
            probes[quality] = measure(quality)
        return probes[quality]

    first = probe(_clamp(rule.start, rule))
    second_quality = _clamp(first.quality + rule.step, rule)
    if second_quality == first.quality:
        second_quality = _clamp(first.quality - rule.step, rule)
    if second_quality != first.quality:
        probe(second_quality)
    while len(probes) < rule.probes and len(probes) >= 2:
        best = max(probes.values(), key=lambda p: value(p, rule, pixels))
        neighbour = min(
            (p for p in probes.values() if p.quality != best.quality),
            key=lambda p: abs(p.quality - best.quality),
        )
        target = _predict(best, neighbour, rule, pixels)
        # Near a quality already measured: the objective is flat at its top, so
        # a probe there buys less than it costs. Not at an end of the range: a
        # prediction clamped there means the objective still climbs towards it
        # (hypothesis found 30 better than 31 by 0.003 with the minimum 30).
        at_end = target in (rule.minimum, rule.maximum) and target not in probes
        if not at_end and any(abs(target - quality) <= CLOSE_ENOUGH for quality in probes):
            break
        probe(target)
    eligible = [p for p in probes.values() if p.ssim >= rule.floor]
    if not eligible:
        return probe(rule.maximum)
    return max(eligible, key=lambda p: value(p, rule, pixels))


def _predict(a: Probe, b: Probe, rule: SlopeRule, pixels: int) -> int:
    """The quality where the power-law model through a and b has slope rule.slope."""
    low, high = sorted((a, b), key=lambda p: p.quality)
    x_low, x_high = _log_bpp(low, pixels), _log_bpp(high, pixels)
    if x_high <= x_low:
        # More quality bought no bytes (it happens at the top of an encoder's scale).
        return _clamp(high.quality + rule.step, rule)
    loss_low, loss_high = max(1 - low.ssim, 1e-6), max(1 - high.ssim, 1e-6)
    k = (math.log(loss_low) - math.log(loss_high)) / (x_high - x_low)
    if k <= 0:
        # Bytes bought no SSIM: the lower quality is the better one; look below it.
        return _clamp(low.quality - rule.step, rule)
    log_c = math.log(loss_low) + k * x_low
    # d(SSIM)/d(bpp) = k * c * bpp^(-k-1) = slope
    x_target = (log_c + math.log(k) - math.log(rule.slope)) / (k + 1)
    per_quality = (x_high - x_low) / (high.quality - low.quality)
    quality = low.quality + (x_target - x_low) / per_quality
    reach = REACH * rule.step
    quality = min(max(quality, low.quality - reach), high.quality + reach)
    return _clamp(round(quality), rule)


def _log_bpp(probe: Probe, pixels: int) -> float:
    return math.log(8 * probe.bytes / pixels)


def _clamp(quality: int, rule: SlopeRule) -> int:
    return min(max(quality, rule.minimum), rule.maximum)


# quality:auto searches a sample of the image: whole rows in bands of
# SAMPLE_ROWS (a multiple of JPEG's 16-row MCU and WebP's macroblock), evenly
# spaced, about 1/SAMPLE_SHARE of the pixels but never fewer than
# SAMPLE_FLOOR (a small image keeps a quarter or more). Rows, not tiles: a row
# keeps its neighbours left and right, and the joins are only horizontal.
# Chosen by bench/auto_quality_cost.py and bench/auto_quality.py (COMPRESSION.md).
SAMPLE_ROWS = 16
SAMPLE_SHARE = 16
SAMPLE_FLOOR = 16_384


def quality_sample(image: pyvips.Image) -> pyvips.Image:
    """Evenly spaced bands of whole rows, in memory; the image itself if small."""
    pixels = image.width * image.height
    wanted = max(pixels // SAMPLE_SHARE, min(pixels // 4, SAMPLE_FLOOR))
    bands = image.height // SAMPLE_ROWS
    take = math.ceil(wanted / (image.width * SAMPLE_ROWS))
    if bands < 4 or take * 2 > bands:
        return image
    step = bands / take
    rows = [
        image.crop(0, int((i + 0.5) * step) * SAMPLE_ROWS, image.width, SAMPLE_ROWS)
        for i in range(take)
    ]
    return pyvips.Image.arrayjoin(rows, across=1).copy_memory()


# Probes of a sample are encoded at a format's fastest setting where its bytes
# follow the real encoder's by a steady factor: AVIF at libaom's speed 9, whose
# SSIM is lower than the slower speeds' by a near-constant 0.001-0.002, which
# moves no choice (the rule compares differences). The probe's bytes are
# divided by the factor for the configured AVIF_SPEED: the median over the
# corpus' samples at 300 and 1200 px and qualities 40-85 of speed 9's bytes
# over that speed's (bench/avif_speed.py). Speeds below 5 were not measured
# (seconds per encode); they get speed 5's, the nearest.
AVIF_PROBE_BYTES_RATIO: Mapping[int, float] = {9: 1.0, 8: 1.055, 7: 1.07, 6: 1.107, 5: 1.138}


def probe_bytes_ratio(fmt: str, avif_speed: int) -> float:
    """What a probe's bytes are divided by to stand for the real encode's."""
    if fmt != "avif":
        return 1.0
    return AVIF_PROBE_BYTES_RATIO.get(avif_speed, AVIF_PROBE_BYTES_RATIO[5])


class AutoQualityMemory(Remembered[int]):
    """The quality chosen for a picture, by its analysis key, for its other sizes.

    Across the widths of one srcset the rule's choice moves by about as much as
    the search's own noise (bench/auto_quality_cost.py --srcset), so the first
    width's choice is used for the rest rather than searched again.
    """
