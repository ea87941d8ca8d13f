"""imgproxy's trim: libvips' find_trim against the edge search pixelpipe runs
(proxy/pipeline/trim_box.py), and what a trimming request costs.

    .venv/bin/python bench/trim.py --corpus ../shared/corpus [--repeats 5]

In one process, one thing at a time, libvips' operation cache off (as the
server runs). For each picture, decoded once into memory as the server's
loader does: libvips' `find_trim` (threshold 10, white) and the edge search,
median ms, and whether their boxes agree; then pixelpipe's whole pipeline
for `t:10/rs:fit:300:300` against `rs:fit:300:300` (JPEG q80), median ms.
Pictures: three corpus photographs (no margins), one of them as a product
on a white canvas with margins of different widths, and a blank canvas.
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
from proxy.options import ParserConfig, parse_options  # noqa: E402
from proxy.pipeline.process import ProcessingLimits, process_image  # noqa: E402
from proxy.pipeline.trim_box import find_trim  # noqa: E402
from proxy.settings import Settings  # noqa: E402

WHITE = (255.0, 255.0, 255.0)


def pictures(corpus: Path) -> dict[str, bytes]:
    found = {
        name: (corpus / name).read_bytes()
        for name in ("SafeLanding-5k.jpg", "Camera-exif-rot6.jpg", "Altai-5k.png")
    }
    photo = pyvips.Image.new_from_buffer(found["SafeLanding-5k.jpg"], "").resize(0.4)
    canvas = pyvips.Image.black(4000, 3000, bands=3).new_from_image(list(WHITE)).cast("uchar")
    product = canvas.insert(photo, 1000, 800).copy(interpretation="srgb")
    found["SafeLanding on white, 4000x3000, margins 800-1000 px"] = product.jpegsave_buffer(Q=92)
    found["blank white, 4000x3000"] = canvas.copy(interpretation="srgb").jpegsave_buffer(Q=92)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    configure_libvips()
    limits = ProcessingLimits.from_settings(Settings(max_src_resolution=50))
    config = ParserConfig()
    trimmed = parse_options(("t:10", "rs:fit:300:300"), "x", "jpg", config)
    plain = parse_options(("rs:fit:300:300",), "x", "jpg", config)
    print(f"median of {args.repeats}\n")
    print(
        "| picture | libvips find_trim ms | edge search ms | same box | "
        "t:10/rs:fit:300:300 ms | rs:fit:300:300 ms |"
    )
    print("|---|---:|---:|---|---:|---:|")
    for name, data in pictures(args.corpus).items():
        image = pyvips.Image.new_from_buffer(data, "").copy_memory()
        box = tuple(image.find_trim(threshold=10, background=list(WHITE)))
        ours = find_trim(image, 10, WHITE)
        same = box == ours or (0 in box[2:] and 0 in ours[2:])
        libvips_ms = median_ms(
            lambda image=image: image.find_trim(threshold=10, background=list(WHITE)),
            args.repeats,
        )
        search_ms = median_ms(lambda image=image: find_trim(image, 10, WHITE), args.repeats)
        trim_ms = median_ms(lambda data=data: process_image(data, trimmed, limits), args.repeats)
        plain_ms = median_ms(lambda data=data: process_image(data, plain, limits), args.repeats)
        print(
            f"| {name} | {libvips_ms:.0f} | {search_ms:.0f} | {'yes' if same else 'NO'} "
            f"| {trim_ms:.0f} | {plain_ms:.0f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
