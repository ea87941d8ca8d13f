"""What quality:auto costs against one encode at the format's default quality.

    .venv/bin/python bench/auto_quality_cost.py --images ../shared/corpus \\
        [--images ~/.cache/pixelpipe-bench/heldout] [--sizes 300,1200] [--srcset]

For every photograph, format (AVIF, WebP, JPEG) and size, in this process,
one request at a time (libvips' operation cache off, as in the server, so
nothing is reused between runs):

- request: the whole pipeline (decode with shrink-on-load, resize, encode) as
  `rs:fit:SIZE:SIZE` asks, once at the format's default quality and once with
  `q:auto`;
- encode: the encoder stage alone on the same resized image (`encode_result`).

Wall time (perf_counter) and CPU time (process_time: every thread of the
process, libvips' included). Each is the median of REPEATS runs; the table
gives, per format and size, the median over the images of q:auto's time
divided by the default's, and the median default time.

`--srcset`: the same source at five widths in a row, q:auto, through one
memory of analyses (as the server keeps one), against five default encodes.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import pyvips  # noqa: E402

from proxy.options import ParserConfig, parse_options, split_path  # noqa: E402
from proxy.pipeline.encode import EncodeRequest, EncoderSettings, encode_result  # noqa: E402
from proxy.pipeline.process import ProcessingLimits, _render, process_image  # noqa: E402
from proxy.settings import Settings  # noqa: E402

try:
    from proxy.pipeline.auto_quality import AutoQualityMemory
except ImportError:  # a checkout from before the memory (issue 26): run without it
    AutoQualityMemory = None  # type: ignore[assignment,misc]


def memory_args(digest: str = "", memory: object = None) -> dict[str, object]:
    """process_image's memory arguments where the checkout has them."""
    if AutoQualityMemory is None:
        return {}
    return {"auto_memory": memory or AutoQualityMemory(), "source_digest": digest}


FORMATS = ("avif", "webp", "jpeg")
DEFAULT_QUALITY = {"avif": 80, "webp": 80, "jpeg": 80}
REPEATS = 3
SRCSET = (320, 480, 640, 960, 1200)
ENCODER = EncoderSettings.from_settings(Settings())
LIMITS = ProcessingLimits.from_settings(Settings())


def options_for(size: int, fmt: str, auto: bool):  # type: ignore[no-untyped-def]
    quality = "q:auto/" if auto else ""
    split = split_path(f"/unsafe/rs:fit:{size}:{size}/{quality}plain/local:///x@{fmt}")
    return parse_options(split.option_segments, split.source_url, split.extension, ParserConfig())


def timed(work: Callable[[], object]) -> tuple[float, float]:
    """Median wall and CPU seconds of REPEATS runs."""
    walls, cpus = [], []
    for _ in range(REPEATS):
        wall, cpu = time.perf_counter(), time.process_time()
        work()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def measure(path: Path, fmt: str, size: int) -> dict[str, tuple[float, float]]:
    data = path.read_bytes()
    digest = hashlib.blake2b(data, digest_size=16).hexdigest()
    plain, auto = options_for(size, fmt, False), options_for(size, fmt, True)
    rendered = _render(data, plain, LIMITS, None)
    image = rendered.image.copy_memory()

    def request(fmt: str = fmt, auto_quality: bool = False) -> EncodeRequest:
        return EncodeRequest(
            format=fmt,
            quality=DEFAULT_QUALITY[fmt],
            keep=rendered.keep,
            auto_quality=auto_quality,
        )

    return {
        "request default": timed(lambda: process_image(data, plain, LIMITS, encoder=ENCODER)),
        # A fresh memory per run: a cold source, no analysis remembered.
        "request auto": timed(
            lambda: process_image(data, auto, LIMITS, encoder=ENCODER, **memory_args(digest))
        ),
        "encode default": timed(lambda: encode_result(image, request(), ENCODER)),
        "encode auto": timed(lambda: encode_result(image, request(auto_quality=True), ENCODER)),
    }


def srcset(path: Path, fmt: str) -> tuple[float, float]:
    """Five widths of one source, q:auto through one memory, against default quality."""
    data = path.read_bytes()
    digest = hashlib.blake2b(data, digest_size=16).hexdigest()

    def widths(auto: bool) -> None:
        memory = AutoQualityMemory() if AutoQualityMemory is not None else None
        for width in SRCSET:
            options = options_for(width, fmt, auto)
            process_image(data, options, LIMITS, encoder=ENCODER, **memory_args(digest, memory))

    default_wall, _ = timed(lambda: widths(False))
    auto_wall, _ = timed(lambda: widths(True))
    return auto_wall / default_wall, default_wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=Path, action="append", required=True)
    parser.add_argument("--sizes", default="300,1200")
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--srcset", action="store_true")
    args = parser.parse_args()
    pyvips.cache_set_max(0)
    paths = [
        p
        for directory in args.images
        for p in sorted(directory.iterdir())
        if p.suffix.lower() in (".jpg", ".jpeg", ".png")
    ]
    formats = args.formats.split(",")
    started = time.perf_counter()
    print(
        "| format | size | images | request: default ms | q:auto / default, wall "
        "| q:auto / default, CPU | encode stage: default ms | q:auto / default, wall "
        "| q:auto / default, CPU |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for fmt in formats:
        for size in (int(s) for s in args.sizes.split(",")):
            rows = [measure(p, fmt, size) for p in paths]

            def ratio(kind: str, index: int, rows: list = rows) -> float:  # type: ignore[type-arg]
                return statistics.median(
                    r[f"{kind} auto"][index] / r[f"{kind} default"][index] for r in rows
                )

            def base(kind: str, rows: list = rows) -> float:  # type: ignore[type-arg]
                return statistics.median(r[f"{kind} default"][0] for r in rows) * 1000

            print(
                f"| {fmt} | {size} | {len(rows)} | {base('request'):.0f} "
                f"| {ratio('request', 0):.2f}x | {ratio('request', 1):.2f}x "
                f"| {base('encode'):.0f} | {ratio('encode', 0):.2f}x | {ratio('encode', 1):.2f}x |",
                flush=True,
            )
    if args.srcset:
        print()
        print("| format | srcset widths | images | five default requests, ms | q:auto / default |")
        print("|---|---|---|---|---|")
        for fmt in formats:
            found = [srcset(p, fmt) for p in paths]
            print(
                f"| {fmt} | {','.join(map(str, SRCSET))} | {len(found)} "
                f"| {statistics.median(f[1] for f in found) * 1000:.0f} "
                f"| {statistics.median(f[0] for f in found):.2f}x |",
                flush=True,
            )
    print(f"\n{len(paths)} images, {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
