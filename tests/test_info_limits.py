"""/info is work like an image: limits, admission, coalescing, caching, bounded metrics.

And the result limits count every frame of an animation.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import httpx
import pytest
import pyvips

from bench.job_memory import CHILD_PRELUDE, run_child
from proxy.info import frames_as_shown
from proxy.options.parse import ParserConfig, parse_options
from proxy.pipeline.footprint import SHARPEN_BASE_BYTES, footprint_of
from proxy.pipeline.load import read_header
from proxy.pipeline.process import ProcessingLimits
from tests.conftest import make_settings, signed
from tests.images import encode, gradient, photo_like
from tests.servers import Origin, running_apps, serve_pixelpipe
from tests.test_app_effects import animated_gif, frames_of


@pytest.fixture(scope="module")
def tiny_animation(origin: Origin) -> str:
    # A ~1 KB GIF of 100 frames: enlarged to 2000x2000, 400 megapixels of result.
    return origin.add("/info-limits/anim.gif", animated_gif(100, size=20), "image/gif")


@pytest.mark.parametrize("prefix", ["", "/info"])
def test_every_frame_counts_against_the_result_limit(
    client: httpx.Client, pixelpipe: str, tiny_animation: str, prefix: str
) -> None:
    path = signed(f"/rs:fit:2000:2000/el:1/plain/{tiny_animation}@webp")
    answer = client.get(pixelpipe + prefix + path)
    assert (answer.status_code, answer.text) == (422, "result image would be too large\n")
    fits = client.get(pixelpipe + prefix + signed(f"/rs:fit:200:200/el:1/plain/{tiny_animation}"))
    assert fits.status_code == 200


IMAGEMAGICK = "/usr/bin/convert"  # Debian's, installed by `make test`


@pytest.mark.skipif(
    not Path(IMAGEMAGICK).exists(),
    reason="SKIPPED: ImageMagick (installed by `make test`) writes the GIF with a repeated frame",
)
@pytest.mark.parametrize("fmt", ["gif", "webp"])
def test_info_of_an_animation_answered_with_frames_merged(
    client: httpx.Client, pixelpipe: str, origin: Origin, tmp_path: Path, fmt: str
) -> None:
    """GIF's and WebP's animation encoders fold a frame identical to the one
    before it into that one: a source with a repeated frame, or frames an
    effect made alike, is answered with fewer frames than were encoded. /info
    compared the answer with the encoded frames strip to strip: 500."""
    made = tmp_path / "repeated.gif"
    subprocess.run(
        [IMAGEMAGICK, "-delay", "10", "-size", "60x40", "xc:red", "xc:red", "xc:blue", str(made)],
        check=True,
    )
    url = origin.add(f"/info-limits/repeated-{fmt}.gif", made.read_bytes(), "image/gif")
    # Red, red, blue: two frames; every frame the same grey: one.
    for options, frames in (("w:30", 2), ("w:30/contrast:1e-9", 1)):
        path = signed(f"/{options}/plain/{url}@{fmt}")
        report = client.get(pixelpipe + "/info" + path)
        assert report.status_code == 200, report.text
        result = report.json()["result"]
        answered = client.get(pixelpipe + path).content
        answer = pyvips.Image.new_from_buffer(answered, "", n=-1)
        assert result["frames"] == frames_of(answered) == frames
        assert (result["width"], result["height"]) == (30, 20)
        assert (answer.width, answer.height) == (30, 20 * frames)
        assert result["ssim"] > 0.95, result  # each frame measured against the one on screen


def strip(values: list[int], delays: list[int]) -> pyvips.Image:
    """Frames of 4x2 pixels, each one grey value, as an animation strip."""
    frames = [pyvips.Image.black(4, 2) + value for value in values]
    image = pyvips.Image.arrayjoin(frames, across=1).copy()
    image.set_type(pyvips.GValue.gint_type, "page-height", 2)
    image.set_type(pyvips.GValue.array_int_type, "delay", delays)
    return image


@pytest.mark.parametrize(
    ("answer_values", "answer_delays", "reference_delays", "shown"),
    [
        ([10, 30], [200, 100], [100, 100, 100], [10, 10, 30]),  # a repeated frame folded
        ([10, 30], [60, 30], [33, 33, 33], [10, 10, 30]),  # GIF's hundredths drift
        ([10], [300], [100, 100, 100], [10, 10, 10]),  # all alike
        ([10, 30], [0, 0], [0, 0, 0], [10, 10, 30]),  # no timing: spread evenly
    ],
)
def test_each_frame_is_measured_against_the_frame_on_screen(
    answer_values: list[int],
    answer_delays: list[int],
    reference_delays: list[int],
    shown: list[int],
) -> None:
    reference = strip([10, 10, 30], reference_delays)
    matched, count = frames_as_shown(strip(answer_values, answer_delays), reference, 3)
    assert count == len(answer_values)
    assert [matched.getpoint(0, 2 * i)[0] for i in range(3)] == shown


def test_info_is_cached_and_coalesced(origin: Origin) -> None:
    url = origin.add("/info-limits/photo.jpg", encode(gradient(400, 300), "jpg"), delay=0.3)
    path = "/info" + signed(f"/w:100/plain/{url}@avif")
    with serve_pixelpipe(make_settings()) as base:
        service = running_apps[base].state.service  # type: ignore[attr-defined]

        async def together() -> list[httpx.Response]:
            async with httpx.AsyncClient(timeout=30) as session:
                return await asyncio.gather(*(session.get(base + path) for _ in range(5)))

        answers = asyncio.run(together())
        assert {answer.status_code for answer in answers} == {200}
        again = httpx.get(base + path, timeout=30)
        assert again.json() == answers[0].json() and again.json()["result"]["width"] == 100
        assert service.pipeline_runs == 1  # five at once and one after: one report made


def test_info_takes_a_slot_like_an_image(origin: Origin) -> None:
    url = origin.add("/info-limits/slow.jpg", encode(gradient(64, 48), "jpg"), delay=1.0)
    other = origin.add("/info-limits/other.jpg", encode(gradient(64, 48), "jpg"))
    settings = make_settings(concurrency=1, requests_queue_size=0)
    with serve_pixelpipe(settings) as base:

        async def both() -> list[httpx.Response]:
            async with httpx.AsyncClient(timeout=30) as session:
                first = asyncio.ensure_future(session.get(base + "/info" + signed(f"/plain/{url}")))
                await asyncio.sleep(0.3)
                second = await session.get(base + signed(f"/w:10/plain/{other}"))
                return [await first, second]

        first, second = asyncio.run(both())
        assert first.status_code == 200
        assert (second.status_code, second.headers["retry-after"]) == (503, "1")


def test_info_metrics_are_taken_on_a_bounded_copy(
    client: httpx.Client, pixelpipe: str, origin: Origin
) -> None:
    url = origin.add("/info-limits/large.jpg", encode(gradient(2400, 1600), "jpg"))
    report = client.get(pixelpipe + "/info" + signed(f"/plain/{url}@jpg"), timeout=60).json()
    result = report["result"]
    assert (result["width"], result["height"]) == (2400, 1600)
    assert 0.5 < result["metrics_scale"] < 1 and result["ssim"] > 0.9
    small = client.get(pixelpipe + "/info" + signed(f"/w:300/plain/{url}@jpg")).json()
    assert small["result"]["metrics_scale"] == 1


def test_blur_and_sharpen_are_priced_before_any_work() -> None:
    data = encode(gradient(1600, 1200), "jpg")
    header = read_header(data, 0)
    limits = ProcessingLimits.from_settings(make_settings())

    def footprint(segments: tuple[str, ...]) -> int:
        options = parse_options(segments, "http://x/a.jpg", None, ParserConfig())
        return footprint_of(header, len(data), options, limits)

    plain = footprint(())
    # Up to sigma 99 libvips convolves 8-bit pixels at full size, holding the
    # rows its mask spans; from 100 a shrunk copy, held whole but small.
    assert footprint(("bl:99",)) - plain > 20 * 1024 * 1024
    assert 0 < footprint(("bl:400",)) - plain < 1024 * 1024
    # sharpen's sigma stops at libvips' largest, 10; its table and LabS copy cost the same.
    sharpened = plain + SHARPEN_BASE_BYTES
    assert footprint(("sh:400",)) == footprint(("sh:10",)) < sharpened + 3 * 1024 * 1024
    assert footprint(("bl:1",)) - plain < 2 * 1024 * 1024


# Each /info job twice in a fresh process, its peak RSS rise against the
# footprint admission reserves for it (as tests/footprints.py for images).
INFO_CHILD = (
    CHILD_PRELUDE
    + r"""
