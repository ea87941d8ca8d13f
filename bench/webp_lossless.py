"""WebP from a lossless source: when is the lossless attempt worth its encode?

    .venv/bin/python bench/webp_lossless.py --corpus ../shared/corpus \
        [--heldout ~/.cache/pixelpipe-bench/heldout] [--repeats 3]

Pictures: the corpus' and the held-back set's PNGs (photographs and
renders) and drawn graphics (flat quadrants, a gradient, text on
transparency, a bar chart, a photograph posterised to 4 levels a channel),
each fit in 1200 and in 300 px and held in memory. Per picture: the lossy
WebP (q80) and the lossless one (effort 4), bytes and median ms; the
estimate pixelpipe makes before trying lossless (encode.lossless_estimate:
effort 0 on quality:auto's sample, scaled by the pixels) over the lossy
bytes, against the real ratio; and what `encode_result` costs with the
estimate (as shipped) and without it (LOSSLESS_HOPELESS made infinite: the
old rule, lossless always tried), median ms, with the bytes each returns.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pyvips  # noqa: E402

import proxy.pipeline.encode as encoding  # noqa: E402
from proxy.app import configure_libvips  # noqa: E402
from proxy.pipeline.encode import EncodeRequest, EncoderSettings, encode_result  # noqa: E402
from tests.images import gradient, quadrants  # noqa: E402

T = TypeVar("T")


def graphics() -> dict[str, pyvips.Image]:
    text = pyvips.Image.text("<b>pixelpipe</b> 1234567890 " * 3, width=1100, dpi=150, rgba=True)
    chart = pyvips.Image.black(1200, 800, bands=3).linear([1, 1, 1], [255, 255, 255])
    for left in range(0, 1200, 60):
        height = (left * 7) % 700 + 50
        chart = chart.draw_rect([40, 90, 200], left, 800 - height, 40, height, fill=True)
    photo = pyvips.Image.thumbnail(str(ROOT / "proxy/samples/forest-path.jpg"), 1200)
    return {
        "quadrants": quadrants(1200, 800),
        "gradient": gradient(1200, 800),
        "text on transparency": text.embed(
            20, 20, 1200, max(text.height + 40, 400), extend="background", background=[0] * 4
        ),
        "bar chart": chart.cast("uchar"),
        "posterised photo": ((photo / 64).floor() * 64).cast("uchar"),
    }


def median_ms(work: Callable[[], T], repeats: int) -> tuple[float, T]:
    """Median ms of `work()` over `repeats` runs, and what its last run returned."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = work()
        times.append(1000 * (time.perf_counter() - started))
    return statistics.median(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--heldout", type=Path)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    configure_libvips()
    files = sorted(args.corpus.glob("*.png"))
    if args.heldout:
        files += sorted(args.heldout.glob("*.png"))
    pictures = {path.name: pyvips.Image.thumbnail(str(path), 1200).copy_memory() for path in files}
    pictures.update({name: image.copy_memory() for name, image in graphics().items()})
    request = EncodeRequest(format="webp", quality=80, keep="none", lossless_source=True)
    settings = EncoderSettings()
    shipped = encoding.LOSSLESS_HOPELESS
    print(
        "| picture | size | lossy B | lossy ms | lossless B | lossless ms | real ratio "
        "| estimated ratio | tried | answer: old ms | new ms | old B | new B |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|")
    for name, picture in pictures.items():
        for size in (1200, 300):
            image = (picture if size == 1200 else picture.thumbnail_image(300)).copy_memory()
            lossy_ms, lossy = median_ms(lambda i=image: i.webpsave_buffer(Q=80), args.repeats)
            lossless_ms, lossless = median_ms(
                lambda i=image: i.webpsave_buffer(lossless=True, effort=4), args.repeats
            )
            counter = encoding._Counter(request, settings)
            estimate = encoding.lossless_estimate(image, counter) / len(lossy)
            answers = {}
            for label, hopeless in (("old", float("inf")), ("new", shipped)):
                encoding.LOSSLESS_HOPELESS = hopeless
                answers[label] = median_ms(
                    lambda i=image: encode_result(i, request, settings).data, args.repeats
                )
            encoding.LOSSLESS_HOPELESS = shipped
            (old_ms, old), (new_ms, new) = answers["old"], answers["new"]
            print(
                f"| {name} | {image.width}x{image.height} | {len(lossy):,} | {lossy_ms:.0f} "
                f"| {len(lossless):,} | {lossless_ms:.0f} | {len(lossless) / len(lossy):.2f} "
                f"| {estimate:.2f} | {'yes' if estimate <= shipped else 'no'} | {old_ms:.0f} "
                f"| {new_ms:.0f} | {len(old):,} | {len(new):,} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
