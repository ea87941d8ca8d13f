"""Random option chains' peak memory against the footprint admission reserves.

    .venv/bin/python bench/fuzz_footprints.py --minutes 10 [--seed N] [--info]

Admission reserves each job's estimated peak (proxy.pipeline.footprint) out
of MEMORY_BUDGET; a job that takes more than it reserved can push a worker
past the budget. This draws option chains as bench/fuzz_options.py does,
imgproxy's and thumbor's (those that parse; thumbor's without marks), runs
each over the same valid sources in a measuring child (freed memory trimmed
and the peak reset before each job, as tests/footprints.py does), and
reports the jobs whose peak RSS rise was over their estimate, worst first.
`--info` measures /info's work instead (the result measured: SSIM,
SSIMULACRA2).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from bench.fuzz_options import imgproxy_path, sources, thumbor_path  # noqa: E402
from bench.job_memory import CHILD_PRELUDE, child_environment  # noqa: E402

CHILD = (
    CHILD_PRELUDE
    + r"""
from proxy.errors import ProxyError
from proxy.info import image_report
from proxy.pipeline.interrupt import Interrupted

def job_options(text):
    if text.startswith("thumbor:"):
        return parse_thumbor(text.removeprefix("thumbor:"), config).options
    split = split_path("/unsafe" + text)
    return parse_options(split.option_segments, split.source_url, split.extension, config)

info = sys.argv[3] == "info"
work = image_report if info else process_image
# What a worker loads once, before measuring: the first JPEG XL job of a
# process loads libjxl's plugin, the first smart crop OpenCV and its cascade
# (about 6 and 21 MiB of that job's peak), neither again for later jobs.
formats = ("avif", "webp", "gif", "png", "jxl")
warm = [job_options("/rs:fit:32:0/plain/x@" + fmt) for fmt in formats]
warm.append(job_options("/rs:fill:32:16/g:sm/plain/x@jpg"))  # a crop to place
for options in warm:
    work(tiny, options, limits, None, encoder)
for line in sys.stdin:
    path, source = json.loads(line)
    data = open(source, "rb").read()
    try:
        options = job_options(path)
        estimate = job_footprint(data, options, limits, measuring=info)
    except ProxyError:
        continue
    before = reset_peak()
    started = time.perf_counter()
    try:
        work(data, options, limits, None, encoder)
    except (ProxyError, Interrupted):
        continue
    seconds = time.perf_counter() - started
    print(json.dumps({"path": path, "measured": status("VmHWM:") - before,
                      "estimate": estimate, "seconds": seconds}), flush=True)
"""
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--info", action="store_true", help="measure /info's work")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    deadline = time.monotonic() + args.minutes * 60
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for name, (data, _kind) in sources(Path(tmp)).items():
            files[name] = Path(tmp) / f"source-{name}"
            files[name].write_bytes(data)
        while time.monotonic() < deadline:
            # A fresh child per batch: one job's leftovers do not pile up.
            batch = []
            for _ in range(40):
                name = rng.choice(sorted(files))
                if rng.random() < 0.3:
                    # thumbor's dialect, unsigned; its marks (watermark(),
                    # frame()) are fetched images this child does not have.
                    signed_path = thumbor_path(rng, "http://origin/image")
                    path = "thumbor:" + signed_path.split("/", 2)[2]
                    if "watermark(" in path or "frame(" in path:
                        continue
                else:
                    path = imgproxy_path(rng, "http://origin/image")
                batch.append(json.dumps([path, str(files[name])]) + "\n")
            child = subprocess.run(
                [sys.executable, "-c", CHILD, str(ROOT), "", "info" if args.info else "image"],
                input="".join(batch),
                capture_output=True,
                text=True,
                timeout=max(60.0, deadline - time.monotonic() + 120),
                env=child_environment(),
            )
            for line in child.stdout.splitlines():
                if line.startswith("{"):
                    results.append(json.loads(line))
            if child.returncode != 0:
                print("child failed:", child.stderr.strip().splitlines()[-1:])
    over = [found for found in results if found["measured"] > found["estimate"]]
    over.sort(key=lambda found: found["measured"] - found["estimate"], reverse=True)
    mib = 2**20
    print(
        f"seed {args.seed}, {args.minutes:g} min, {'/info' if args.info else 'images'}: "
        f"{len(results)} jobs measured, {len(over)} over their estimate"
    )
    largest = max((found["measured"] for found in results), default=0)
    print(f"largest peak rise {largest / mib:.0f} MiB")
    for found in over[:15]:
        print(
            f"  {found['measured'] / mib:.0f} MiB against {found['estimate'] / mib:.0f} "
            f"({found['seconds']:.2f} s) {found['path']}"
        )
    return 0 if not over else 1


if __name__ == "__main__":
    raise SystemExit(main())
