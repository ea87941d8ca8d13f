"""Requests that read one processed image several times (a byte budget's
encodes, WebP's lossless attempt, thumbor's fill(auto) and fill(blur)):
median wall time of the whole request in process.

    .venv/bin/python bench/encode_reuse.py --corpus ../shared/corpus \
        [--repeats 5] [--lazy-steps]

Run it in a worktree of an earlier commit and in this one, one after the
other, to see what a change to how the processed image is read costs or
saves (BENCHMARKS.md). Per source and options: median ms of
`process_image` (libvips' operation cache off, as the server runs), the
encodes it made, and the bytes of its answer, which should not change.
`--lazy-steps` adds a column timed in the same run, right after each row, with the
steps' `held` made a no-op (the steps read their input lazily, as before it
existed; the encoder's own held copy is not affected).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import proxy.pipeline.steps as steps  # noqa: E402
from bench.webp_lossless import median_ms  # noqa: E402
from proxy.app import configure_libvips  # noqa: E402
from proxy.options import ParserConfig, parse_options  # noqa: E402
from proxy.options.thumbor import parse_thumbor  # noqa: E402
from proxy.pipeline.process import ProcessingLimits, process_image  # noqa: E402
from proxy.pipeline.steps import held  # noqa: E402
from proxy.settings import Settings  # noqa: E402

SOURCES = ("Camera-exif-rot6.jpg", "SafeLanding-5k.jpg", "Altai-5k.png", "Kay-alpha.png")
OPTIONS = (
    "rs:fit:1200:1200/f:jpg",
    "rs:fit:1200:1200/mb:60000/f:jpg",
    "rs:fit:1200:1200/mb:20000/f:webp",
    "rs:fit:1200:1200/f:webp",
    "rs:fit:300:300/mb:3000/f:avif",
    "thumbor:fit-in/300x300/filters:fill(auto)",
    "thumbor:fit-in/300x300/filters:fill(blur)",
    "thumbor:fit-in/300x300/filters:fill(ff0000)",
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--lazy-steps", action="store_true")
    args = parser.parse_args()
    configure_libvips()
    limits = ProcessingLimits.from_settings(Settings())
    lazy = " | steps lazy: ms | bytes" if args.lazy_steps else ""
    print(f"| source | options | median ms | encodes | bytes{lazy} |")
    print("|---|---|---:|---:|---:" + ("|---:|---:|" if args.lazy_steps else "|"))
    for name in SOURCES:
        data = (args.corpus / name).read_bytes()
        for text in OPTIONS:
            if text.startswith("thumbor:"):
                path = f"{text.removeprefix('thumbor:')}/origin/{name}"
                options = parse_thumbor(path, ParserConfig()).options
            else:
                segments = tuple(text.split("/"))
                options = parse_options(segments, f"http://x/{name}", None, ParserConfig())
            run = lambda o=options, d=data: process_image(d, o, limits)  # noqa: E731
            ms, result = median_ms(run, args.repeats)
            cells = f"| {name} | `{text}` | {ms:.0f} | {result.encodes} | {len(result.data):,} |"
            if args.lazy_steps:
                steps.held = lambda image: image
                lazy_ms, lazy_result = median_ms(run, args.repeats)
                steps.held = held
                cells += f" {lazy_ms:.0f} | {len(lazy_result.data):,} |"
            print(cells, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
