"""Measured peak memory of single jobs against `proxy.pipeline.footprint`'s estimate.

    .venv/bin/python bench/job_memory.py [--corpus ../shared/corpus]

Each job runs in a fresh process: warm up libvips on a tiny image, note the
peak RSS, run the job twice, and report how far the peak rose. The estimate
should be at least the measured rise for every job (it is what admission
control reserves); the ratio column shows how much it over-reserves.
Without --corpus, generated photos of the same sizes are used.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from proxy.allocator import allocator_environment, find_jemalloc  # noqa: E402

JOBS = [
    ("big.jpg", "rs:fit:1200:0/f:avif"),
    ("big.jpg", "rs:fit:1200:0/f:jpg"),
    ("big.jpg", "rs:fit:1200:0/f:webp"),
    ("big.jpg", "rs:fit:3000:0/f:jpg"),
    ("big.jpg", "rs:fill:300:300/f:jpg"),
    ("big.png", "rs:fit:1200:0/f:avif"),
    ("big.png", "rs:fit:1200:0/f:jpg"),
    ("big.png", "rs:fit:1200:0/f:webp"),
    ("progressive.jpg", "rs:fill:300:300/f:jpg"),
    ("progressive.jpg", "rs:fit:1200:0/f:avif"),
    ("baseline.jpg", "rs:fill:300:300/f:jpg"),
    ("baseline.jpg", "rs:fit:1200:0/f:webp"),
    ("alpha.png", "rs:fit:1200:0/f:webp"),
    ("alpha.png", "rs:fit:1200:0/f:png"),
    ("alpha.png", "rs:fit:600:0/f:avif"),
]

CORPUS_FILES = {
    "big.jpg": "SafeLanding-5k.jpg",
    "big.png": "Altai-5k.png",
    "progressive.jpg": "Autumn.jpg",
    "baseline.jpg": "FallenLeaf.jpg",
    "alpha.png": "Kay-alpha.png",
}

# What every measuring child starts with: the project on sys.path (argv[1]),
# libvips configured as the server does, the default settings' limits.
CHILD_PRELUDE = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import pyvips
from proxy.app import configure_libvips
from proxy.options import ParserConfig, parse_options, split_path
from proxy.options.thumbor import parse_thumbor
from proxy.pipeline.encode import EncoderSettings
from proxy.pipeline.footprint import job_footprint
from proxy.pipeline.process import ProcessingLimits, process_image
from proxy.allocator import loaded_allocator
from proxy.memory_release import releaser
from proxy.settings import Settings

configure_libvips()
settings = Settings.from_env()  # as the server is configured (PNG_QUANTIZE, ...)
limits = ProcessingLimits.from_settings(settings)
encoder = EncoderSettings.from_settings(settings)
config = ParserConfig.from_settings(settings)
tiny = pyvips.Image.black(64, 64, bands=3).write_to_buffer(".jpg")
release = releaser(loaded_allocator())  # as a worker gives freed pages back

def status(field):
    line = next(l for l in open("/proc/self/status") if l.startswith(field))
    return int(line.split()[1]) * 1024

def options_for(text):
    # imgproxy's option segments, e.g. "rs:fit:300:0/f:webp".
    split = split_path(f"/unsafe/{text}/plain/http://origin/image")
    return parse_options(split.option_segments, split.source_url, split.extension, config)

def reset_peak():
    # What the last job freed goes back, and the peak so far (imports, warm-up,
    # the last job) is forgotten: Linux resets VmHWM to VmRSS. Returns VmRSS.
    release()
    open("/proc/self/clear_refs", "w").write("5")
    return status("VmRSS:")
"""

CHILD = (
    CHILD_PRELUDE
    + r"""
process_image(tiny, options_for("rs:fit:32:0/f:avif"), limits, None, encoder)
process_image(tiny, options_for("rs:fit:32:0/f:webp"), limits, None, encoder)
data = open(sys.argv[2], "rb").read()
options = options_for(sys.argv[3])
# From the peak reset, not from the warm-up's: a job that peaks below the
# warm-up would otherwise read as 0.
before = reset_peak()
for _ in range(2):
    process_image(data, options, limits, None, encoder)
print(json.dumps({"measured": status("VmHWM:") - before,
                  "estimate": job_footprint(data, options, limits)}))
"""
)


def child_environment() -> dict[str, str]:
    """A measuring child's: on the malloc `pixelpipe serve` would choose here
    (PIXELPIPE_ALLOCATOR, by default jemalloc where installed, else glibc with
    two arenas), since what a job holds depends on it."""
    choice = os.environ.get("PIXELPIPE_ALLOCATOR", "auto")
    return allocator_environment(choice, os.environ, find_jemalloc())[1]


def run_child(child: str, *args: str) -> Any:
    """A measuring child in a fresh interpreter: the JSON its last line prints."""
    out = subprocess.run(
        [sys.executable, "-c", child, str(ROOT), *args],
        capture_output=True,
        text=True,
        check=True,
        env=child_environment(),
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure_job(source: Path, options: str, child: str = CHILD) -> dict[str, float]:
    """{"measured": peak RSS rise, "estimate": footprint} of one job in a fresh process."""
    return run_child(child, str(source), options)  # type: ignore[no-any-return]


def generated_sources(directory: Path) -> dict[str, Path]:
    import pyvips

    from bench.run import photo_like

    made = {
        "big.jpg": (photo_like(5120, 2880, 1), {"Q": 90}),
        "big.png": (photo_like(5120, 2880, 2), {}),
        "progressive.jpg": (photo_like(2560, 1600, 3), {"Q": 90, "interlace": True}),
        "baseline.jpg": (photo_like(2560, 1600, 4), {"Q": 90}),
        "alpha.png": (photo_like(1080, 1920, 5).bandjoin(200), {}),
    }
    paths = {}
    for name, (image, options) in made.items():
        path = directory / name
        image.write_to_file(str(path), **options)
        paths[name] = path
    _ = pyvips
    return paths


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, help="the shared photo corpus")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.corpus:
            sources = {name: args.corpus / file for name, file in CORPUS_FILES.items()}
        else:
            sources = generated_sources(Path(tmp))
        print("| source | options | measured peak rise MB | estimate MB | estimate / measured |")
        print("|---|---|---:|---:|---:|")
        worst = float("inf")
        for name, options in JOBS:
            result = measure_job(sources[name], options)
            ratio = result["estimate"] / max(result["measured"], 1)
            worst = min(worst, ratio)
            label = sources[name].name
            print(
                f"| {label} | {options} | {result['measured'] / 2**20:.0f} "
                f"| {result['estimate'] / 2**20:.0f} | {ratio:.2f} |"
            )
        print(f"\nlowest estimate/measured: {worst:.2f} (below 1: the estimate is too small)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
