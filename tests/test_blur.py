"""imgproxy's `bl:` at wide sigmas: computed on a shrunk copy from
BLUR_SHRINK_FROM (steps.gaussian_blur), checked against libvips' own
gaussblur in float, done here directly with pyvips on the same pixels.
Timing is in bench/blur.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import pyvips

from bench.thumbor_filters import measure_memories
from proxy.options import ParserConfig, parse_options
from proxy.pipeline.process import ProcessingLimits, process_image
from proxy.pipeline.steps import BLUR_SHRINK_FROM, BLUR_SHRINK_FROM_NON_UCHAR
from proxy.settings import Settings
from tests.images import decode, encode, photo_like, solid, with_alpha, with_patchy_alpha

LIMITS = ProcessingLimits.from_settings(Settings())


def blurred_by_pixelpipe(source: pyvips.Image, sigma: float) -> pyvips.Image:
    options = parse_options((f"bl:{sigma}",), "http://example.com/a.png", "png", ParserConfig())
    return decode(process_image(encode(source, "png"), options, LIMITS).data)


@pytest.mark.parametrize("sigma", [BLUR_SHRINK_FROM - 1, BLUR_SHRINK_FROM, 250.0])
def test_a_wide_blur_is_libvips_gaussblur(sigma: float) -> None:
    source = photo_like(320, 240)
    result = blurred_by_pixelpipe(source, sigma)
    expected = source.gaussblur(sigma, precision="float")
    assert (result.width, result.height, result.bands) == (320, 240, 3)
    # libvips' own integer result differs from its float one by up to 1.7.
    difference = (result.cast("float") - expected).abs()
    assert difference.max() <= 2.0, difference.max()


def test_a_wide_blur_keeps_alpha_premultiplied() -> None:
    source = with_alpha(photo_like(240, 180), 128)
    result = blurred_by_pixelpipe(source, 150)
    expected = source.premultiply().gaussblur(150, precision="float").unpremultiply()
    assert (result.width, result.height, result.bands) == (240, 180, 4)
    assert (result.cast("float") - expected).abs().max() <= 2.0


@pytest.mark.parametrize("sigma", [BLUR_SHRINK_FROM_NON_UCHAR - 1, BLUR_SHRINK_FROM_NON_UCHAR, 50])
def test_a_blur_with_alpha_shrinks_from_a_lower_sigma(sigma: float) -> None:
    # Premultiplied pixels are float, which libvips convolves without its
    # vector code: they take the shrunk copy from sigma 32, 8-bit ones from 100.
    photo = photo_like(240, 180)
    source = with_patchy_alpha(photo)
    result = blurred_by_pixelpipe(source, sigma)
    expected = source.premultiply().gaussblur(sigma, precision="float").unpremultiply()
    assert (result.width, result.height, result.bands) == (240, 180, 4)
    assert (result.cast("float") - expected).abs().max() <= 2.0


def test_the_widest_blur_of_a_tiny_picture_is_its_colour() -> None:
    result = blurred_by_pixelpipe(solid(3, 2, (200, 40, 90)), 1000)
    assert (result.width, result.height) == (3, 2)
    assert [round(v) for v in result.getpoint(2, 1)] == [200, 40, 90]


def test_wide_blurs_stay_under_their_footprint(tmp_path: Path) -> None:
    """Peak RSS of full-size blurs of a 2400x1600 PNG with alpha (premultiplied,
    float) at most what admission reserves: on a copy shrunk by 2 and held in
    memory (32), and by 62 (1000). One warm-up job first, not judged: a fresh
    process' first job also pays for libvips' start."""
    photo = photo_like(2400, 1600, 2)
    source = tmp_path / "alpha.png"
    source.write_bytes(encode(with_patchy_alpha(photo), "png"))
    jobs = ["rs:fit:300:300", "bl:32", "bl:1000"]
    measured = measure_memories(source, [(job, None) for job in jobs])
    for job, found in list(zip(jobs, measured, strict=True))[1:]:
        assert 0 < found["measured"] <= found["estimate"], (job, found)