from proxy.info import image_report

image_report(tiny, options_for("rs:fit:32:0/f:avif"), limits, None, encoder)
data = open(sys.argv[2], "rb").read()
found = []
for text in json.loads(sys.argv[3]):
    options = options_for(text)
    before = reset_peak()
    for _ in range(2):
        image_report(data, options, limits, None, encoder)
    found.append({"job": text, "measured": status("VmHWM:") - before,
                  "image": job_footprint(data, options, limits),
                  "estimate": job_footprint(data, options, limits, measuring=True)})
print(json.dumps(found))
"""
)


def test_info_stays_under_its_footprint(tmp_path: Path) -> None:
    """/info holds the result twice and measures it (SSIMULACRA2 above all):
    300 px of a 12 MP JPEG peaked at 115 MB against an image estimate of
    12 MB before the measurement was counted."""
    source = tmp_path / "big.jpg"
    source.write_bytes(encode(photo_like(4000, 2500, 2), "jpg", Q=90))
    # The last one is measured on a reduced copy (3.9 MP, past METRICS_MAX_PIXELS).
    jobs = ["rs:fit:300:0/f:jpg", "rs:fit:1600:0/f:webp", "rs:fit:2500:0/f:jpg"]
    for found in run_child(INFO_CHILD, str(source), json.dumps(jobs)):
        assert found["image"] < found["measured"] <= found["estimate"], found
        assert found["estimate"] <= 4 * found["measured"], found  # not reserved far over
