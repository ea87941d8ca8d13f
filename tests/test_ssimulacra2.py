"""SSIMULACRA2 (OpenCV, numpy) against an independent implementation (PyPI `ssimulacra2`).

That package (numpy/scipy) reads its images transposed (its XYB conversion
takes `linear.T`), so its zero padding falls on the left and right edges
instead of the top and bottom, as its own comments intend. So the two are
compared with one side transposed, both ways round: equal to 0.001 (they
agree to 0.00002; the libvips graph this replaced, in float32 throughout,
was 0.005 off at a score of 91). Scores of
the images as they are differ at the borders (by up to ~4 points on a small
image at a low quality).
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

import pytest
import pyvips
from ssimulacra2 import compute_ssimulacra2

from proxy.pipeline import interrupt
from proxy.pipeline.ssimulacra2 import ssimulacra2
from tests.images import photo_like

SOURCE = photo_like(200, 128, 7)


def transposed(image: pyvips.Image) -> pyvips.Image:
    return image.rot90().flip("horizontal")


def theirs(reference: pyvips.Image, candidate: pyvips.Image) -> float:
    with tempfile.TemporaryDirectory() as folder:
        a, b = Path(folder) / "a.png", Path(folder) / "b.png"
        reference.write_to_file(str(a))
        candidate.write_to_file(str(b))
        return float(compute_ssimulacra2(str(a), str(b)))


def jpeg(image: pyvips.Image, quality: int) -> pyvips.Image:
    return pyvips.Image.new_from_buffer(image.jpegsave_buffer(Q=quality), "")


DISTORTED = {
    "jpeg q15": jpeg(SOURCE, 15),
    "jpeg q50": jpeg(SOURCE, 50),
    "jpeg q90": jpeg(SOURCE, 90),
    "blur": SOURCE.gaussblur(1.2).cast("uchar"),
    "odd size": jpeg(SOURCE.crop(0, 0, 197, 125), 40),
}


@pytest.mark.parametrize("name", list(DISTORTED))
def test_matches_the_independent_implementation(name: str) -> None:
    candidate = DISTORTED[name]
    reference = SOURCE.crop(0, 0, candidate.width, candidate.height)
    expected = theirs(reference, candidate)
    assert ssimulacra2(transposed(reference), transposed(candidate)) == pytest.approx(
        expected, abs=0.001
    )
    assert ssimulacra2(reference, candidate) == pytest.approx(
        theirs(transposed(reference), transposed(candidate)), abs=0.001
    )


def test_scores_rise_with_quality_and_identical_is_100() -> None:
    scores = [ssimulacra2(SOURCE, jpeg(SOURCE, q)) for q in (10, 30, 60, 90)]
    assert scores == sorted(scores) and scores[0] < 50 < scores[-1]
    assert ssimulacra2(SOURCE, SOURCE) == pytest.approx(100.0)


def test_a_run_nobody_waits_for_stops_between_scales() -> None:
    """Outside libvips, the metric checks the run's stop event as it goes."""
    stop = threading.Event()
    candidate = jpeg(SOURCE, 50)
    with interrupt.stoppable(stop):
        assert ssimulacra2(SOURCE, candidate) < 100
        stop.set()
        with pytest.raises(interrupt.Interrupted):
            ssimulacra2(SOURCE, candidate)
