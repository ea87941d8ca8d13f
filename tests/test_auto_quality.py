"""quality:auto's search (proxy.pipeline.auto_quality) on curves whose optimum is known.

The search is a pure function of a `measure(quality)` callback, so here it runs
on analytic rate-distortion curves: bytes grow exponentially with quality and
1 - SSIM falls as a power of the bit rate, the shape real encoders show
(COMPRESSION.md). The best quality is then found by trying every one.
"""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.pipeline.auto_quality import Probe, SlopeRule, choose_quality, value

PIXELS = 1_000_000


def curve(base_bpp: float, growth: float, loss: float, power: float):
    def measure(quality: int) -> Probe:
        bpp = base_bpp * math.exp(growth * quality)
        ssim = 1 - loss * bpp ** (-power)
        return Probe(quality, round(bpp * PIXELS / 8), ssim)

    return measure


def best_of_all(measure, rule: SlopeRule) -> Probe:
    return max(
        (measure(q) for q in range(rule.minimum, rule.maximum + 1)),
        key=lambda p: value(p, rule, PIXELS),
    )


def counted(measure):
    calls: list[int] = []

    def wrapped(quality: int) -> Probe:
        calls.append(quality)
        return measure(quality)

    return wrapped, calls


def test_the_search_finds_the_analytic_optimum_in_few_probes() -> None:
    measure = curve(0.05, 0.04, 0.01, 0.8)
    rule = SlopeRule(slope=0.02, start=60)
    wrapped, calls = counted(measure)
    chosen = choose_quality(wrapped, rule, PIXELS)
    best = best_of_all(measure, rule)
    assert abs(chosen.quality - best.quality) <= 2
    assert value(chosen, rule, PIXELS) >= value(best, rule, PIXELS) - 1e-4
    assert len(calls) <= rule.probes
    assert len(set(calls)) == len(calls)  # no quality encoded twice


def test_a_lower_slope_chooses_a_higher_quality() -> None:
    measure = curve(0.05, 0.04, 0.01, 0.8)
    qualities = [
        choose_quality(measure, SlopeRule(slope=slope, start=60), PIXELS).quality
        for slope in (0.2, 0.05, 0.02, 0.005)
    ]
    assert qualities == sorted(qualities)
    assert qualities[0] < qualities[-1]


def test_bytes_that_buy_no_ssim_send_the_search_down() -> None:
    def flat(quality: int) -> Probe:
        return Probe(quality, 1000 * quality, 0.95)

    rule = SlopeRule(slope=0.05, start=60)
    assert choose_quality(flat, rule, PIXELS).quality < 60


def test_the_floor_takes_the_maximum_when_no_probe_reaches_it() -> None:
    measure = curve(0.05, 0.04, 0.01, 0.8)
    rule = SlopeRule(slope=0.05, start=60, maximum=88, floor=0.9999)
    wrapped, calls = counted(measure)
    assert choose_quality(wrapped, rule, PIXELS).quality == 88
    assert len(calls) <= rule.probes + 1


# Ranges of the curves measured on the corpus (0.1-6 bits per pixel over
# qualities 30-90), and slopes from a quarter to four times the shipped ones.
@settings(max_examples=200, deadline=None)
@given(
    base_bpp=st.floats(0.02, 0.3),
    growth=st.floats(0.02, 0.06),
    loss=st.floats(0.002, 0.1),
    power=st.floats(0.3, 1.5),
    slope=st.floats(0.01, 0.24),
    start=st.integers(30, 90),
)
def test_the_choice_is_in_range_and_the_best_probe(
    base_bpp: float, growth: float, loss: float, power: float, slope: float, start: int
) -> None:
    measure = curve(base_bpp, growth, loss, power)
    rule = SlopeRule(slope=slope, start=start)
    wrapped, calls = counted(measure)
    chosen = choose_quality(wrapped, rule, PIXELS)
    assert rule.minimum <= chosen.quality <= rule.maximum
    assert all(rule.minimum <= q <= rule.maximum for q in calls)
    assert len(calls) <= rule.probes
    probed = [measure(q) for q in calls]
    assert value(chosen, rule, PIXELS) == max(value(p, rule, PIXELS) for p in probed)
    # Never far from the best quality there is (the curve is smooth and concave).
    best = best_of_all(measure, rule)
    assert value(chosen, rule, PIXELS) >= value(best, rule, PIXELS) - 0.002
