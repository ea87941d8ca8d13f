"""Requests that encode one result several times (a byte budget, WebP's
lossless attempt): median wall time of the whole request in process.

    .venv/bin/python bench/encode_reuse.py --corpus ../shared/corpus [--repeats 5]

Run it in a worktree of an earlier commit and in this one, one after the
other, to see what a change to how the processed image is read costs or
saves (BENCHMARKS.md). Per source and options: median ms of
`process_image` (libvips' operation cache off, as the server runs), the
encodes it made, and the bytes of its answer, which should not change.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.webp_lossless import median_ms  # noqa: E402
from proxy.app import configure_libvips  # noqa: E402
from proxy.options import ParserConfig, parse_options  # noqa: E402
from proxy.pipeline.process import ProcessingLimits, process_image  # noqa: E402
from proxy.settings import Settings  # noqa: E402

SOURCES = ("Camera-exif-rot6.jpg", "SafeLanding-5k.jpg", "Altai-5k.png", "Kay-alpha.png")
OPTIONS = (
    "rs:fit:1200:1200/f:jpg",
    "rs:fit:1200:1200/mb:60000/f:jpg",
    "rs:fit:1200:1200/mb:20000/f:webp",
    "rs:fit:1200:1200/f:webp",
    "rs:fit:300:300/mb:3000/f:avif",
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    configure_libvips()
    limits = ProcessingLimits.from_settings(Settings())
    print("| source | options | median ms | encodes | bytes |")
    print("|---|---|---:|---:|---:|")
    for name in SOURCES:
        data = (args.corpus / name).read_bytes()
        for text in OPTIONS:
            options = parse_options(
                tuple(text.split("/")), f"http://x/{name}", None, ParserConfig()
            )
            ms, result = median_ms(
                lambda o=options, d=data: process_image(d, o, limits), args.repeats
            )
            print(
                f"| {name} | `{text}` | {ms:.0f} | {result.encodes} | {len(result.data):,} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
