"""imgproxy's `bl:` at wide sigmas: libvips' gaussblur against the shrunk-copy
blur pixelpipe runs from BLUR_SHRINK_FROM (proxy/pipeline/steps.py).

    .venv/bin/python bench/blur.py --corpus ../shared/corpus [--repeats 3]

One corpus photograph fit in 1600 px and held in memory, libvips' operation
cache off (as the server runs), one thing at a time. Per sigma, median ms
of: libvips' gaussblur as imgproxy calls it (integer precision on 8-bit
pixels), the same in float (what a picture with alpha gets, premultiplied),
and pixelpipe's gaussian_blur; and the largest and mean difference, in
levels, of the integer result and of pixelpipe's from the float one. libvips
runs are skipped where one would take minutes (LIBVIPS_UP_TO).

A second table does the same for the photograph with an alpha band (opaque
where its green is over 100, else 60 of 255), blurred as the pipeline blurs
it: premultiplied, so in float, then unpremultiplied to 8 bits; libvips'
float gaussblur against pixelpipe's gaussian_blur, and the difference of the
8-bit results.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pyvips  # noqa: E402

from bench.faces import median_ms  # noqa: E402
from proxy.app import configure_libvips  # noqa: E402
from proxy.pipeline.steps import gaussian_blur  # noqa: E402
from tests.images import with_patchy_alpha  # noqa: E402

SIGMAS = (50, 100, 150, 200, 250, 300, 1000)
ALPHA_SIGMAS = (20, 31, 32, 50, 99)
LIBVIPS_UP_TO = {"integer": 300, "float": 250}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    configure_libvips()
    photo = pyvips.Image.thumbnail(str(args.corpus / "SafeLanding-5k.jpg"), 1600).copy_memory()
    print(f"SafeLanding-5k.jpg fit in 1600 px: {photo.width}x{photo.height}\n")
    print(
        "| sigma | libvips integer ms | libvips float ms | pixelpipe ms "
        "| integer - float: max / mean | pixelpipe - float: max / mean |"
    )
    print("|---:|---:|---:|---:|---|---|")

    def run(work):  # type: ignore[no-untyped-def]
        return lambda: work().copy_memory()

    for sigma in SIGMAS:
        ours = gaussian_blur(photo, sigma).copy_memory()
        cells = {}
        for precision in ("integer", "float"):
            if sigma > LIBVIPS_UP_TO[precision]:
                cells[precision] = "—"
                continue
            work = run(lambda s=sigma, p=precision: photo.gaussblur(s, precision=p))
            cells[precision] = f"{median_ms(work, args.repeats):.0f}"
        ms = median_ms(run(lambda s=sigma: gaussian_blur(photo, s)), args.repeats)
        differences = ["—", "—"]
        if sigma <= LIBVIPS_UP_TO["float"]:
            reference = photo.gaussblur(sigma, precision="float").copy_memory()
            for index, result in enumerate((photo.gaussblur(sigma), ours)):
                gap = (result.cast("float") - reference).abs()
                differences[index] = f"{gap.max():.2f} / {gap.avg():.3f}"
        print(
            f"| {sigma} | {cells['integer']} | {cells['float']} | {ms:.0f} "
            f"| {differences[0]} | {differences[1]} |",
            flush=True,
        )
    alpha_table(photo, args.repeats)
    return 0


def alpha_table(photo: pyvips.Image, repeats: int) -> None:
    premultiplied = with_patchy_alpha(photo).premultiply().copy_memory()
    print("\nWith alpha (premultiplied, float):\n")
    print("| sigma | libvips float ms | pixelpipe ms | pixelpipe - libvips, 8-bit: max / mean |")
    print("|---:|---:|---:|---|")
    for sigma in ALPHA_SIGMAS:
        results = []
        cells = []
        for blur in (
            lambda s=sigma: premultiplied.gaussblur(s, precision="float"),
            lambda s=sigma: gaussian_blur(premultiplied, s),
        ):
            cells.append(f"{median_ms(lambda b=blur: b().copy_memory(), repeats):.0f}")
            results.append(blur().unpremultiply().cast("uchar").cast("float"))
        gap = (results[1] - results[0]).abs()
        differences = f"{gap.max():.2f} / {gap.avg():.3f}"
        print(f"| {sigma} | {cells[0]} | {cells[1]} | {differences} |", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
