"""quality:auto's search (proxy.pipeline.auto_quality) on curves whose optimum is known.

The search is a pure function of a `measure(quality)` callback, so here it runs
on analytic rate-distortion curves: bytes grow exponentially with quality and
1 - SSIM falls as a power of the bit rate, the shape real encoders show
(COMPRESSION.md). The best quality is then found by trying every one.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.pipeline.auto_quality import Probe, SlopeRule, choose_quality, probe_bytes_ratio, value
from proxy.pipeline.encode import (
    EncodeRequest,
    EncoderSettings,
    _Counter,
    choose_auto_quality,
    encode,
)
from proxy.pipeline.load import decode_result
from proxy.pipeline.metrics import comparable, probe_ssim
from tests.images import photo_like

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


# --- what the search runs on (issue 26) ---------------------------------------


def test_the_sample_is_evenly_spaced_whole_rows() -> None:
    import pyvips

    from proxy.pipeline.auto_quality import SAMPLE_ROWS, quality_sample

    # Each row holds its own number (high byte, low byte), so the sample shows
    # which rows it took.
    y = pyvips.Image.xyz(1200, 800)[1]
    rows = (y / 256).floor().bandjoin(y % 256).cast("uchar").copy_memory()

    def row_number(image: pyvips.Image, at: int) -> int:
        high, low = image(0, at)
        return int(high) * 256 + int(low)

    sample = quality_sample(rows)
    assert sample.width == 1200 and sample.height % SAMPLE_ROWS == 0
    assert 1200 * 800 / 20 <= sample.width * sample.height <= 1200 * 800 / 12
    starts = [row_number(sample, at) for at in range(0, sample.height, SAMPLE_ROWS)]
    assert all(start % SAMPLE_ROWS == 0 for start in starts)  # on the encoders' 16-row grid
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) > SAMPLE_ROWS and max(gaps) - min(gaps) <= SAMPLE_ROWS  # evenly spaced
    assert starts[0] < 800 / 8 and starts[-1] > 800 * 7 / 8 - SAMPLE_ROWS  # top to bottom
    for index, start in enumerate(starts):  # whole bands, rows in order
        taken = [row_number(sample, index * SAMPLE_ROWS + y) for y in range(SAMPLE_ROWS)]
        assert taken == list(range(start, start + SAMPLE_ROWS))


def test_a_small_image_is_sampled_by_a_quarter_or_searched_whole() -> None:
    import pyvips

    from proxy.pipeline.auto_quality import quality_sample

    thumbnail = pyvips.Image.black(300, 200, bands=3).copy_memory()
    sample = quality_sample(thumbnail)
    assert sample.width == 300 and 300 * 200 / 5 <= sample.width * sample.height <= 300 * 200 / 2
    tiny = pyvips.Image.black(120, 60, bands=3).copy_memory()
    assert quality_sample(tiny) is tiny


def test_the_probes_ssim_is_the_same_number_as_ssim() -> None:
    from proxy.pipeline.metrics import probe_ssim, ssim
    from tests.images import photo_like, ssim_reference

    reference = photo_like(300, 200).copy_memory()
    for quality in (20, 60, 90):
        import pyvips

        decoded = pyvips.Image.new_from_buffer(reference.jpegsave_buffer(Q=quality), "")
        decoded = decoded.copy_memory()
        fast = probe_ssim(reference, decoded)
        assert fast == pytest.approx(ssim(reference, decoded), abs=2e-5)
        assert fast == pytest.approx(ssim_reference(reference, decoded), abs=2e-5)


def test_one_kept_reference_measures_every_probe_as_a_fresh_one_would() -> None:
    """A search keeps the sample's side of SSIM (SsimReference) for all its
    probes: measuring one probe must not change what it gives the next."""
    import pyvips

    from proxy.pipeline.metrics import SsimReference, ssim

    reference = photo_like(300, 48, seed=5).copy_memory()
    kept = SsimReference(reference)
    for quality in (90, 20, 60, 20):
        decoded = pyvips.Image.new_from_buffer(reference.jpegsave_buffer(Q=quality), "")
        decoded = decoded.copy_memory()
        assert kept.ssim(decoded) == SsimReference(reference).ssim(decoded)
        assert kept.ssim(decoded) == pytest.approx(ssim(reference, decoded), abs=2e-5)


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "avif", "jxl", "heic"])
@pytest.mark.parametrize("bands", [1, 3, 4])
def test_a_probe_is_measured_as_the_sources_would_read_it(fmt: str, bands: int) -> None:
    """Probes are read the fast way (JPEG and WebP by OpenCV's decoder, AVIF by
    its libvips loader, without the sources' header sniffing): the SSIM is
    the very number reading them through the sources gives, for grey, colour
    and transparent samples; where the fast way does not apply it says so."""
    from proxy.pipeline.encode import _decode_probe, _probe_pixels
    from proxy.pipeline.metrics import SsimReference

    image = photo_like(120, 80, seed=6)
    if bands == 1:
        image = image.colourspace("b-w")
    elif bands == 4:
        image = image.bandjoin(image[1])  # an alpha that varies
    reference = SsimReference(comparable(image).copy_memory())
    data = encode(image, fmt, 60, "none", EncoderSettings(), probe=True)
    through_sources = reference.ssim(comparable(decode_result(data)))
    assert reference.ssim(comparable(_decode_probe(data, fmt))) == through_sources
    rgb = _probe_pixels(data, fmt)
    if fmt in ("jpeg", "webp") and not (fmt == "webp" and bands == 4):
        assert rgb is not None and reference.ssim_of_rgb(rgb) == through_sources
    else:
        assert rgb is None  # another format, or alpha for libvips to flatten


def test_the_memory_keeps_choices_by_key_and_forgets_the_oldest() -> None:
    from proxy.pipeline.auto_quality import AutoQualityMemory

    memory = AutoQualityMemory(entries=2)
    assert memory.get("a") is None
    memory.put("a", 70)
    memory.put("b", 60)
    memory.get("a")
    memory.put("c", 50)  # "b" was used least recently
    assert (memory.get("a"), memory.get("b"), memory.get("c")) == (70, None, 50)


def test_the_analysis_key_ignores_size_and_delivery_only() -> None:
    from proxy.options.model import ProcessingOptions

    base = ProcessingOptions(source_url="http://x/a.jpg", width=300, auto_quality=True)
    same = [
        replace(base, width=1200, height=800, dpr=2.0),
        replace(base, cachebuster="x", expires=9_999_999_999, filename="a"),
        replace(base, source_url="http://mirror/a.jpg"),  # the digest says which bytes
    ]
    assert all(other.analysis_key() == base.analysis_key() for other in same)
    different = [replace(base, blur=2.0), replace(base, sharpen=1.0), replace(base, rotate=90)]
    assert all(other.analysis_key() != base.analysis_key() for other in different)


def test_avif_probe_bytes_stand_for_the_configured_speed() -> None:
    """Probes run at speed 9; their bytes are scaled to the speed the answer is
    encoded at (the slower the speed, the fewer its bytes against speed 9's),
    speeds slower than those measured taking the slowest measured."""
    ratios = [probe_bytes_ratio("avif", speed) for speed in (9, 8, 7, 6, 5)]
    assert ratios[0] == 1.0 and ratios == sorted(ratios)
    assert probe_bytes_ratio("avif", 7) == 1.07  # what speed 7 shipped with
    assert probe_bytes_ratio("avif", 0) == probe_bytes_ratio("avif", 5)
    assert probe_bytes_ratio("webp", 6) == probe_bytes_ratio("jpeg", 0) == 1.0


@pytest.mark.parametrize("size", [(48, 48), (300, 40)])
def test_a_small_avif_is_searched_with_its_real_bytes(size: tuple[int, int]) -> None:
    """An image too small to sample (under 64 rows) is searched with real
    encodes at the configured speed: their bytes are the answer's, not a
    speed-9 probe's to be scaled. The choice is then the search run directly
    on those encodes (the same deterministic encoder, SSIM on the whole image)."""
    image = photo_like(*size, seed=3)
    settings_ = EncoderSettings()
    request = EncodeRequest(format="avif", quality=80, keep="none", auto_quality=True)
    reference = comparable(image).copy_memory()

    def measure(quality: int) -> Probe:
        data = encode(image, "avif", quality, "none", settings_)
        return Probe(quality, len(data), probe_ssim(reference, comparable(decode_result(data))))

    rule = settings_.auto_quality_rule("avif")
    expected = choose_quality(measure, rule, image.width * image.height)
    quality, data = choose_auto_quality(image, request, settings_, _Counter(request, settings_))
    assert quality == expected.quality
    assert len(data) == expected.bytes
