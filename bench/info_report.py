"""/info's report: the result held in memory for the metrics, or computed again.

    .venv/bin/python bench/info_report.py --corpus ../shared/corpus [--repeats 5]

/info encodes the result and then measures it against the unencoded image
(MSE, PSNR, SSIM, SSIMULACRA2). Left lazy, that image was computed twice,
from the decode on. Per source and options, in process, the two ways
alternating: median ms of `image_report` with the image computed again
(`hold=False`) and held (as served), and whether the reports are the same.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import proxy.info as info  # noqa: E402
from proxy.app import configure_libvips  # noqa: E402
from proxy.options import ParserConfig, parse_options  # noqa: E402
from proxy.pipeline.encode import EncoderSettings  # noqa: E402
from proxy.pipeline.process import ProcessingLimits, inspect_image  # noqa: E402
from proxy.settings import Settings  # noqa: E402

SOURCES = ("SafeLanding-5k.jpg", "Altai-5k.png")
OPTIONS = (
    "rs:fit:1200:1200",
    "rs:fit:1200:1200/bl:20/sh:2",
    "rs:fill:600:600/g:sm/mc:0.5",
    "rs:fit:2400:2400/q:auto/f:webp",
)


def computed_again(*args, **kwargs):  # type: ignore[no-untyped-def]
    return inspect_image(*args, **{**kwargs, "hold": False})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    configure_libvips()
    settings = Settings()
    limits = ProcessingLimits.from_settings(settings)
    encoder = EncoderSettings.from_settings(settings)
    print("| source | options | computed again ms | held ms | same report |")
    print("|---|---|---:|---:|---|")
    for name in SOURCES:
        data = (args.corpus / name).read_bytes()
        for text in OPTIONS:
            options = parse_options(tuple(text.split("/")), "http://x/a", None, ParserConfig())
            again, held = [], []
            for _ in range(args.repeats):
                info.inspect_image = computed_again  # type: ignore[assignment]
                started = time.perf_counter()
                before = info.image_report(data, options, limits, None, encoder)
                again.append(1000 * (time.perf_counter() - started))
                info.inspect_image = inspect_image
                started = time.perf_counter()
                after = info.image_report(data, options, limits, None, encoder)
                held.append(1000 * (time.perf_counter() - started))
            row = f"| {name} | `{text}` | {statistics.median(again):.0f} | "
            print(row + f"{statistics.median(held):.0f} | {before == after} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
